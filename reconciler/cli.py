"""``redbeat-apply``: parse arguments, call one function, return an exit code.

The only module that prints or exits. Sub-commands are registered in
:data:`SUBCOMMANDS` (name -> :class:`Command`); when the first argument is not
a sub-command, the arguments are the top-level apply form
``redbeat-apply [flags] PATH...``, handled by :func:`_run_apply_form`.
"""

from __future__ import annotations

import argparse
import enum
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from reconciler import report
from reconciler.errors import ManifestErrors, RedbeatError


class ExitCode(enum.IntEnum):
    """Exit codes of every command (DESIGN §6), defined here only."""

    OK = 0  # success, valid, or no changes
    ERROR = 1  # any other error (usage, Redis, conflict ...)
    CHANGES = 2  # changes present (with --detailed-exitcode)
    INVALID = 3  # invalid manifests, including paths with no schedules


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error; 2 means "changes present" here, so use 1."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(ExitCode.ERROR, f"{self.prog}: error: {message}\n")


@dataclass(frozen=True)
class Command:
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


@contextmanager
def error_handler() -> Iterator[None]:
    """Turn the errors we raise on purpose into a message and an exit code (SystemExit)."""
    try:
        yield
    except ManifestErrors as exc:
        print(report.render_text(exc.errors), file=sys.stderr)
        raise SystemExit(ExitCode.INVALID) from None
    except RedbeatError as exc:
        print(f"redbeat-apply: error: {exc}", file=sys.stderr)
        raise SystemExit(ExitCode.ERROR) from None


# --- validate -----------------------------------------------------------------


def _configure_validate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="manifest files or directories (searched recursively)")
    parser.add_argument("-o", "--output", choices=report.FORMATS, default="text", help="report format (default: text)")
    parser.add_argument(
        "--compat",
        choices=("celery-redbeat",),
        help="also reject extensions that this scheduler cannot read (per-schedule timezone, nth weekdays)",
    )


def validate(paths: Sequence[Path], *, output: str = "text", compat: str | None = None) -> int:
    """Check manifests and print a report; writes nothing anywhere."""
    from reconciler.manifest import check_manifests

    entries, errors = check_manifests(paths, compat=compat)
    if errors:
        print(report.render_errors(errors, output, schedules=len(entries)))
        return ExitCode.INVALID
    if output == "text":
        files = len({e.source.file for e in entries.values()})
        count = len(entries)
        print(f"ok: {count} schedule{'s' if count != 1 else ''} in {files} file{'s' if files != 1 else ''}")
    elif output != "github":
        print(report.render_errors([], output, schedules=len(entries)))
    return ExitCode.OK


def _run_validate(args: argparse.Namespace) -> int:
    return validate(args.paths, output=args.output, compat=args.compat)


# --- schema -------------------------------------------------------------------


def _configure_schema(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def _run_schema(args: argparse.Namespace) -> int:
    from reconciler.schema import schema_text

    sys.stdout.write(schema_text())
    return ExitCode.OK


SUBCOMMANDS: dict[str, Command] = {
    "validate": Command("check manifests without touching Redis", _configure_validate, _run_validate),
    "schema": Command("print the manifest JSON Schema", _configure_schema, _run_schema),
}


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="redbeat-apply",
        description="Reconcile Celery beat schedules in Redis with YAML manifests.",
        epilog="Without a sub-command: redbeat-apply [flags] PATH... applies the manifests.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, command in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=command.help, description=command.help)
        command.configure(sub)
        sub.set_defaults(run=command.run)
    return parser


def _run_apply_form(argv: Sequence[str]) -> int:
    """``redbeat-apply [flags] PATH...`` (no sub-command). Replaced by the apply command."""
    del argv
    print("redbeat-apply: error: apply is not available yet", file=sys.stderr)
    return ExitCode.ERROR


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        with error_handler():
            if not args_list or (args_list[0] not in SUBCOMMANDS and args_list[0] not in ("-h", "--help")):
                return int(_run_apply_form(args_list))
            args = _parser().parse_args(args_list)
            return int(args.run(args))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else ExitCode.ERROR


if __name__ == "__main__":
    sys.exit(main())
