"""Export django-celery-beat's periodic tasks as redbeat manifests.

    redbeat-apply migrate-django --database-url sqlite:///db.sqlite3 schedules/
    redbeat-apply migrate-django --database-url postgresql://user@host:5432/app schedules/
    DJANGO_SETTINGS_MODULE=mysite.settings redbeat-apply migrate-django schedules/

Reads the ``django_celery_beat`` tables through Django's ORM (read-only: a
SQLite file is opened with ``mode=ro``, a PostgreSQL session is read-only)
and writes ``OUTDIR/django-celery-beat.yaml``, which ``redbeat-apply
validate`` accepts as it is. No Django project is needed: with
``--database-url`` the settings are configured in-process. With
``--settings`` (or ``DJANGO_SETTINGS_MODULE``), the project's own settings are
used; ``django_celery_beat`` must be in its ``INSTALLED_APPS``.

What is converted:

* interval -> ``every`` (``every: 2, period: hours`` -> ``2h``);
* crontab -> ``cron`` (or a ``crontab:`` mapping when day of month and day
  of week are both restricted, where cron would mean "either") plus the
  crontab's ``timezone`` (left out with ``--omit-timezone ZONE`` when it is
  your app's time zone, so the manifests stay readable by celery-redbeat);
* ``enabled``, ``args`` / ``kwargs`` (JSON), and ``queue``, ``exchange``,
  ``routing_key``, ``priority``, ``headers``, ``expire_seconds`` / ``expires``
  -> ``options``; the ``description`` becomes a comment.

What is not, and is reported (on stdout and at the end of the file), never
silently dropped: solar and clocked schedules, one-off tasks, a start time in
the future, args/kwargs/headers that are not valid JSON, and a task with no
schedule. A past start time and an ``expires`` datetime are converted with a
note, since redbeat does not stop a schedule at a date.

Exit codes: 0 every task converted, 1 error (nothing written), 2 some tasks
were not converted (the others were written).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

from reconciler.redaction import redact_text, redact_url

OUTPUT_NAME = "django-celery-beat.yaml"

EXIT_OK, EXIT_ERROR, EXIT_PARTIAL = 0, 1, 2

#: IntervalSchedule.period -> seconds per unit.
PERIOD_SECONDS = {
    "days": 86_400,
    "hours": 3_600,
    "minutes": 60,
    "seconds": 1,
    "microseconds": 1e-6,
}


class MigrateError(Exception):
    """A problem that stops the export before anything is written."""


@dataclass
class Converted:
    name: str
    manifest: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    description: str = ""


@dataclass
class NotConverted:
    name: str
    task: str
    reason: str


@dataclass
class Result:
    converted: list[Converted] = field(default_factory=list)
    skipped: list[NotConverted] = field(default_factory=list)


# --- Django set-up ---------------------------------------------------------------------


def database_settings(url: str, *, read_only: bool = True) -> dict[str, Any]:
    """Django's DATABASES['default'] for ``url`` (sqlite:///, postgresql://, mysql://)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        # sqlite:///relative.db, sqlite:////absolute.db
        path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        if not path or path == ":memory:":
            raise MigrateError(f"{redact_url(url)}: name a SQLite database file, e.g. sqlite:///db.sqlite3")
        file = Path(path).resolve()
        if not file.is_file():
            raise MigrateError(f"{file}: no such SQLite database")
        # Django's SQLite backend opens NAME as a URI, so mode=ro is honoured.
        name = f"file:{file}?mode=ro" if read_only else str(file)
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": name}
    engines = {
        "postgres": "django.db.backends.postgresql",
        "postgresql": "django.db.backends.postgresql",
        "pgsql": "django.db.backends.postgresql",
        "mysql": "django.db.backends.mysql",
        "mariadb": "django.db.backends.mysql",
    }
    if scheme not in engines:
        raise MigrateError(
            f"{redact_url(url)}: unsupported database URL scheme {scheme!r} "
            "(use sqlite:///FILE, postgresql://USER:PASSWORD@HOST:PORT/NAME or mysql://...)"
        )
    options: dict[str, Any] = dict(parse_qsl(parts.query))
    engine = engines[scheme]
    if read_only and engine.endswith("postgresql"):
        options["options"] = (options.get("options", "") + " -c default_transaction_read_only=on").strip()
    return {
        "ENGINE": engine,
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "OPTIONS": options,
    }


