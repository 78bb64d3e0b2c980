"""celery-redbeat's import path for the JSON codec (``redbeat.decoder``)."""

from __future__ import annotations

from .codec import (  # noqa: F401
    RedBeatJSONDecoder,
    RedBeatJSONEncoder,
    decode_tagged,
    encode_tagged,
    to_timestamp,
)

__all__ = ["RedBeatJSONDecoder", "RedBeatJSONEncoder", "to_timestamp"]
