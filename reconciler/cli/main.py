"""``redbeat-apply``: parse the arguments, call one command, return its exit code.

Sub-commands are registered in :data:`SUBCOMMANDS` (name -> :class:`Command`):
how to configure its parser, and how to call its typed function in
:mod:`reconciler.cli.commands` with the parsed arguments. When the first
argument is not a sub-command, the arguments are the top-level apply form
``redbeat-apply [flags] PATH...``, handled by :func:`_run_apply_form`. Every
command runs under :func:`error_handler`: an error raised on purpose is a
message and an exit code (:class:`~reconciler.core.exit_codes.ExitCode`),
Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from redis.exceptions import RedisClusterException, RedisError

from reconciler.cli import commands, report
from reconciler.cli.commands import Connection, Show
from reconciler.core.errors import ManifestErrors, RedbeatError
from reconciler.core.exit_codes import ExitCode
from redbeat.redaction import redact_text

if TYPE_CHECKING:
    from reconciler.sync.reconcile import PlanOptions

__all__ = ["SUBCOMMANDS", "Command", "ExitCode", "error_handler", "main"]

#: The distribution this command belongs to (for --version).
DISTRIBUTION = "redbeat-gitops"
PLAN_FORMATS = ("text", "markdown", "json")
DATA_FORMATS = ("text", "json")


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error; 2 means "changes present" here, so use 1."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(ExitCode.ERROR, f"{self.prog}: error: {redact_text(message)}\n")


def _output_format(choices: Sequence[str]) -> Callable[[str], str]:
    """The type of ``-o/--output``: one of ``choices``; a file name gets a pointer to ``--out``."""

    def parse(text: str) -> str:
        if text in choices:
            return text
        hint = "; to save a plan to a file use --out FILE" if ("." in text or "/" in text) else ""
        raise argparse.ArgumentTypeError(f"{text!r} is not an output format (choose from {', '.join(choices)}){hint}")

    parse.__name__ = "FORMAT"
    return parse


def _add_output(parser: argparse._ActionsContainer, choices: Sequence[str], what: str = "output") -> None:
    parser.add_argument("-o", "--output", type=_output_format(choices), default=choices[0], metavar="FORMAT",
                        help=f"{what} format: {', '.join(choices)} (default: {choices[0]})")


def _add_verbosity(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true",
                       help="print only the result and errors, no closing remarks")
    group.add_argument("-v", "--verbose", action="count", default=0,
                       help="say more: timings, and log at INFO (-vv: DEBUG)")


def _add_version(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=f"redbeat-apply {_version()}")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown (not installed)"


def _configure_logging(args: argparse.Namespace) -> None:
    verbose = getattr(args, "verbose", 0)
    levels = (logging.WARNING, logging.INFO, logging.DEBUG)
    level = logging.ERROR if getattr(args, "quiet", False) else levels[min(verbose, 2)]
    logger = logging.getLogger("reconciler")
    logger.setLevel(level)
    if not logger.handlers:
        from reconciler.core.logs import configure

        configure("text", level=level)


@dataclass(frozen=True)
class Command:
    """A sub-command: its one-line help, its parser's set-up, and the call of its typed function."""

    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], ExitCode]


@contextmanager
def error_handler() -> Iterator[None]:
    """Turn the errors we raise on purpose into a message and an exit code (SystemExit)."""
    try:
        yield
    except ManifestErrors as exc:
        print(report.render_text(exc.errors), file=sys.stderr)
        raise SystemExit(ExitCode.INVALID) from None
    except RedbeatError as exc:
        print(redact_text(f"redbeat-apply: error: {exc}"), file=sys.stderr)
        raise SystemExit(ExitCode.ERROR) from None
    except (RedisError, RedisClusterException) as exc:  # the cluster client's errors are not RedisErrors
        print(redact_text(f"redbeat-apply: error: Redis: {exc}; nothing was written"), file=sys.stderr)
        raise SystemExit(ExitCode.ERROR) from None
    except KeyboardInterrupt:  # Ctrl-C: a line, not a traceback; an apply is one atomic script, never half-done
        print("redbeat-apply: interrupted", file=sys.stderr)
        raise SystemExit(ExitCode.INTERRUPTED) from None


# --- validate -----------------------------------------------------------------


def _configure_validate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="manifest files or directories (searched recursively)"
    )
    _add_output(parser, report.FORMATS, "report")
    parser.add_argument(
        "--compat",
        choices=("celery-redbeat",),
        help="also reject extensions that this scheduler cannot read (per-schedule timezone, nth weekdays)",
    )