def setup_django(database_url: str | None, settings_module: str | None) -> None:
    """Configure Django in-process (database URL) or from a settings module, then django.setup()."""
    try:
        import django
        from django.conf import settings
    except ImportError:
        raise MigrateError("Django is not installed: pip install django django-celery-beat") from None
    try:
        import django_celery_beat  # noqa: F401
    except ImportError:
        raise MigrateError("django-celery-beat is not installed: pip install django-celery-beat") from None
    if database_url:
        if settings.configured:
            raise MigrateError("Django settings are already configured in this process")
        settings.configure(
            DATABASES={"default": database_settings(database_url)},
            INSTALLED_APPS=["django_celery_beat"],
            USE_TZ=True,
            TIME_ZONE="UTC",
            DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        )
    else:
        module = settings_module or os.environ.get("DJANGO_SETTINGS_MODULE")
        if not module:
            raise MigrateError("give --database-url URL, or --settings MODULE (or set DJANGO_SETTINGS_MODULE)")
        os.environ["DJANGO_SETTINGS_MODULE"] = module
    try:
        django.setup()
    except Exception as exc:  # ImproperlyConfigured, ImportError of the user's settings ...
        raise MigrateError(f"cannot set up Django: {exc}") from exc
    from django.apps import apps

    if not apps.is_installed("django_celery_beat"):
        raise MigrateError("django_celery_beat is not in INSTALLED_APPS of these settings")


# --- conversion ----------------------------------------------------------------------


def _json_field(task: Any, attribute: str, default: Any, kind: type) -> Any:
    raw = getattr(task, attribute)
    if raw in (None, ""):
        return default
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{attribute} is not valid JSON ({exc}): {raw!r}") from None
    if value is None:
        return default
    if not isinstance(value, kind):
        raise ValueError(f"{attribute} must be a JSON {'list' if kind is list else 'object'}, got {raw!r}")
    return value


def interval_every(every: int, period: str) -> str | float | int:
    from reconciler.duration import format_duration

    if period not in PERIOD_SECONDS:
        raise ValueError(f"unknown interval period {period!r}")
    if every <= 0:
        raise ValueError(f"the interval is every {every} {period}: it must be greater than 0")
    seconds = every * PERIOD_SECONDS[period]
    if period == "microseconds":
        seconds = every / 1_000_000
    text = format_duration(seconds)
    if text is not None:
        return text
    return seconds


def crontab_schedule(fields: dict[str, str]) -> dict[str, Any]:
    """``{"cron": "..."}``, or ``{"crontab": {...}}`` when cron would read it differently."""
    from celery.schedules import crontab as celery_crontab

    from reconciler.cron import CELERY_FIELDS, CronError, CronSpec, cron_string, parse_crontab

    try:
        spec = parse_crontab(fields)
    except CronError:
        # Spellings Celery's own parser takes and ours does not (full day names ...):
        # evaluate them exactly as django-celery-beat did, with celery's crontab.
        try:
            parsed = celery_crontab(**fields)
        except Exception as exc:
            raise ValueError(f"crontab {fields} is not valid: {exc}") from None
        spec = CronSpec(**{f: frozenset(getattr(parsed, f)) for f in CELERY_FIELDS})
    text = cron_string(spec)
    if text is not None:
        return {"cron": text}
    return {"crontab": spec.celery_fields()}


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.isoformat()


