"""The redbeat-apply commands as typed functions: their arguments in, their output printed, an ExitCode out.

:mod:`reconciler.cli.main` turns a command line into these arguments and calls
one of them under its error handler, which turns an error raised on purpose
(:class:`~reconciler.core.errors.RedbeatError`) into a message and an exit
code; nothing here parses arguments or exits.  Heavier modules are imported
by the command that needs them, so that ``validate`` (a pre-commit hook) does
not load the Redis, console or Django code.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from reconciler.cli import report
from reconciler.core.errors import PlanRefused, RedbeatError
from reconciler.core.exit_codes import ExitCode

if TYPE_CHECKING:
    from reconciler.console.server import Settings as ConsoleSettings
    from reconciler.core.model import DesiredEntry
    from reconciler.sidecar.watch import Settings as WatchSettings
    from reconciler.sync.plan import Plan
    from reconciler.sync.plan_file import SavedPlan
    from reconciler.sync.reconcile import PlanOptions, Target


@dataclass(frozen=True)
class Connection:
    """Where a command reads and writes: ``--redis-url``, ``--key-prefix``, ``--owner``."""

    redis_url: str
    key_prefix: str = "redbeat:"
    owner: str = "default"

    def target(self) -> Target:
        from reconciler.sync.reconcile import connect

        return connect(self.redis_url, self.key_prefix, self.owner)


@dataclass(frozen=True)
class Show:
    """How a command prints: ``-o`` format, colour, ``-q``/``-v``, and ``--detailed-exitcode``."""

    output: str = "text"
    color: bool = False
    quiet: bool = False
    verbose: int = 0
    detailed_exitcode: bool = False

    def remark(self, text: str, *, file: Any = None) -> None:
        """A closing remark ("Applied 3 changes ..."), left out with -q."""
        if not self.quiet:
            print(text, file=file or sys.stdout)

    def changes_exit(self, plan: Plan) -> ExitCode:
        return ExitCode.CHANGES if self.detailed_exitcode and plan.has_changes else ExitCode.OK


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


# --- validate and schema: no Redis ---------------------------------------------------------------------------


def validate(
    paths: Sequence[Path], *, output: str = "text", compat: str | None = None, quiet: bool = False
) -> ExitCode:
    """Check manifests and print a report; writes nothing anywhere."""
    from reconciler.manifests.checks import check_manifests

    warnings: list[Any] = []
    entries, errors = check_manifests(paths, compat=compat, warnings=warnings)
    for warning in warnings:  # on stderr: the report on stdout stays machine-readable
        print(f"warning: {warning}", file=sys.stderr)
    if errors:
        print(report.render_errors(errors, output, schedules=len(entries)))
        return ExitCode.INVALID
    if output == "text":
        files = len({e.source.file for e in entries.values()})
        if not quiet:
            print(f"ok: {_plural(len(entries), 'schedule')} in {_plural(files, 'file')}")
    elif output != "github":
        print(report.render_errors([], output, schedules=len(entries)))
    return ExitCode.OK


def schema() -> ExitCode:
    """Print the manifest JSON Schema."""
    from reconciler.manifests.schema import schema_text

    sys.stdout.write(schema_text())
    return ExitCode.OK


# --- apply, watch, plan --out, apply FILE ----------------------------------------------------------------------


def _print_plan(plan: Plan, show: Show, extra: Mapping[str, Any] | None = None, target: Target | None = None) -> None:
    from reconciler.operating.operate import pause_lines, pauses_of
    from reconciler.sync import plan_report

    pauses = pauses_of(target.client, target.keys, [c.name for c in plan.changes], time.time()) if target else {}
    if show.output == "json":
        document = plan_report.plan_json(plan)
        document.update(extra or {})
        document["paused"] = pauses  # operator state, kept by every apply
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(plan_report.render(plan, show.output, color=show.color) + pause_lines(pauses))


def _audit_apply(target: Target, paths: Sequence[Path], desired: Mapping[str, DesiredEntry], plan: Plan) -> None:
    from reconciler.operating import audit as audit_stream
    from reconciler.operating.operate import actor

    record = audit_stream.apply_record(
        actor(os.environ), target.owner, audit_stream.revision(paths, desired), plan.counts()
    )
    try:
        audit_stream.record(target.client, target.keys, record, time.time())
    except RedisError as exc:
        raise RedbeatError(
            f"applied, but the audit record could not be written to {target.keys.audit} (grant XADD on it): {exc}"
        ) from None


def apply_paths(
    paths: Sequence[Path], connection: Connection, options: PlanOptions, show: Show, *, dry_run: bool = False
) -> ExitCode:
    """Load, validate, plan and (unless ``dry_run``) apply; all or nothing."""
    from reconciler.sync.reconcile import load, reconcile

    started = time.perf_counter()
    desired = load(paths, allow_empty=options.allow_mass_delete)  # deleting everything, on purpose
    loaded = time.perf_counter() - started
    target = connection.target()
    try:
        outcome = reconcile(desired, target, options, dry_run=dry_run)
    except PlanRefused as refused:
        _print_plan(refused.plan, show, {"applied": False})
        print("redbeat-apply: nothing was written.", file=sys.stderr)
        return ExitCode.ERROR
    timings = {"load_and_validate": round(loaded, 4), **{k: round(v, 4) for k, v in (outcome.timings or {}).items()}}
    if outcome.result is not None:
        _audit_apply(target, paths, desired, outcome.plan)
    _print_plan(outcome.plan, show, {"applied": outcome.result is not None, "dry_run": dry_run, "timings": timings},
                target)
    if show.output == "text":
        if dry_run and outcome.plan.has_changes:
            show.remark("Dry run: nothing was written.")
        elif outcome.result is not None:
            changes = _plural(outcome.result.changes, "change")
            show.remark(f"Applied {changes} to {target.keys.prefix}* for owner {target.owner!r}.")
        if show.verbose:
            print("Timings: " + ", ".join(f"{k} {v:.3f}s" for k, v in timings.items()), file=sys.stderr)
    return show.changes_exit(outcome.plan)


def watch(settings: WatchSettings) -> ExitCode:
    """``--watch``: keep Redis equal to the manifests until SIGTERM or Ctrl-C (then OK)."""
    from reconciler.sidecar import watch as watch_mode

    return watch_mode.run(settings)


def plan(
    paths: Sequence[Path], connection: Connection, options: PlanOptions, show: Show, *, out: Path | None = None
) -> ExitCode:
    """Print what an apply would change and, with ``out``, save it for :func:`apply_file`."""
    from reconciler.sync import plan_file
    from reconciler.sync.reconcile import load, make_plan

    desired = load(paths, allow_empty=options.allow_mass_delete)  # deleting everything, on purpose
    target = connection.target()
    made = make_plan(desired, target, options)
    _print_plan(made, show, target=target)
    if made.errors:
        print("redbeat-apply: the plan has errors; no plan file was written.", file=sys.stderr)
        return ExitCode.ERROR
    if out is not None:
        plan_file.save(out, made, target)
        show.remark(
            f"Saved the plan to {out}; apply it with: redbeat-apply apply {out}",
            file=sys.stdout if show.output == "text" else sys.stderr,
        )
    return show.changes_exit(made)


def _agree_with_plan(plan_path: Path, saved: SavedPlan, owner: str | None, key_prefix: str | None) -> None:
    """Refuse an owner / key prefix (a flag or its env variable) that is not the plan's: never apply elsewhere."""
    for flag, env, given, planned in (
        ("--owner", "REDBEAT_OWNER", owner, saved.owner),
        ("--key-prefix", "REDBEAT_KEY_PREFIX", key_prefix, saved.key_prefix),
    ):
        source = flag if given is not None else env
        value = given if given is not None else os.environ.get(env)
        if value is not None and value != planned:
            raise RedbeatError(
                f"{plan_path} was planned for {flag} {planned!r}, but {source} is {value!r}; "
                f"nothing was written (leave {flag} out to use the plan's)"
            )