def _run_validate(args: argparse.Namespace) -> ExitCode:
    return commands.validate(args.paths, output=args.output, compat=args.compat, quiet=args.quiet)


# --- schema -------------------------------------------------------------------


def _configure_schema(parser: argparse.ArgumentParser) -> None:
    _add_output(parser, ("json",), "schema")


def _run_schema(args: argparse.Namespace) -> ExitCode:
    return commands.schema()


# --- connection and plan options (apply form, plan, apply FILE, export, status) ---------


def _add_connection(parser: argparse.ArgumentParser, *, from_plan: bool = False) -> None:
    """--redis-url, --key-prefix, --owner.

    ``from_plan``: the last two come from a saved plan; a flag may only agree.
    """
    group = parser.add_argument_group("Redis")
    group.add_argument(
        "--redis-url",
        default=os.environ.get("REDBEAT_REDIS_URL", "redis://localhost:6379/0"),
        help="redis://, rediss://, unix://, redis-sentinel://, sentinel://, redis-cluster:// "
        "(env REDBEAT_REDIS_URL; default redis://localhost:6379/0)",
    )
    if from_plan:
        group.add_argument(
            "--key-prefix", help="must be the plan's key prefix (env REDBEAT_KEY_PREFIX); default: the plan's"
        )
        group.add_argument("--owner", help="must be the plan's owner (env REDBEAT_OWNER); default: the plan's")
        return
    group.add_argument(
        "--key-prefix",
        default=os.environ.get("REDBEAT_KEY_PREFIX", "redbeat:"),
        help="the scheduler's redbeat_key_prefix (env REDBEAT_KEY_PREFIX; default redbeat:)",
    )
    group.add_argument(
        "--owner",
        default=os.environ.get("REDBEAT_OWNER", "default"),
        help="name of this source of truth; only its entries are changed or pruned "
        "(env REDBEAT_OWNER; default default)",
    )


def _add_plan_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("plan")
    group.add_argument(
        "--adopt", action="store_true", help="take over entries that exist but nobody owns, keeping their run state"
    )
    group.add_argument(
        "--take-over",
        action="store_true",
        help="also take entries another owner or beat_schedule holds "
        "(removed from the old owner's index in the same atomic write)",
    )
    group.add_argument(
        "--no-prune", dest="prune", action="store_false", help="never delete owned entries missing from the manifests"
    )
    group.add_argument(
        "--allow-mass-delete",
        action="store_true",
        help="allow deleting all, or more than --max-delete-share, of the owner's entries",
    )
    group.add_argument(
        "--max-delete-share",
        type=_share,
        default=0.5,
        metavar="SHARE",
        help="largest share of owned entries one apply may delete (default 0.5)",
    )
    group.add_argument(
        "--detailed-exitcode", action="store_true", help="exit 2 when there are changes (as terraform plan)"
    )
    _add_output(group, PLAN_FORMATS, "diff")
    group.add_argument("--no-color", action="store_true", help="never colour the text diff (also: NO_COLOR)")


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give a share such as 0.5") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share between 0 (exclusive) and 1")
    return value


def _plan_options(args: argparse.Namespace) -> PlanOptions:
    from reconciler.sync.reconcile import PlanOptions

    return PlanOptions(
        prune=args.prune,
        adopt=args.adopt,
        max_delete_share=args.max_delete_share,
        allow_mass_delete=args.allow_mass_delete,
        take_over=args.take_over,
    )


def _connection(args: argparse.Namespace) -> Connection:
    return Connection(args.redis_url, args.key_prefix, args.owner)


def _show(args: argparse.Namespace) -> Show:
    """How to print, from -o, --no-color (and NO_COLOR, a terminal), -q, -v and --detailed-exitcode."""
    color = not getattr(args, "no_color", False) and "NO_COLOR" not in os.environ and sys.stdout.isatty()
    return Show(
        output=getattr(args, "output", "text"),
        color=color,
        quiet=getattr(args, "quiet", False),
        verbose=getattr(args, "verbose", 0),
        detailed_exitcode=getattr(args, "detailed_exitcode", False),
    )


# --- the apply form: redbeat-apply [flags] PATH... ----------------------------------


def _configure_apply_form(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="manifest files or directories (searched recursively)"
    )
    parser.add_argument("--dry-run", action="store_true", help="plan and print the diff; write nothing")
    _add_version(parser)
    _add_verbosity(parser)
    _add_connection(parser)
    _add_plan_options(parser)
    _add_watch_options(parser)


