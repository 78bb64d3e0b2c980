#!/usr/bin/env bash
# The README's test command: install what the suite needs, then run all of it.
#
#   bash scripts/test.sh                 # the whole suite (what .ci/run does)
#   bash scripts/test.sh tests/unit -q   # any pytest arguments pass through
#
# Installs redis-server, kubectl and chromium + chromedriver (apt) if missing, creates/reuses .venv, installs
# '.[test]' into it, runs the fast checks (scripts/check.sh: ruff, mypy, lint-imports;
# seconds, and any finding fails the run) and then pytest.  The tests start their own redis-server
# processes on free ports; nothing here uses a Redis already running on 6379.
set -euo pipefail

# shellcheck source=scripts/lib/bootstrap.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/bootstrap.sh"

redbeat_ensure_redis_server
redbeat_ensure_kubectl
redbeat_ensure_chromium
redbeat_ensure_venv
redbeat_pip_install '.[test]'

cd "$REDBEAT_ROOT"
bash scripts/check.sh
redbeat_say "python -m pytest $*"
status=0
"$REDBEAT_VENV/bin/python" -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    # pytest's "no tests collected": a test command that ran nothing has not passed.
    printf 'error: pytest collected no tests (exit 5); treating that as a failure\n' >&2
    exit 1
fi
exit "$status"
