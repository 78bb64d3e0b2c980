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
# Four pytest-xdist workers: most of the suite's time is spent waiting on the processes its tests start
# (redis-server, beat, worker, chromium, pip), so 4 workers keep 2 cores busy (~2x faster than one; README
# "Development"). worksteal: a worker that runs out of tests takes half of another's queue, so a few long tests
# do not leave one worker busy at the end. An -n among the arguments wins (-n 0: one process); --pdb and
# --trace need one process. Tests marked `exclusive` still run alone (tests/conftest.py).
parallel=(-n 4 --dist worksteal)
for arg in "$@"; do
    case "$arg" in
        --pdb | --trace) parallel=() ;;
    esac
done
redbeat_say "python -m pytest ${parallel[*]} $*"
status=0
"$REDBEAT_VENV/bin/python" -m pytest "${parallel[@]}" "$@" || status=$?
if [ "$status" -eq 5 ]; then
    # pytest's "no tests collected": a test command that ran nothing has not passed.
    printf 'error: pytest collected no tests (exit 5); treating that as a failure\n' >&2
    exit 1
fi
exit "$status"
