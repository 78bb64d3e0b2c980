"""plan(desired, actual) -> Plan: what an apply would write.  Pure: no I/O, no clock.

Comparison is on the canonical form (the stored definition is read back
through the manifest converter), so re-ordered keys or ``every: 60`` vs
``every: 1m`` never show as a change, and an entry written by celery-redbeat
with ``minute=0`` equals a manifest's ``"0"``.

Crontab fields are stored as written, so that Redis shows what git says. A
field spelled otherwise in Redis than in the manifests but matching the same
times (``0,6`` vs ``sat,sun``) is a *respelling*: one write of the new text,
listed in ``Change.respelled``, never a schedule change (no reschedule).
"""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.core.errors import FieldError, Inexpressible
from reconciler.core.model import DesiredEntry
from reconciler.manifests import schema
from reconciler.schedules.convert import entry_to_manifest, manifest_to_entry, respellings, same_times
from reconciler.sync.state import STATIC_OWNER, ActualEntry, ActualState, fingerprint

#: Deleting up to this many entries never needs --allow-mass-delete.
MASS_DELETE_FLOOR = 3


class Op(enum.Enum):
    """What a plan does to one entry; its value is the word reports, JSON and the apply script use."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    ADOPT = "adopt"
    NOOP = "no-op"
    CONFLICT = "conflict"


#: The ops that write to Redis (the others are reported only).
WRITE_OPS = frozenset({Op.CREATE, Op.UPDATE, Op.DELETE, Op.ADOPT})

@dataclass(frozen=True, slots=True)
class FieldChange:
    path: str  # e.g. "schedule.every", "kwargs.format", "protected"
    old: Any
    new: Any


_MISSING = object()


@dataclass(frozen=True)
class Change:
    """One entry's part of a plan.

    ``changed`` lists the fields that differ; None for a create, whose
    fields are all new: they are listed (:attr:`fields`) only when a report
    asks, as a cold apply of 100,000 entries would otherwise spend a third
    of its time rendering diffs it never prints.
    """

    op: Op
    name: str
    desired: DesiredEntry | None
    actual: ActualEntry | None
    changed: tuple[FieldChange, ...] | None = ()
    reschedule: bool = False  # the schedule (or enabled, or time zone) changed: the score is recomputed
    drift: tuple[FieldChange, ...] = ()  # what changed in Redis since this owner last applied it
    reason: str = ""
    #: crontab fields (``crontab.<field>``) whose stored text the apply replaces by the manifest's, same times
    respelled: tuple[FieldChange, ...] = ()
    #: the stored run state (``meta``) is unreadable and beat skips the entry: the apply drops it (runs as new)
    reset_run_state: bool = False

    @property
    def respelled_only(self) -> bool:
        """An update that changes nothing but the spelling of crontab fields."""
        return self.op is Op.UPDATE and bool(self.respelled) and not self.fields and not self.drift

    @functools.cached_property
    def fields(self) -> tuple[FieldChange, ...]:
        """Leaf-level differences, in the manifest form (``every: 30s``): every field of a created entry."""
        if self.changed is not None:
            return self.changed
        assert self.desired is not None, "only a create leaves its fields to be listed"
        return field_changes({}, view(self.desired.definition, self.desired.ext, self.desired.protected))

    @property
    def expected_fingerprint(self) -> str:
        return self.actual.fingerprint if self.actual is not None else fingerprint(None, None)

    @property
    def expected_record(self) -> str | None:
        return self.actual.record_raw if self.actual is not None else None


@dataclass(frozen=True, slots=True)
class Plan:
    owner: str
    changes: tuple[Change, ...]
    errors: tuple[str, ...] = field(default=())
    #: no-ops left out of ``changes`` (an incremental plan lists only the names it looked at again)
    untouched: int = 0

    def of(self, op: Op) -> list[Change]:
        return [c for c in self.changes if c.op is op]

    @property
    def writes(self) -> list[Change]:
        return [c for c in self.changes if c.op in WRITE_OPS]

    @property
    def has_changes(self) -> bool:
        return bool(self.writes)

    @property
    def drifted(self) -> list[Change]:
        return [c for c in self.changes if c.drift]

    @property
    def respelled_only(self) -> list[Change]:
        return [c for c in self.changes if c.respelled_only]

    def counts(self) -> dict[str, int]:
        counts = {op.value: len(self.of(op)) for op in Op}
        counts[Op.NOOP.value] += self.untouched
        return counts


def canonical(definition: Mapping[str, Any] | None, ext: Mapping[str, Any] | None) -> tuple[Any, Any]:
    """(definition, ext) as the manifest converter would write them; the input itself when it cannot.

    Each half of the round trip is given only what it takes (a stored definition it can read; a
    schema-valid manifest), so an error either raises other than its own is a bug, and is not hidden.
    """
    if definition is None:
        return None, None
    as_stored = dict(definition), (dict(ext) if ext else None)
    try:
        manifest = entry_to_manifest(definition, ext)
    except Inexpressible:  # hand-made, foreign or corrupt: compared as stored
        return as_stored
    if not schema.is_valid(manifest):  # a value no manifest may hold (an unknown time zone's type, ...)
        return as_stored
    try:
        return manifest_to_entry(manifest)
    except FieldError:  # a value the schema allows but no schedule can be (a crontab that never fires, ...)
        return as_stored


_NESTED = ("kwargs", "options", "crontab", "rrule", "ext")


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value and prefix.split(".")[0] in _NESTED:
        for key in value:
            _flatten(f"{prefix}.{key}", value[key], out)
    else:
        out[prefix] = value


def field_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    """Leaf-level differences between two entry views (see :func:`view`)."""
    flat_old: dict[str, Any] = {}
    flat_new: dict[str, Any] = {}
    for key, value in old.items():
        _flatten(key, value, flat_old)
    for key, value in new.items():
        _flatten(key, value, flat_new)
    order = list(dict.fromkeys([*flat_old, *flat_new]))
    return tuple(
        FieldChange(path, flat_old.get(path, _MISSING), flat_new.get(path, _MISSING))
        for path in order
        if flat_old.get(path, _MISSING) != flat_new.get(path, _MISSING)
    )


def view(
    definition: Mapping[str, Any] | None, ext: Mapping[str, Any] | None, protected: bool = False
) -> dict[str, Any]:
    """An entry as a person reads it: the manifest form (``every: 30s``, ``cron: ...``), name left out."""
    if definition is None:
        return {}
    try:
        out = dict(entry_to_manifest(definition, ext))
    except Inexpressible:  # a definition the manifest format cannot express is shown as stored
        out = {k: v for k, v in definition.items()}
        if ext:
            out["ext"] = dict(ext)
    out.pop("name", None)
    out["enabled"] = bool(definition.get("enabled", True))
    if protected:
        out["protected"] = True
    return out


def _reschedules(old: Mapping[str, Any] | None, new: Mapping[str, Any], old_ext: Any, new_ext: Any) -> bool:
    if old is None:
        return True
    return (
        not same_times(old.get("schedule"), new.get("schedule"))
        or old.get("enabled") != new.get("enabled")
        # every extension (time zone, window, jitter, catch-up) moves the next due time
        or (old_ext or {}) != (new_ext or {})
    )


def plan(
    desired: Mapping[str, DesiredEntry],
    actual: ActualState,
    *,
    prune: bool = True,
    adopt: bool = False,
    max_delete_share: float = 0.5,
    allow_mass_delete: bool = False,
    take_over: bool = False,
) -> Plan:
    """What an apply would write, with every reason to refuse it in ``errors``.

    ``adopt`` takes over entries nobody owns; ``take_over`` also hands over
    entries another owner (or beat_schedule) holds: the apply removes them
    from the old owner's index in the same atomic step.
    """
    takeover = Takeover.of(adopt, take_over)
    changes: list[Change] = []
    for name in sorted(set(desired) | set(actual.owned)):
        change = change_of(name, desired.get(name), actual.entries.get(name), actual.owner, prune, takeover)
        if change is not None:
            changes.append(change)
    errors = refusals(changes, len(actual.owned), actual.owner, max_delete_share, allow_mass_delete)
    return Plan(actual.owner, tuple(changes), errors)


def change_of(
    name: str, want: DesiredEntry | None, have: ActualEntry | None, owner: str, prune: bool, takeover: Takeover
) -> Change | None:
    """The change for one name, a pure function of its desired and actual entry (None: nothing to say).

    The plan of one name never depends on another's, so an incremental plan
    (sync.incremental) recomputes only the names that changed.
    """
    if want is not None:
        return _desired_change(want, have, owner, takeover)
    if have is None or not prune:
        return None
    record = have.record
    if record is not None and record.protected:
        return Change(Op.CONFLICT, name, None, have, reason=PROTECTED_REASON)
    return Change(
        Op.DELETE, name, None, have, changed=field_changes(view(have.decoded_definition(), have.decoded_ext()), {})
    )


PROTECTED_REASON = "protected entry would be deleted"


def refusals(
    changes: Sequence[Change], owned: int, owner: str, max_delete_share: float, allow_mass_delete: bool
) -> tuple[str, ...]:
    """Every reason to refuse a plan of ``changes`` (name order; no-ops may be left out) for an owner of ``owned``."""
    errors = [
        f"{c.name}: protected (protected: true when last applied) and no longer in the manifests; "
        "apply it once with protected: false, then remove it"
        for c in changes
        if c.op is Op.CONFLICT and c.desired is None
    ]
    errors += [f"{c.name}: {c.reason}" for c in changes if c.op is Op.CONFLICT and c.desired is not None]
    deletes = sum(1 for c in changes if c.op is Op.DELETE)
    too_many = deletes == owned or deletes > max_delete_share * owned
    if deletes and not allow_mass_delete and deletes > MASS_DELETE_FLOOR and too_many:
        errors.append(
            f"refusing to delete {deletes} of the {owned} entries owned by {owner!r} "
            f"(more than {max_delete_share:.0%}); check the path and --owner, or pass --allow-mass-delete"
        )
    if deletes and not allow_mass_delete and owned >= 2 and deletes == owned and deletes <= MASS_DELETE_FLOOR:
        errors.append(
            f"refusing to delete all {owned} entries owned by {owner!r}; "
            "check the path and --owner, or pass --allow-mass-delete"
        )
    return tuple(errors)


class Takeover(enum.Enum):
    """Which entries held by someone else a plan may take: none, unowned ones (--adopt), or any (--take-over)."""

    NONE = "none"
    UNOWNED = "unowned"
    ANY = "any"

    @classmethod
    def of(cls, adopt: bool, take_over: bool) -> Takeover:
        return cls.ANY if take_over else cls.UNOWNED if adopt else cls.NONE


def _holder(owner: str | None) -> str:
    return {None: "nobody (created by hand or by another tool)", STATIC_OWNER: "beat_schedule (app.conf)"}.get(
        owner, f"owner {owner!r}"
    )


def _conflict_remedy(holder: str | None, takeover: Takeover) -> str:
    if holder is None:
        return "pass --adopt to take it over, keeping its run state"
    refused = "--adopt takes only unowned entries; " if takeover is Takeover.UNOWNED else ""
    if holder == STATIC_OWNER:
        return (
            f"{refused}remove it from beat_schedule first (beat rewrites statics at start-up), "
            "or pass --take-over to hand it over"
        )
    return (
        f"{refused}remove it from the manifests of owner {holder!r}, rename it here, "
        "or pass --take-over to hand it over"
    )


def _may_take(holder: str | None, takeover: Takeover) -> bool:
    return takeover is Takeover.ANY or (takeover is Takeover.UNOWNED and holder is None)


def _desired_change(want: DesiredEntry, have: ActualEntry | None, owner: str, takeover: Takeover) -> Change:
    if have is not None and have.owner == owner and _unchanged(want, have):
        return Change(Op.NOOP, want.name, want, have)
    if have is None or (not have.exists and have.owner == owner):
        drift: tuple[FieldChange, ...] = ()
        if have is not None:
            drift = (FieldChange("(entry)", "applied", "deleted from Redis"),)
        return Change(Op.CREATE, want.name, want, have, None, True, drift)
    old_definition, old_ext = canonical(have.decoded_definition(), have.decoded_ext())
    if have.owner != owner:
        if not have.exists:
            # Another owner's record for an entry that no longer exists: nothing to conflict with.
            return Change(Op.CREATE, want.name, want, have, None, True)
        if not _may_take(have.owner, takeover):
            reason = f"exists in Redis, owned by {_holder(have.owner)}; {_conflict_remedy(have.owner, takeover)}"
            return Change(Op.CONFLICT, want.name, want, have, reason=reason)
        fields, respelled = _split_respellings(
            have, want, field_changes(view(old_definition, old_ext), view(want.definition, want.ext))
        )
        reschedule = _reschedules(old_definition, want.definition, old_ext, want.ext)
        return Change(Op.ADOPT, want.name, want, have, fields, reschedule, respelled=respelled)
    record = have.record
    drift = ()
    if record is not None and record.digest != have.fingerprint:
        drift = (FieldChange("(entry)", "as applied", "changed in Redis since the last apply"),)
    reset = not have.meta_readable
    if reset:
        # Beat skips an entry whose run state it cannot read; the owner resets it (the entry runs as new).
        drift += (FieldChange("(run state)", "unreadable", "reset: beat skips the entry until then"),)
    old_view = view(old_definition, old_ext, record.protected if record else False)
    new_view = view(want.definition, want.ext, want.protected)
    fields, respelled = _split_respellings(have, want, field_changes(old_view, new_view))
    if not fields and not drift and not respelled:
        return Change(Op.NOOP, want.name, want, have)
    if not fields and drift:
        # Changed by hand to something canonically equal: rewrite so the stored bytes match again.
        return Change(Op.UPDATE, want.name, want, have, (), True, drift, respelled=respelled, reset_run_state=reset)
    # A drifted entry may have been corrupt, and beat files a corrupt entry a minute out: re-file it now.
    reschedule = bool(drift) or _reschedules(old_definition, want.definition, old_ext, want.ext)
    return Change(
        Op.UPDATE, want.name, want, have, fields, reschedule, drift, respelled=respelled, reset_run_state=reset
    )


def _split_respellings(
    have: ActualEntry, want: DesiredEntry, fields: tuple[FieldChange, ...]
) -> tuple[tuple[FieldChange, ...], tuple[FieldChange, ...]]:
    """(fields, respelled): crontab fields the manifests spell otherwise than Redis, at the same times, moved out.

    The stored text is compared as stored (not through the converter), so it
    is what celery-redbeat's repr and Flower show that the apply brings in line.
    """
    stored = have.decoded_definition() or {}
    old, new = stored.get("schedule"), want.definition.get("schedule")
    respelled = tuple(FieldChange(f"crontab.{name}", before, after) for name, before, after in respellings(old, new))
    if not respelled:
        return fields, ()
    # Same times: a difference in the shown `cron`/`crontab` text is the respelling, listed apart.
    return tuple(f for f in fields if f.path != "cron" and not f.path.startswith("crontab.")), respelled


def _unchanged(want: DesiredEntry, have: ActualEntry) -> bool:
    """The fast path of a no-op: stored bytes and ownership record are exactly what an apply would write."""
    record = have.record
    if record is None or record.protected != want.protected or not have.meta_readable:
        return False
    definition = json.dumps(want.definition)
    ext = json.dumps(want.ext, sort_keys=True, separators=(",", ":")) if want.ext else None
    return have.definition == definition and have.ext == ext and record.digest == have.fingerprint