def convert_task(task: Any, *, now: dt.datetime, omit_timezone: str | None = None) -> Converted | NotConverted:
    """One PeriodicTask -> a manifest schedule, or the reason it cannot be one."""
    name, task_name = task.name, task.task

    def refuse(reason: str) -> NotConverted:
        return NotConverted(name, task_name, reason)

    if task.solar_id is not None:
        solar = task.solar
        return refuse(
            f"solar schedule ({solar.event} at {solar.latitude}, {solar.longitude}): "
            "redbeat stores interval, crontab and rrule schedules only; replace it by a cron at a fixed "
            "local time (with timezone), or keep it on a scheduler that has solar events"
        )
    if task.clocked_id is not None:
        return refuse(
            f"clocked schedule (once at {_iso(task.clocked.clocked_time)}): a one-time run; "
            "send it with apply_async(eta=...) instead, or write an rrule with count: 1"
        )
    if task.one_off:
        return refuse(
            "one_off task (django-celery-beat disables it after its first run): "
            "redbeat has no run-once flag; send it with apply_async(eta=...) or an rrule with count: 1"
        )
    if task.start_time is not None and task.start_time > now:
        return refuse(
            f"start_time {_iso(task.start_time)} is in the future: manifests cannot delay a schedule's start; "
            "add it after that time, or write an rrule with dtstart"
        )
    notes: list[str] = []
    manifest: dict[str, Any] = {"name": name, "task": task_name}
    try:
        if task.interval_id is not None:
            manifest["every"] = interval_every(task.interval.every, task.interval.period)
        elif task.crontab_id is not None:
            cron = task.crontab
            fields = {
                "minute": cron.minute,
                "hour": cron.hour,
                "day_of_week": cron.day_of_week,
                "day_of_month": cron.day_of_month,
                "month_of_year": cron.month_of_year,
            }
            manifest.update(crontab_schedule({k: str(v) for k, v in fields.items()}))
            zone = str(cron.timezone) if cron.timezone else "UTC"
            if zone != omit_timezone:
                manifest["timezone"] = zone
        else:
            return refuse("no schedule (none of interval, crontab, solar, clocked is set)")
        args = _json_field(task, "args", [], list)
        kwargs = _json_field(task, "kwargs", {}, dict)
        headers = _json_field(task, "headers", {}, dict)
    except ValueError as exc:
        return refuse(str(exc))
    if args:
        manifest["args"] = args
    if kwargs:
        manifest["kwargs"] = kwargs
    options: dict[str, Any] = {}
    for option in ("queue", "exchange", "routing_key"):
        value = getattr(task, option)
        if value:
            options[option] = value
    if task.priority is not None:
        options["priority"] = task.priority
    if headers:
        options["headers"] = headers
    enabled = bool(task.enabled)
    if task.expire_seconds is not None:
        options["expires"] = task.expire_seconds
    elif task.expires is not None:
        options["expires"] = _iso(task.expires)
        if task.expires <= now:
            enabled = False
            notes.append(
                f"expired at {_iso(task.expires)} (django-celery-beat stopped running it then): written with enabled: false"
            )
        else:
            notes.append(
                f"expires {_iso(task.expires)}: passed on as each message's expiry; django-celery-beat also stopped "
                "the schedule at that time, redbeat does not: disable or delete it then"
            )
    if options:
        manifest["options"] = options
    if not enabled:
        manifest["enabled"] = False
    if task.start_time is not None:
        notes.append(f"start_time {_iso(task.start_time)} is in the past: left out")
    return Converted(name, manifest, notes, (task.description or "").strip())


def read_tasks(*, now: dt.datetime | None = None, omit_timezone: str | None = None) -> Result:
    """Every PeriodicTask of the configured database, converted or refused."""
    from django.db import DatabaseError

    from django_celery_beat.models import PeriodicTask

    now = now or dt.datetime.now(dt.timezone.utc)
    result = Result()
    try:
        tasks = list(
            PeriodicTask.objects.select_related("interval", "crontab", "solar", "clocked").order_by("name")
        )
    except DatabaseError as exc:
        raise MigrateError(
            f"cannot read django_celery_beat's tables: {exc} "
            "(is this the right database, and have django-celery-beat's migrations run on it?)"
        ) from None
    for task in tasks:
        outcome = convert_task(task, now=now, omit_timezone=omit_timezone)
        if isinstance(outcome, Converted):
            result.converted.append(outcome)
        else:
            result.skipped.append(outcome)
    return result


def _check_schedule(converted: Converted) -> str | None:
    """The validation errors of one schedule on its own, or None when redbeat-apply accepts it."""
    from reconciler.manifest import check_manifests

    with tempfile.TemporaryDirectory(prefix="redbeat-migrate-") as tmp:
        path = Path(tmp) / "one.yaml"
        path.write_text(yaml.safe_dump(converted.manifest, sort_keys=False, allow_unicode=True), encoding="utf-8")
        _, errors = check_manifests([path])
    if not errors:
        return None
    return "; ".join(f"{e.where.field}: {e.message}" if e.where.field else e.message for e in errors)


def drop_invalid(result: Result) -> Result:
    """Move every schedule redbeat-apply would reject to the not-converted list, with its errors."""
    kept: list[Converted] = []
    for converted in result.converted:
        problem = _check_schedule(converted)
        if problem is None:
            kept.append(converted)
        else:
            result.skipped.append(
                NotConverted(converted.name, converted.manifest["task"], f"redbeat-apply would reject it: {problem}")
            )
    result.converted = kept
    result.skipped.sort(key=lambda s: s.name)
    return result


# --- output ----------------------------------------------------------------------------


def _comment(text: str, indent: str = "") -> list[str]:
    lines = []
    for line in text.splitlines() or [""]:
        lines.append(f"{indent}# {line}".rstrip())
    return lines


