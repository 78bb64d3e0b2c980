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
* clocked and ``one_off`` tasks -> a one-off ``at`` (the clocked time, or the
  first run django-celery-beat would make); one that already ran is written
  with ``enabled: false``;
* a future ``start_time`` -> ``start_at``, ``expires`` -> ``end_at``;
* ``enabled``, ``args`` / ``kwargs`` (JSON), and ``queue``, ``exchange``,
  ``routing_key``, ``priority``, ``headers``, ``expire_seconds`` -> ``options``;
  the ``description`` becomes a comment.

What is not, and is reported (on stdout and at the end of the file), never
silently dropped: solar schedules, args/kwargs/headers that are not valid
JSON, a task with no schedule, and anything redbeat-apply validate would
refuse. A past start time and an interval below a millisecond's precision are
converted with a note.

``redbeat-apply migrate-django`` (``reconciler.cli.main``) parses the
arguments, prints the report and exits 0 when every task was converted, 4
(done in part) when some were not (the others were written), and 1 on a
:class:`~reconciler.core.errors.MigrateError` (nothing written).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml
from celery.schedules import crontab as celery_crontab

from reconciler.core.errors import CronError, MigrateError
from reconciler.manifests.checks import check_manifests
from reconciler.schedules.convert import manifest_to_entry
from reconciler.schedules.cron import CELERY_FIELDS, CronSpec, cron_string, parse_crontab
from reconciler.schedules.duration import format_duration, parse_duration
from reconciler.sync.apply import encode_definition
from redbeat import timing
from redbeat.codec import decode_definition
from redbeat.entry import entry_timezone
from redbeat.redaction import redact_url

OUTPUT_NAME = "django-celery-beat.yaml"

#: IntervalSchedule.period -> seconds per unit.
PERIOD_SECONDS = {
    "days": 86_400,
    "hours": 3_600,
    "minutes": 60,
    "seconds": 1,
    "microseconds": 1e-6,
}


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
        raise MigrateError(
            "Django is not installed: pip install 'redbeat-gitops[django]' (and your database's driver)"
        ) from None
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
    try:
        spec = parse_crontab(fields)
    except CronError:
        # Spellings Celery's own parser takes and ours does not (full day names ...):
        # evaluate them exactly as django-celery-beat did, with celery's crontab.
        try:
            parsed = celery_crontab(**fields)
        except Exception as exc:
            raise ValueError(f"crontab {fields} is not valid: {exc}") from None
        spec = CronSpec.of_sets({f: frozenset(getattr(parsed, f)) for f in CELERY_FIELDS})
    text = cron_string(spec)
    if text is not None:
        return {"cron": text}
    return {"crontab": spec.celery_fields()}


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.isoformat()


def _schedule_part(task: Any, omit_timezone: str | None) -> tuple[dict[str, Any], list[str]]:
    """The interval/crontab part of the manifest and its notes; ValueError when there is none."""
    notes: list[str] = []
    if task.interval_id is not None:
        every, period = task.interval.every, task.interval.period
        value = interval_every(every, period)
        if period == "microseconds" and every % 1000:
            notes.append(
                f"interval of {every} microseconds is not a whole number of milliseconds: written as {value!r}"
            )
        return {"every": value}, notes
    if task.crontab_id is not None:
        cron = task.crontab
        fields = {
            "minute": cron.minute,
            "hour": cron.hour,
            "day_of_week": cron.day_of_week,
            "day_of_month": cron.day_of_month,
            "month_of_year": cron.month_of_year,
        }
        part = crontab_schedule({k: str(v) for k, v in fields.items()})
        zone = str(cron.timezone) if cron.timezone else "UTC"
        if zone != omit_timezone:
            part["timezone"] = zone
        return part, notes
    raise ValueError("no schedule (none of interval, crontab, solar, clocked is set)")


def _first_run(part: dict[str, Any], task: Any, now: dt.datetime) -> dt.datetime | None:
    """When django-celery-beat would run a one-off interval/crontab task: its first slot from now (or start_time)."""
    after = max(now, task.start_time) if task.start_time is not None else now
    if "every" in part:
        # django-celery-beat counts an interval from when it first sees the task (or its last run).
        base = task.last_run_at or after
        seconds = part["every"] if isinstance(part["every"], (int, float)) else None
        if seconds is None:
            seconds = parse_duration(part["every"])
        return base + dt.timedelta(seconds=seconds)
    definition, ext = manifest_to_entry({"name": "one-off", "task": "t", **part})
    schedule = decode_definition(encode_definition(definition))["schedule"]
    return timing.next_occurrence(schedule, after, tz=entry_timezone(ext), inclusive=True)


