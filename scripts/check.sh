#!/usr/bin/env bash
# The fast checks (seconds): ruff (lint), mypy --strict (types), lint-imports (layers). Any finding fails.
#
#   bash scripts/check.sh        # uses .venv; scripts/test.sh creates it and runs this before pytest
#
# Their configuration is in pyproject.toml ([tool.ruff], [tool.mypy], [tool.importlinter]). All three
# run even when one fails, so one run shows every finding.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${REDBEAT_VENV:-$ROOT/.venv}/bin"
cd "$ROOT"
status=0
run() {
    printf '\033[1m==> %s\033[0m\n' "$*" >&2
    "$BIN/$@" || status=1
}
run ruff check --no-cache .
run mypy
run lint-imports --no-cache
if [ "$status" -ne 0 ]; then
    printf 'error: scripts/check.sh found problems (above); fix them before the tests run\n' >&2
fi
exit "$status"
