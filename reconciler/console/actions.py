"""The console's write actions: trigger now, pause (until, note), resume.  Each goes through the same
function as the CLI command of that name (:mod:`reconciler.operating.operate`), which writes the change and
its audit record in one script; so an action from the console is audited exactly as one from a terminal."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from reconciler.core.errors import RedbeatError
from reconciler.operating import operate
from redbeat.operator import NOTE_MAX, PauseError, Trigger, new_pause


class Action(enum.Enum):
    TRIGGER = "trigger"
    PAUSE = "pause"
    RESUME = "resume"


def actor(name: str, host: str) -> str:
    """Who acted, as the audit stream records it: ``alice via console@host``."""
    return f"{name} via console@{host}"


def perform(target: Any, action: Action, name: str, form: Mapping[str, str], by: str, now: datetime) -> str:
    """Do ``action`` on entry ``name``; a sentence saying what was done.  RedbeatError: refused, nothing written."""
    note = form.get("note") or ""
    if len(note) > NOTE_MAX:
        raise RedbeatError(f"the note is longer than {NOTE_MAX} characters; nothing was written")
    if action is Action.TRIGGER:
        operate.trigger_entry(target.client, target.keys, name, Trigger(by, now.timestamp(), 0.0, note))
        return f"{operate.printable(name)}: run requested; the leading beat sends it once"
    if action is Action.PAUSE:
        until_text = (form.get("until") or "").strip()
        until = operate.parse_moment(until_text, now, ago=False).timestamp() if until_text else None
        try:
            pause = new_pause(by, now.timestamp(), until, note)
        except PauseError as exc:
            raise RedbeatError(f"{exc}; nothing was written") from None
        operate.pause_entry(target.client, target.keys, name, pause)
        return f"{operate.printable(name)}: {operate.printable(pause.words(timezone.utc))}"
    operate.resume_entry(target.client, target.keys, name, now.timestamp(), by=by)
    return f"{operate.printable(name)}: resumed (missed slots follow its catch_up)"
