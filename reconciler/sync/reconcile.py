"""One reconcile: load the manifests, read Redis, plan, and (unless dry-run) apply.

The glue between the pure plan and the Redis layers; ``cli`` and ``watch``
call it.  Nothing here prints.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from reconciler.core.bulk import gc_paused
from reconciler.core.errors import ApplyPermissionError, PlanRefused, RedbeatError, StalePlanError, StoreError
from reconciler.core.model import DesiredEntry
from reconciler.sync.apply import ApplyResult, apply_plan
from reconciler.sync.plan import Plan, plan
from reconciler.sync.state import read_state
from redbeat.client import build_client, cluster_hash_tag, is_cluster
from redbeat.keys import DEFAULT_PREFIX, KeySpace
from redbeat.redaction import redact_url

#: A plan refused because Redis moved on is re-planned this many times before giving up.
REPLAN_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Target:
    """Where to reconcile: a client, the key layout, and the owner."""

    client: Any
    keys: KeySpace
    owner: str
    url: str = ""


@dataclass(frozen=True, slots=True)
class PlanOptions:
    prune: bool = True
    adopt: bool = False
    max_delete_share: float = 0.5
    allow_mass_delete: bool = False
    take_over: bool = False  # also hand over entries another owner or beat_schedule holds


@dataclass(frozen=True, slots=True)
class Outcome:
    plan: Plan
    result: ApplyResult | None  # None for a dry run or when nothing changed
    replans: int = 0
    timings: Mapping[str, float] | None = None


_OWNER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,127}$")


def connect(redis_url: str, key_prefix: str = DEFAULT_PREFIX, owner: str = "default") -> Target:
    if not _OWNER.match(owner):
        raise RedbeatError(f"--owner {owner!r}: use letters, digits and . _ - / (at most 128 characters)")
    if not key_prefix:
        raise RedbeatError("--key-prefix must not be empty")
    try:
        client = build_client(redis_url, {}, forward_options=False)
    except (ValueError, RedisError) as exc:
        raise StoreError(f"cannot use Redis URL {redact_url(redis_url)}: {exc}") from None
    keys = KeySpace(key_prefix)
    if is_cluster(client) and cluster_hash_tag(key_prefix) is None:
        raise RedbeatError(
            f"Redis Cluster needs a hash tag in the key prefix so that one apply touches one slot: "
            f"use --key-prefix '{{{key_prefix.rstrip(':')}}}:' (and the same redbeat_key_prefix in beat)"
        )
    return Target(client, keys, owner, redis_url)


def _redis(target: Target, what: str) -> str:
    return f"Redis at {redact_url(target.url)} failed while {what}"


def make_plan(desired: Mapping[str, DesiredEntry], target: Target, options: PlanOptions) -> Plan:
    try:
        actual = read_state(target.client, target.keys, target.owner, desired)
    except RedisError as exc:
        raise StoreError(f"{_redis(target, 'reading the current state')}: {exc}") from None
    return plan(
        desired,
        actual,
        prune=options.prune,
        adopt=options.adopt,
        max_delete_share=options.max_delete_share,
        allow_mass_delete=options.allow_mass_delete,
        take_over=options.take_over,
    )


def load(paths: Sequence[Path], *, compat: str | None = None, allow_empty: bool = False) -> dict[str, DesiredEntry]:
    from reconciler.manifests.checks import load_desired

    return load_desired(paths, compat=compat, allow_empty=allow_empty)


def reconcile(
    desired: Mapping[str, DesiredEntry],
    target: Target,
    options: PlanOptions = PlanOptions(),
    *,
    dry_run: bool = False,
    clock: Callable[[], float] = time.time,
) -> Outcome:
    """Plan and apply, re-planning when Redis moved on between read and write.

    Raises PlanRefused (nothing written) when the plan has conflicts or trips a safety valve.
    """
    with gc_paused():  # a cold plan of 100,000 entries builds them all at once (core.bulk)
        return _reconcile(desired, target, options, dry_run=dry_run, clock=clock)


def _reconcile(
    desired: Mapping[str, DesiredEntry],
    target: Target,
    options: PlanOptions,
    *,
    dry_run: bool,
    clock: Callable[[], float],
) -> Outcome:
    timings: dict[str, float] = {}
    for attempt in range(REPLAN_ATTEMPTS):
        started = time.perf_counter()
        current = make_plan(desired, target, options)
        timings["plan"] = time.perf_counter() - started
        if current.errors:
            raise PlanRefused(current)
        if dry_run or not current.has_changes:
            return Outcome(current, None, attempt, timings)
        started = time.perf_counter()
        try:
            result = apply_plan(current, target.client, target.keys, clock=clock)
        except StalePlanError:
            continue
        except ApplyPermissionError as exc:
            raise StoreError(f"{_redis(target, 'applying')}: {exc}; nothing was written") from None
        except RedisError as exc:
            raise StoreError(
                f"{_redis(target, 'applying')}: {exc}; the apply is atomic, so nothing was written"
            ) from None
        timings["apply"] = time.perf_counter() - started
        return Outcome(current, result, attempt, timings)
    raise StoreError(f"Redis kept changing under the plan ({REPLAN_ATTEMPTS} attempts); nothing was written")
