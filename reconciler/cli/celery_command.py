"""``celery -A proj redbeat ...``: the operating commands, Redis URL, prefix and options from the app's config.

The commands: status, history, trigger, pause, resume.

Registered through Celery's ``celery.commands`` entry point.  The client is
the one beat itself uses (``redbeat_redis_url``, ``redbeat_redis_options``,
Sentinel, TLS), and the key prefix is ``redbeat_key_prefix``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from functools import wraps
from typing import Any

import click
from redis.exceptions import RedisError

from reconciler.core.errors import RedbeatError
from reconciler.core.exit_codes import ExitCode
from reconciler.operating import operate


def _target(ctx: click.Context) -> Any:
    """(client, keys) of the app celery loaded, as a reconciler target (owner unused here)."""
    from reconciler.sync.reconcile import Target
    from redbeat.client import get_redis
    from redbeat.config import ensure_conf

    app = ctx.obj.app
    conf = ensure_conf(app)
    return Target(get_redis(app), conf.keys, "default", conf.redis_url)


def _one_line_errors(command: Callable[..., None]) -> Callable[..., None]:
    """Our errors and Redis errors: one line on stderr and exit 1, as redbeat-apply does."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except (RedbeatError, RedisError) as exc:
            what = f"Redis: {exc}; nothing was written" if isinstance(exc, RedisError) else str(exc)
            click.echo(f"celery redbeat: error: {what}", err=True)
            sys.exit(ExitCode.ERROR)

    return run


@click.group(name="redbeat", help="Operate redbeat schedules (status, history, trigger, pause, resume).")
def redbeat() -> None:
    """The command group."""


@redbeat.command(help="Every entry: schedule, state, next due, last runs, dispatch lag, pause.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
@_one_line_errors
def status(ctx: click.Context, output: str) -> None:
    from reconciler.operating.status import render_status

    rows = operate.full_status(_target(ctx))
    if output == "json":
        click.echo(json.dumps({"format_version": 1, "entries": rows}, indent=2, ensure_ascii=False))
    else:
        click.echo(render_status(rows), nl=False)


@redbeat.command(help="The runs beat claimed and what became of them.")
@click.argument("name", required=False)
@click.option("--since", metavar="TIME|DURATION", help="claimed since this time or this long ago (90m)")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
@_one_line_errors
def history(ctx: click.Context, name: str | None, since: str | None, output: str) -> None:
    moment = operate.parse_moment(since, datetime.now(timezone.utc), ago=True) if since else None
    target = _target(ctx)
    runs = operate.history_runs(target.client, target.keys, name, moment)
    click.echo(operate.history_json(runs) if output == "json" else operate.render_history(runs), nl=output == "json")


@redbeat.command(help="Hold an entry until resumed or --until.")
@click.argument("name")
@click.option("--until", metavar="TIME|DURATION", help="resume by itself at this time or after this long")
@click.option("--note", default="", metavar="TEXT", help="why")
@click.pass_context
@_one_line_errors
def pause(ctx: click.Context, name: str, until: str | None, note: str) -> None:
    click.echo(operate.request_pause(_target(ctx), name, until, note, os.environ))


@redbeat.command(help="Run an entry once now (the leading beat sends it, once).")
@click.argument("name")
@click.option("--note", default="", metavar="TEXT", help="why (in the run history and the audit trail)")
@click.pass_context
@_one_line_errors
def trigger(ctx: click.Context, name: str, note: str) -> None:
    click.echo(operate.request_run(_target(ctx), name, note, os.environ))


@redbeat.command(help="Lift an entry's pause.")
@click.argument("name")
@click.pass_context
@_one_line_errors
def resume(ctx: click.Context, name: str) -> None:
    target = _target(ctx)
    operate.resume_entry(target.client, target.keys, name, time.time())
    click.echo(f"{operate.printable(name)}: resumed (missed slots follow its catch_up)")