def apply_file(
    plan_path: Path, redis_url: str, show: Show, *, owner: str | None = None, key_prefix: str | None = None
) -> ExitCode:
    """Apply a plan saved by :func:`plan`, refusing (nothing written) if Redis changed since."""
    from reconciler.sync import plan_file

    saved = plan_file.load(plan_path)
    _agree_with_plan(plan_path, saved, owner, key_prefix)
    result = plan_file.apply(saved, Connection(redis_url, saved.key_prefix, saved.owner).target())
    if show.output == "json":
        document = {"applied": True, "changes": result.changes, "owner": saved.owner, "key_prefix": saved.key_prefix}
        print(json.dumps(document, ensure_ascii=False))
    else:
        show.remark(f"Applied {_plural(result.changes, 'change')} from {plan_path} for owner {saved.owner!r}.")
    return ExitCode.OK


# --- export, status, migrate-django --------------------------------------------------------------------------


def export(
    directory: Path, connection: Connection, *, everything: bool = False, force: bool = False, output: str = "text"
) -> ExitCode:
    """Write the owner's entries (``everything``: all entries) in Redis as manifests in ``directory``."""
    from reconciler.sync.export import export_entries

    written = export_entries(connection.target(), directory, everything=everything, force=force)
    if output == "json":
        print(json.dumps({"written": {str(path): count for path, count in written.items()}}, ensure_ascii=False))
        return ExitCode.OK
    for path, count in written.items():
        print(f"wrote {_plural(count, 'schedule')} to {path}")
    if not written:
        print("nothing to export", file=sys.stderr)
    return ExitCode.OK


