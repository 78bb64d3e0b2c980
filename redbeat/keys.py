"""Every Redis key name redbeat and redbeat-apply use, derived in one place.

The layout is celery-redbeat 2.x's: with the default prefix ``redbeat:`` an
entry lives at ``redbeat:<name>`` and the bookkeeping keys get a doubled colon
(``redbeat::schedule``), an artefact of prefix + ``:schedule`` kept for
compatibility.  Entry names may not begin with ``:``, so an entry can never
collide with a bookkeeping key.

On Redis Cluster put a hash tag in the prefix (``{redbeat}:``): every key then
hashes to one slot, so the tick's Lua scripts and apply's MULTI/EXEC can touch
the schedule and the entries together.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "redbeat:"


@dataclass(frozen=True, slots=True)
class KeySpace:
    prefix: str = DEFAULT_PREFIX

    def entry(self, name: str) -> str:
        return self.prefix + name

    def name_of(self, member: str) -> str:
        """The entry name of a sorted-set member (a full key, or a bare name as the first releases allowed)."""
        if self.prefix and member.startswith(self.prefix):
            return member[len(self.prefix):]
        return member

    def entry_key_of(self, member: str) -> str:
        """The hash key of a sorted-set member; bare names are looked up as prefix + name."""
        if self.prefix and member.startswith(self.prefix):
            return member
        return self.prefix + member

    @property
    def schedule(self) -> str:
        return self.prefix + ":schedule"

    @property
    def statics(self) -> str:
        return self.prefix + ":statics"

    @property
    def lock(self) -> str:
        return self.prefix + ":lock"

    @property
    def wake_channel(self) -> str:
        """Pub/sub channel writers publish to so a sleeping beat re-reads the schedule at once."""
        return self.prefix + ":wake"

    @property
    def heartbeat(self) -> str:
        """The leader's last tick (JSON), so a hung beat is visible from outside."""
        return self.prefix + ":heartbeat"

    @property
    def unreadable(self) -> str:
        """Hash of member -> why beat set the entry aside (JSON {"reason", "seen_at"}); cleared once it reads fine."""
        return self.prefix + ":unreadable"

    @property
    def history(self) -> str:
        """Capped stream of the runs beat claimed and what became of them (:mod:`redbeat.history`)."""
        return self.prefix + ":history"

    @property
    def audit(self) -> str:
        """Capped stream of every apply that wrote and every operator action (pause, resume)."""
        return self.prefix + ":audit"

    def owner_index(self, owner: str) -> str:
        """Hash of entry name -> ownership record, one per reconciler owner."""
        return f"{self.prefix}:owner:{owner}"

    @property
    def owners(self) -> str:
        """Set of the owner names that have an ownership index."""
        return self.prefix + ":owners"

    def is_entry_key(self, key: str) -> bool:
        return key.startswith(self.prefix) and not key[len(self.prefix):].startswith(":")
