"""celery-redbeat's import path for the JSON codec and its time helpers (``redbeat.decoder``)."""

from __future__ import annotations

from .codec import (  # noqa: F401
    RedBeatJSONDecoder,
    RedBeatJSONEncoder,
    decode_tagged,
    encode_tagged,
    from_timestamp,
    get_utcoffset_minutes,
    to_timestamp,
)

__all__ = ["RedBeatJSONDecoder", "RedBeatJSONEncoder", "from_timestamp", "get_utcoffset_minutes", "to_timestamp"]