def status(connection: Connection, *, output: str = "text") -> ExitCode:
    """Show every entry in Redis: owner, schedule, next and last run."""
    from reconciler.operating.operate import full_status
    from reconciler.operating.status import other_prefixes, render_status, status_document

    target = connection.target()
    rows = full_status(target)
    elsewhere = other_prefixes(target) if not rows else {}
    if output == "json":
        print(json.dumps(status_document(target.keys.prefix, rows, elsewhere), indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(render_status(rows, prefix=target.keys.prefix, other_prefixes=elsewhere))
    return ExitCode.OK


def migrate_django(
    outdir: Path,
    *,
    database_url: str | None = None,
    settings_module: str | None = None,
    omit_timezone: str | None = None,
    force: bool = False,
    output: str = "text",
) -> ExitCode:
    """Write django-celery-beat's periodic tasks as manifests; PARTIAL when some could not be converted."""
    from reconciler.migrate import from_django
    from redbeat.redaction import redact_url

    module = settings_module or os.environ.get("DJANGO_SETTINGS_MODULE")
    source = redact_url(database_url) if database_url else f"settings {module}"
    from_django.setup_django(database_url, settings_module)
    result, written = from_django.export(outdir, source=source, force=force, omit_timezone=omit_timezone)
    rendered = from_django.report_json if output == "json" else from_django.render_report
    sys.stdout.write(rendered(result, written))
    if written is None:
        return ExitCode.ERROR  # no task could be converted: nothing was written
    return ExitCode.PARTIAL if result.skipped else ExitCode.OK


# --- operating: history, pause, resume, trigger, audit; the console ------------------------------------------


def history(connection: Connection, name: str | None = None, *, since: str | None = None,
            output: str = "text") -> ExitCode:
    """Show the runs beat claimed (of ``name``; ``since`` a time or a duration ago) and what became of them."""
    from datetime import datetime, timezone

    from reconciler.operating import operate

    moment = operate.parse_moment(since, datetime.now(timezone.utc), ago=True) if since else None
    target = connection.target()
    runs = operate.history_runs(target.client, target.keys, name, moment)
    sys.stdout.write(operate.history_json(runs) + "\n" if output == "json" else operate.render_history(runs))
    return ExitCode.OK


def pause(connection: Connection, name: str, *, until: str | None = None, note: str = "") -> ExitCode:
    """Hold an entry until resumed or ``until`` (a time or a duration from now)."""
    from reconciler.operating import operate

    print(operate.request_pause(connection.target(), name, until, note, os.environ))
    return ExitCode.OK


def resume(connection: Connection, name: str) -> ExitCode:
    """Lift an entry's pause."""
    from reconciler.operating import operate

    target = connection.target()
    operate.resume_entry(target.client, target.keys, name, time.time())
    print(f"{operate.printable(name)}: resumed (missed slots follow its catch_up)")
    return ExitCode.OK


def trigger(connection: Connection, name: str, *, note: str = "") -> ExitCode:
    """Ask the leading beat to run an entry once now."""
    from reconciler.operating import operate

    print(operate.request_run(connection.target(), name, note, os.environ))
    return ExitCode.OK


def audit(connection: Connection, *, limit: int | None = None, output: str = "text") -> ExitCode:
    """Show who applied which revision, and every pause, resume and trigger."""
    from reconciler.operating import audit as audit_stream
    from reconciler.operating import operate

    target = connection.target()
    records = audit_stream.read(target.client, target.keys, limit)
    if output == "json":
        print(json.dumps(audit_stream.document(records), indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(operate.render_audit(records))
    return ExitCode.OK


def console(settings: ConsoleSettings) -> ExitCode:
    """Serve the web console until SIGTERM or Ctrl-C (then OK)."""
    from reconciler.console import server

    return server.run(settings, os.environ, lambda text: print(text, flush=True))
