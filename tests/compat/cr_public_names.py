"""Print, as JSON, every public name of celery-redbeat 2.4.2's modules: its kind and call signature.

For a class celery-redbeat defines, also the public attributes its own class bodies define (methods
with their signatures, properties, constants); what it inherits from celery or json is not its API.

Runs ONLY with the celery-redbeat venv python (see CONTRIBUTING.md); tests/compat/test_public_names.py
compares the output with our package.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys

from _cr_common import guard, member_kind

MODULES = ("redbeat", "redbeat.schedulers", "redbeat.decoder", "redbeat.schedules")


def kind_of(value: object) -> str:
    if inspect.ismodule(value):
        return "module"
    if inspect.isclass(value):
        return "class"
    if callable(value):
        return "function"
    return "constant"


def parameters(value: object) -> list[list[str]] | None:
    """(name, kind) of each parameter; for a class, of its constructor; None when Python cannot say."""
    try:
        signature = inspect.signature(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return [[p.name, p.kind.name] for p in signature.parameters.values()]


def origin_of(value: object) -> str | None:
    """Where a class, function or module comes from (``module.qualname``); None for plain values."""
    if inspect.ismodule(value):
        return value.__name__
    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    return f"{module}.{qualname}" if module and qualname else None


def members(cls: type) -> dict[str, dict[str, object]]:
    """The public attributes celery-redbeat's own classes define (not those inherited from celery or json)."""
    out: dict[str, dict[str, object]] = {}
    for name in dir(cls):
        if name.startswith("_"):
            continue
        owner = next((klass for klass in cls.__mro__ if name in vars(klass)), None)
        if owner is None or not owner.__module__.startswith("redbeat"):
            continue
        kind = member_kind(cls, name)
        out[name] = {"kind": kind, "params": parameters(getattr(cls, name)) if kind == "method" else None}
    return out


def describe(module_name: str) -> dict[str, dict[str, object]]:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
    out: dict[str, dict[str, object]] = {}
    for name in names:
        value = getattr(module, name)
        kind = kind_of(value)
        out[name] = {
            "kind": kind,
            "params": parameters(value) if kind in ("class", "function") else None,
            "origin": origin_of(value),
            "value": repr(value) if kind == "constant" else None,
            "members": members(value) if kind == "class" and (origin_of(value) or "").startswith("redbeat") else None,
        }
    return out


if __name__ == "__main__":
    guard()
    json.dump({name: describe(name) for name in MODULES}, sys.stdout, indent=1, sort_keys=True)