def _add_watch_options(parser: argparse.ArgumentParser) -> None:
    from reconciler.sidecar.health import DEFAULT_LISTEN

    group = parser.add_argument_group("watch mode (a sidecar that keeps Redis equal to the manifests)")
    group.add_argument(
        "--watch",
        action="store_true",
        help="apply now, then on every file change and resync; serve /healthz, /readyz and /metrics; stop on SIGTERM",
    )
    group.add_argument(
        "--resync-interval",
        type=_seconds,
        default=60.0,
        metavar="DURATION",
        help="compare Redis with what was applied this often (+-10%% jitter; fingerprints computed in Redis, "
        "only differing entries read) and undo changes made by hand (default 60s)",
    )
    group.add_argument(
        "--full-resync-interval",
        type=_seconds,
        default=3600.0,
        metavar="DURATION",
        help="re-read every manifest and all of Redis this often, as a cold run does (default 1h)",
    )
    group.add_argument(
        "--debounce",
        type=_seconds,
        default=0.3,
        metavar="DURATION",
        help="group file events over at most this long before re-reading (default 300ms)",
    )
    group.add_argument(
        "--force-polling", action="store_true", help="poll the files instead of inotify (network file systems)"
    )
    group.add_argument(
        "--listen",
        type=_listen,
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"address of /healthz, /readyz and /metrics (default {DEFAULT_LISTEN}; 0.0.0.0:9185 for a pod)",
    )
    group.add_argument(
        "--log-format", choices=("text", "json"), default="text", help="watch-mode log lines (default text)"
    )
    group.add_argument("--console", action="store_true",
                       help="also serve the web console on --listen (off by default: probes often listen on the pod "
                       "network)")
    group.add_argument("--console-token-file", type=Path, metavar="FILE",
                       help="with --console: admin token that turns on trigger, pause and resume "
                       "(env REDBEAT_CONSOLE_TOKEN)")


def _seconds(text: str) -> float:
    from reconciler.core.errors import DurationError
    from reconciler.schedules.duration import parse_duration

    try:
        return parse_duration(text)
    except DurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{number} is not 1 or more")
    return number


def _listen(text: str) -> Any:
    from reconciler.sidecar.health import parse_listen

    try:
        return parse_listen(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _watch_settings(args: argparse.Namespace) -> Any:
    from reconciler.sidecar import watch

    return watch.Settings(
        paths=tuple(args.paths),
        redis_url=args.redis_url,
        key_prefix=args.key_prefix,
        owner=args.owner,
        options=_plan_options(args),
        listen=args.listen,
        resync_interval=args.resync_interval,
        full_resync_interval=args.full_resync_interval,
        debounce=args.debounce,
        force_polling=args.force_polling,
        dry_run=args.dry_run,
        log_format=args.log_format,
        console=args.console,
        console_token_file=args.console_token_file,
    )


def _run_apply_paths(args: argparse.Namespace) -> ExitCode:
    """The apply form: apply once, or (--watch) keep applying."""
    if args.watch:
        return commands.watch(_watch_settings(args))
    return commands.apply_paths(args.paths, _connection(args), _plan_options(args), _show(args), dry_run=args.dry_run)


def _apply_form_parser() -> argparse.ArgumentParser:
    width = max(len(name) for name in SUBCOMMANDS) + 2
    commands = "\n".join(f"  {name:<{width}}{command.help}" for name, command in SUBCOMMANDS.items())
    parser = _Parser(
        prog="redbeat-apply",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Reconcile Celery beat schedules in Redis with YAML manifests.\n\n"
        "redbeat-apply [flags] PATH... makes Redis equal to the manifests (the form CI/CD uses);\n"
        "--dry-run shows the diff first, --watch keeps doing it as a sidecar.",
        epilog=f"commands (redbeat-apply COMMAND --help):\n{commands}\n\n"
        "exit codes: 0 ok or no changes, 1 error, 2 changes (--detailed-exitcode), 3 invalid manifests",
    )
    _configure_apply_form(parser)
    return parser


def _run_apply_form(argv: Sequence[str]) -> ExitCode:
    args = _apply_form_parser().parse_args(argv)
    _configure_logging(args)
    return _run_apply_paths(args)


# --- plan --out FILE / apply FILE ------------------------------------------------------


def _configure_plan(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="manifest files or directories")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="save the plan here (mode 0600: it holds the arguments), for 'redbeat-apply apply FILE'",
    )
    _add_connection(parser)
    _add_plan_options(parser)


def _run_plan(args: argparse.Namespace) -> ExitCode:
    return commands.plan(args.paths, _connection(args), _plan_options(args), _show(args), out=args.out)


