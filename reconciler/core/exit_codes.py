"""The exit codes of every redbeat-apply command (docs/design.md §6.7), defined here only.

Every command, ``migrate-django``, the watch mode and the console included, is
a function that returns one of these; the CLI's error handler returns
:attr:`ExitCode.INVALID` for invalid manifests, :attr:`ExitCode.ERROR` for any
other error raised on purpose, and :attr:`ExitCode.INTERRUPTED` on Ctrl-C.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """What a command's exit status means; one number means one thing in every command."""

    OK = 0  # success, valid, or no changes
    ERROR = 1  # any other error (usage, Redis, conflict ...); nothing was written
    CHANGES = 2  # changes present (with --detailed-exitcode)
    INVALID = 3  # invalid manifests, including paths with no schedules; nothing was written
    PARTIAL = 4  # done in part: migrate-django wrote what it could convert and lists the rest
    INTERRUPTED = 130  # Ctrl-C (SIGINT), as shells report it: 128 + 2
