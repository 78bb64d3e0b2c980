"""Every public name of celery-redbeat 2.4.2's modules imports from ours, with a compatible kind and signature.

The classes celery-redbeat defines are checked member by member too: each public method, property
and constant its class bodies define exists on ours, with the same kind, and each method accepts
every call theirs accepts (``FREQ_MAP`` on ``rrule``, ``dict_to_object`` on the decoder...).

celery-redbeat's names are read in its own venv (tests/compat/cr_public_names.py): both packages are
``redbeat``.  A name defined by celery-redbeat must exist here with the same kind (class / function /
constant / module) and a call signature that accepts every call theirs accepts; a name it merely
re-exports (``json``, ``Redis``, ``crontab``...) must be that same object here, since real projects
import them from there.
"""

from __future__ import annotations

import importlib
import inspect
import json
from typing import Any

import pytest
from compat._cr_common import member_kind
from support.celery_redbeat_venv import run_compat_script

pytestmark = pytest.mark.compat

#: Names deliberately not offered, with why.  Nothing else may be missing.
OMITTED: dict[str, str] = {
    "redbeat.schedulers.retry": "tenacity, which celery-redbeat's RetryingConnection used; ours retries itself",
    "redbeat.schedulers.retry_if_exception_type": "tenacity (see retry)",
    "redbeat.schedulers.stop_after_delay": "tenacity (see retry)",
    "redbeat.schedulers.wait_exponential": "tenacity (see retry)",
}
#: Members of celery-redbeat's classes deliberately not offered, with why.  Nothing else may be missing.
OMITTED_MEMBERS: dict[str, str] = {
    "RedBeatScheduler.maybe_due": "docs/switching.md row 'Tick internals': one batched claim, not an entry at a time",
}
#: Constants whose value (not only their kind) code depends on.
SAME_VALUE = {"REDBEAT_REDIS_KEY", "REDBEAT_SENTINEL_KEY", "DEFAULT_MAX_INTERVAL", "MINYEAR"}


@pytest.fixture(scope="module")
def theirs() -> dict[str, dict[str, dict[str, Any]]]:
    return json.loads(run_compat_script("cr_public_names.py"))  # type: ignore[no-any-return]


def kind_of(value: object) -> str:
    if inspect.ismodule(value):
        return "module"
    if inspect.isclass(value):
        return "class"
    return "function" if callable(value) else "constant"


def call_incompatibilities(ours: object, their_params: list[list[str]]) -> list[str]:
    """How a call that ``theirs`` accepts could fail on ``ours``: renamed, moved or missing parameters."""
    params = list(inspect.signature(ours).parameters.values())  # type: ignore[arg-type]
    names = {p.name: p for p in params}
    has_var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    has_var_pos = any(p.kind is p.VAR_POSITIONAL for p in params)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    problems = []
    for index, (name, kind) in enumerate(their_params):
        if kind in ("VAR_POSITIONAL", "VAR_KEYWORD"):
            ours_has = has_var_pos if kind == "VAR_POSITIONAL" else has_var_kw
            if not ours_has:
                problems.append(f"no {'*args' if kind == 'VAR_POSITIONAL' else '**kwargs'}")
            continue
        if kind in ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD"):
            if index < len(positional):
                if positional[index].name != name and kind == "POSITIONAL_OR_KEYWORD":
                    problems.append(f"positional #{index} is {positional[index].name!r}, theirs {name!r}")
            elif not has_var_pos:
                problems.append(f"positional #{index} ({name!r}) missing")
        if kind in ("POSITIONAL_OR_KEYWORD", "KEYWORD_ONLY") and name not in names and not has_var_kw:
            problems.append(f"keyword {name!r} missing")
    theirs = {name for name, _ in their_params}
    for p in params:
        required = p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        if required and p.name not in theirs:
            problems.append(f"ours requires {p.name!r}, which theirs does not take")
    return problems


def test_every_public_name_imports_from_ours_compatibly(theirs: dict[str, dict[str, dict[str, Any]]]) -> None:
    problems = []
    for module_name, names in sorted(theirs.items()):
        module = importlib.import_module(module_name)
        for name, info in sorted(names.items()):
            where = f"{module_name}.{name}"
            if where in OMITTED:
                assert not hasattr(module, name), f"{where} is listed as omitted but exists: drop it from OMITTED"
                continue
            if not hasattr(module, name):
                problems.append(f"{where}: missing")
                continue
            value = getattr(module, name)
            if kind_of(value) != info["kind"]:
                problems.append(f"{where}: a {kind_of(value)}, theirs a {info['kind']}")
            elif info["origin"] and not info["origin"].startswith("redbeat"):
                origin = _origin(value)
                if origin != info["origin"]:
                    problems.append(f"{where}: is {origin}, theirs re-exports {info['origin']}")
            elif info["params"] is not None:
                problems += [f"{where}: {p}" for p in call_incompatibilities(value, info["params"])]
            if name in SAME_VALUE and info.get("value") != repr(value):
                problems.append(f"{where}: value {value!r}, theirs {info.get('value')}")
            if info.get("members") and kind_of(value) == "class":
                problems += member_incompatibilities(where, value, info["members"])
    assert not problems, "\n".join(problems)


def member_incompatibilities(where: str, cls: type, theirs: dict[str, dict[str, Any]]) -> list[str]:
    """Each public attribute celery-redbeat's class defines exists on ours, same kind, calls it accepts."""
    problems = []
    for name, info in sorted(theirs.items()):
        if f"{cls.__name__}.{name}" in OMITTED_MEMBERS:
            assert not hasattr(cls, name), f"{where}.{name} is listed as omitted but exists: drop it"
            continue
        if not hasattr(cls, name):
            problems.append(f"{where}.{name}: missing")
        elif member_kind(cls, name) != info["kind"]:
            problems.append(f"{where}.{name}: a {member_kind(cls, name)}, theirs a {info['kind']}")
        elif info["params"] is not None:
            problems += [f"{where}.{name}: {p}" for p in call_incompatibilities(getattr(cls, name), info["params"])]
    return problems


def _origin(value: object) -> str | None:
    if inspect.ismodule(value):
        return value.__name__
    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    return f"{module}.{qualname}" if module and qualname else None


def test_the_signature_check_catches_a_renamed_or_missing_parameter() -> None:
    def ours(app: Any = None, *, name: str) -> None: ...

    theirs = [["app", "POSITIONAL_OR_KEYWORD"], ["key", "POSITIONAL_OR_KEYWORD"]]
    problems = call_incompatibilities(ours, theirs)
    assert "keyword 'key' missing" in problems
    assert "ours requires 'name', which theirs does not take" in problems
    assert call_incompatibilities(lambda app=None, key=None, extra=1: None, theirs) == []