def _configure_apply_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan_file", type=Path, metavar="FILE", help="a plan saved by 'redbeat-apply plan --out FILE'")
    _add_output(parser, DATA_FORMATS)
    _add_connection(parser, from_plan=True)


def _run_apply_file(args: argparse.Namespace) -> ExitCode:
    return commands.apply_file(
        args.plan_file, args.redis_url, _show(args), owner=args.owner, key_prefix=args.key_prefix
    )


# --- export and status -------------------------------------------------------------------


def _configure_export(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, metavar="DIR", help="where to write the manifests (created if missing)")
    parser.add_argument(
        "--all", action="store_true", help="every entry in Redis, not only the owner's (celery-redbeat ones included)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite manifest files that already exist in DIR")
    _add_output(parser, DATA_FORMATS)
    _add_connection(parser)


def _run_export(args: argparse.Namespace) -> ExitCode:
    return commands.export(args.directory, _connection(args), everything=args.all, force=args.force, output=args.output)


def _configure_status(parser: argparse.ArgumentParser) -> None:
    _add_output(parser, DATA_FORMATS)
    _add_connection(parser)


def _run_status(args: argparse.Namespace) -> ExitCode:
    return commands.status(_connection(args), output=args.output)


# --- migrate-django ------------------------------------------------------------------------


def _configure_migrate_django(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Write django-celery-beat's periodic tasks as redbeat manifests (OUTDIR/django-celery-beat.yaml)."
    )
    parser.epilog = "Exit codes: 0 all converted, 1 error (nothing written), 4 some tasks not converted (listed)."
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
    parser.add_argument(
        "-o", "--output", choices=("text", "json"), default="text", help="report format (default: text)"
    )


def _run_migrate_django(args: argparse.Namespace) -> ExitCode:
    return commands.migrate_django(
        args.outdir,
        database_url=args.database_url,
        settings_module=args.settings,
        omit_timezone=args.omit_timezone,
        force=args.force,
        output=args.output,
    )


# --- operating: history -------------------------------------------------------------------