def render_manifest(result: Result, source: str) -> str:
    total = len(result.converted) + len(result.skipped)
    lines = [
        f"# Exported from django-celery-beat ({source}) by redbeat-apply migrate-django.",
        f"# {len(result.converted)} of {total} periodic task{'s' if total != 1 else ''} converted"
        + (f"; {len(result.skipped)} not converted, listed at the end." if result.skipped else "."),
        "# Check with: redbeat-apply validate <this directory>",
        "schedules:",
    ]
    for index, converted in enumerate(result.converted):
        if index:
            lines.append("")
        if converted.description:
            lines.extend(_comment(converted.description, "  "))
        for note in converted.notes:
            lines.extend(_comment(f"NOTE: {note}", "  "))
        body = yaml.safe_dump([converted.manifest], sort_keys=False, allow_unicode=True, width=100)
        lines.extend(f"  {line}" if line else line for line in body.splitlines())
    if result.skipped:
        lines.append("")
        lines.append("# NOT CONVERTED (still only in django-celery-beat):")
        for skipped in result.skipped:
            lines.extend(_comment(f"- {skipped.name} ({skipped.task}): {skipped.reason}"))
    return "\n".join(lines) + "\n"


def render_report(result: Result, written: Path | None) -> str:
    lines: list[str] = []
    if written is not None:
        lines.append(f"wrote {len(result.converted)} schedule{'s' if len(result.converted) != 1 else ''} to {written}")
    else:
        lines.append("no periodic task could be converted; nothing was written")
    for converted in result.converted:
        for note in converted.notes:
            lines.append(f"note: {converted.name}: {note}")
    if result.skipped:
        lines.append(f"NOT CONVERTED ({len(result.skipped)}):")
        for skipped in result.skipped:
            lines.append(f"  {skipped.name} ({skipped.task}): {skipped.reason}")
    return "\n".join(lines) + "\n"


def report_json(result: Result, written: Path | None) -> str:
    document = {
        "format_version": 1,
        "written": str(written) if written is not None else None,
        "converted": [{"name": c.name, "notes": c.notes, "manifest": c.manifest} for c in result.converted],
        "not_converted": [{"name": s.name, "task": s.task, "reason": s.reason} for s in result.skipped],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def export(outdir: Path, *, source: str, force: bool = False, omit_timezone: str | None = None) -> tuple[Result, Path | None]:
    """Read, convert, validate and write; returns the result and the file written (None if none)."""
    result = drop_invalid(read_tasks(omit_timezone=omit_timezone))
    target = outdir / OUTPUT_NAME
    if not result.converted:
        return result, None
    if target.exists() and not force:
        raise MigrateError(f"{target} exists; use --force to overwrite it")
    text = render_manifest(result, source)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    except OSError as exc:
        raise MigrateError(f"{target}: cannot write: {exc.strerror}") from None
    return result, target


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``redbeat-apply migrate-django``."""
    parser.description = "Write django-celery-beat's periodic tasks as redbeat manifests (OUTDIR/django-celery-beat.yaml)."
    parser.epilog = "Exit codes: 0 all converted, 1 error (nothing written), 2 some tasks not converted (listed)."
    parser.add_argument("outdir", type=Path, metavar="OUTDIR", help="directory to write django-celery-beat.yaml into")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--database-url",
        default=os.environ.get("DJANGO_CELERY_BEAT_DATABASE_URL"),
        help="sqlite:///FILE, postgresql://USER:PASSWORD@HOST:PORT/NAME or mysql://... "
        "(env DJANGO_CELERY_BEAT_DATABASE_URL); opened read-only",
    )
    source.add_argument("--settings", help="a Django settings module to use instead (default: $DJANGO_SETTINGS_MODULE)")
    parser.add_argument(
        "--omit-timezone",
        metavar="ZONE",
        help="leave out the crontab timezone where it is ZONE (your app's timezone), e.g. UTC",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing OUTDIR/django-celery-beat.yaml")
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text", help="report format (default: text)")


def run(args: argparse.Namespace) -> int:
    """Export, print the report; the exit code (0 all converted, 1 error, 2 some not converted)."""
    source = redact_url(args.database_url) if args.database_url else f"settings {args.settings or os.environ.get('DJANGO_SETTINGS_MODULE')}"
    try:
        setup_django(args.database_url, args.settings)
        result, written = export(args.outdir, source=source, force=args.force, omit_timezone=args.omit_timezone)
    except MigrateError as exc:
        print(redact_text(f"redbeat-apply migrate-django: error: {exc}"), file=sys.stderr)
        return EXIT_ERROR
    sys.stdout.write(report_json(result, written) if args.output == "json" else render_report(result, written))
    if result.skipped or written is None:
        return EXIT_PARTIAL if written is not None else EXIT_ERROR
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``redbeat-apply migrate-django``: the same as ``redbeat-apply migrate-django``."""
    parser = argparse.ArgumentParser(prog="redbeat-apply migrate-django")
    configure_parser(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