def _run_once(task: Any, part: dict[str, Any] | None, now: dt.datetime) -> tuple[dict[str, Any], list[str]] | str:
    """A clocked or one-off task as ``at`` (and maybe ``enabled: false``), with notes; or why it cannot be."""
    if task.clocked_id is not None:
        when = task.clocked.clocked_time
        what = "clocked schedule"
    else:
        assert part is not None
        first = _first_run(part, task, now)
        if first is None:
            return "one_off task whose schedule never fires again"
        when, what = first, f"one_off task ({', '.join(f'{k}: {v}' for k, v in part.items())})"
    if when.microsecond:  # manifests take whole seconds: never earlier than django-celery-beat would run it
        when = when.replace(microsecond=0) + dt.timedelta(seconds=1)
    manifest: dict[str, Any] = {"at": _iso(when)}
    notes = [f"{what}: written as a one-off at {_iso(when)}"]
    if task.last_run_at is not None or not task.enabled:
        manifest["enabled"] = False
        notes.append("it already ran (or was disabled) in django-celery-beat: written with enabled: false")
    elif when <= now:
        notes.append("its time has passed and it has not run: enable it only if it should still run once")
    return manifest, notes


def _options(task: Any) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for option in ("queue", "exchange", "routing_key"):
        value = getattr(task, option)
        if value:
            options[option] = value
    if task.priority is not None:
        options["priority"] = task.priority
    headers = _json_field(task, "headers", {}, dict)
    if headers:
        options["headers"] = headers
    if task.expire_seconds is not None:
        options["expires"] = task.expire_seconds
    elif task.expires is not None:
        options["expires"] = _iso(task.expires)  # django-celery-beat also sets it as each message's expiry
    return options


def _window(task: Any, now: dt.datetime, manifest: dict[str, Any]) -> list[str]:
    """``start_time`` -> ``start_at`` (when still ahead), ``expires`` -> ``end_at``; the notes about them."""
    notes: list[str] = []
    if task.start_time is not None and "at" not in manifest:
        if task.start_time > now:
            manifest["start_at"] = _iso(task.start_time)
        else:
            notes.append(f"start_time {_iso(task.start_time)} is in the past: left out")
    if task.expires is not None and "at" not in manifest:
        manifest["end_at"] = _iso(task.expires)
        if task.expires <= now:
            notes.append(f"expired at {_iso(task.expires)}: django-celery-beat no longer runs it, nor will beat")
    return notes


def convert_task(task: Any, *, now: dt.datetime, omit_timezone: str | None = None) -> Converted | NotConverted:
    """One PeriodicTask -> a manifest schedule, or the reason it cannot be one."""
    name, task_name = task.name, task.task
    if task.solar_id is not None:
        solar = task.solar
        return NotConverted(name, task_name, (
            f"solar schedule ({solar.event} at {solar.latitude}, {solar.longitude}): "
            "redbeat stores interval, crontab, rrule and one-off schedules only; replace it by a cron at a fixed "
            "local time (with timezone), or keep it on a scheduler that has solar events"
        ))
    manifest: dict[str, Any] = {"name": name, "task": task_name}
    try:
        part, notes = (None, []) if task.clocked_id is not None else _schedule_part(task, omit_timezone)
        if task.clocked_id is not None or task.one_off:
            once = _run_once(task, part, now)
            if isinstance(once, str):
                return NotConverted(name, task_name, once)
            part, more = once
            notes += more
        manifest.update(part or {})
        args = _json_field(task, "args", [], list)
        kwargs = _json_field(task, "kwargs", {}, dict)
        options = _options(task)
    except ValueError as exc:
        return NotConverted(name, task_name, str(exc))
    if args:
        manifest["args"] = args
    if kwargs:
        manifest["kwargs"] = kwargs
    if options:
        manifest["options"] = options
    notes += _window(task, now, manifest)
    if not task.enabled:
        manifest["enabled"] = False
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


def export(
    outdir: Path, *, source: str, force: bool = False, omit_timezone: str | None = None
) -> tuple[Result, Path | None]:
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