def _configure_history(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", metavar="NAME", help="only this entry's runs")
    parser.add_argument(
        "--since",
        metavar="TIME|DURATION",
        help="runs claimed since this time (ISO 8601, UTC unless it says) or this long ago (90m)",
    )
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text", help="format (default: text)")
    _add_connection(parser)


def _run_history(args: argparse.Namespace) -> ExitCode:
    return commands.history(_connection(args), args.name, since=args.since, output=args.output)


# --- operating: pause and resume --------------------------------------------------------------


def _configure_pause(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the entry to hold")
    parser.add_argument(
        "--until",
        metavar="TIME|DURATION",
        help="resume by itself at this time (ISO 8601, UTC unless it says) or after this long (2h)",
    )
    parser.add_argument("--note", default="", metavar="TEXT", help="why (shown by status, plan and apply)")
    _add_connection(parser)


def _run_pause(args: argparse.Namespace) -> ExitCode:
    return commands.pause(_connection(args), args.name, until=args.until, note=args.note)


def _configure_resume(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the paused entry")
    _add_connection(parser)


def _run_resume(args: argparse.Namespace) -> ExitCode:
    return commands.resume(_connection(args), args.name)


# --- operating: trigger -------------------------------------------------------------------------


def _configure_trigger(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the entry to run once now")
    parser.add_argument("--note", default="", metavar="TEXT", help="why (in the run history and the audit trail)")
    _add_connection(parser)


def _run_trigger(args: argparse.Namespace) -> ExitCode:
    return commands.trigger(_connection(args), args.name, note=args.note)


# --- operating: audit --------------------------------------------------------------------------


def _configure_audit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=_positive, metavar="N", help="only the last N records (N >= 1)")
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text", help="format (default: text)")
    _add_connection(parser)


def _run_audit(args: argparse.Namespace) -> ExitCode:
    return commands.audit(_connection(args), limit=args.limit, output=args.output)


# --- console ------------------------------------------------------------------------------------


def _configure_console(parser: argparse.ArgumentParser) -> None:
    from reconciler.console.server import DEFAULT_HOST, DEFAULT_PORT

    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                        help="manifest files or directories: show each entry's sync state against them")
    parser.add_argument("--listen", type=_listen, default=None, metavar="HOST:PORT",
                        help=f"address to serve on (default {DEFAULT_HOST}:{DEFAULT_PORT}: this machine only)")
    parser.add_argument("--console-token-file", type=Path, metavar="FILE",
                        help="admin token (one line, >= 16 characters) that turns on trigger, pause and resume "
                        "(env REDBEAT_CONSOLE_TOKEN); without one the console is read-only")
    group = parser.add_argument_group("Redis")
    group.add_argument("--redis-url", default=os.environ.get("REDBEAT_REDIS_URL", "redis://localhost:6379/0"),
                       help="as for status (env REDBEAT_REDIS_URL; default redis://localhost:6379/0)")
    group.add_argument("--key-prefix", default=os.environ.get("REDBEAT_KEY_PREFIX", "redbeat:"),
                       help="the scheduler's redbeat_key_prefix (env REDBEAT_KEY_PREFIX; default redbeat:)")


def _run_console(args: argparse.Namespace) -> ExitCode:
    from reconciler.console import server

    host, port = (args.listen.host, args.listen.port) if args.listen else (server.DEFAULT_HOST, server.DEFAULT_PORT)
    return commands.console(
        server.Settings(args.redis_url, args.key_prefix, host, port, tuple(args.paths), args.console_token_file)
    )


SUBCOMMANDS: dict[str, Command] = {
    "validate": Command("check manifests without touching Redis", _configure_validate, _run_validate),
    "plan": Command("show (and save with --out FILE) what an apply would change", _configure_plan, _run_plan),
    "apply": Command(
        "apply a plan saved by 'plan --out FILE', refusing if Redis changed since",
        _configure_apply_file,
        _run_apply_file,
    ),
    "export": Command("write the entries in Redis as manifests", _configure_export, _run_export),
    "status": Command("show every entry in Redis: owner, schedule, next run, last run", _configure_status, _run_status),
    "schema": Command("print the manifest JSON Schema", _configure_schema, _run_schema),
    "migrate-django": Command(
        "write django-celery-beat's periodic tasks as manifests (needs the [django] extra)",
        _configure_migrate_django,
        _run_migrate_django,
    ),
    "history": Command("show the runs beat claimed and what became of them", _configure_history, _run_history),
    "pause": Command(
        "hold an entry (beat skips it) until resumed or --until, without editing manifests",
        _configure_pause,
        _run_pause,
    ),
    "resume": Command("lift an entry's pause", _configure_resume, _run_resume),
    "trigger": Command("run an entry once now (the leading beat sends it, once)", _configure_trigger, _run_trigger),
    "audit": Command("show who applied which revision and every pause and resume", _configure_audit, _run_audit),
    "console": Command("serve the web console: schedules, timeline, history, audit, health (and actions with a token)",
                       _configure_console, _run_console),
}


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="redbeat-apply", description="Reconcile Celery beat schedules in Redis with YAML manifests.")
    _add_version(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, command in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=command.help, description=command.help)
        command.configure(sub)
        _add_verbosity(sub)
        sub.set_defaults(run=command.run)
    return parser


def _options_with_values() -> frozenset[str]:
    """The apply form's options that take a value (``--redis-url URL``): the word after one is not a command."""
    actions = _apply_form_parser()._actions
    return frozenset(option for action in actions if action.nargs != 0 for option in action.option_strings)


def _split_command(argv: list[str]) -> list[str] | None:
    """``argv`` with the sub-command first, or None for the apply form.

    Options may come before the sub-command as after it (``-v status``,
    ``--redis-url URL status`` -> ``status -v``, ``status --redis-url URL``);
    the sub-command's own parser then accepts them or says which it does not.
    """
    with_values = _options_with_values()
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "--":
            return None
        if token.startswith("-") and token != "-":
            index += 2 if "=" not in token and token in with_values else 1
            continue
        if token in SUBCOMMANDS:
            return [token, *argv[:index], *argv[index + 1 :]]
        return None
    return None


class _PipeSafeStdout:
    """stdout that goes quiet when the reader leaves (``redbeat-apply status | head``): no BrokenPipeError."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _silence(self) -> None:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):  # not a real file (a test's capture): dropping the output is enough
            pass
        self._stream = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - lives as long as the process

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except BrokenPipeError:
            self._silence()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._silence()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _dispatch(argv: list[str]) -> int:
    command_first = _split_command(argv)
    if command_first is None:
        return int(_run_apply_form(argv))
    args = _parser().parse_args(command_first)
    _configure_logging(args)
    return int(args.run(args))


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    real_stdout = sys.stdout
    sys.stdout = _PipeSafeStdout(real_stdout)
    try:
        with error_handler():
            return _dispatch(args_list)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else ExitCode.ERROR
    finally:
        try:
            sys.stdout.flush()
        finally:
            sys.stdout = real_stdout


if __name__ == "__main__":
    sys.exit(main())
