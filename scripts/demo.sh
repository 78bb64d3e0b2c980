#!/usr/bin/env bash
# The README's demo command: install what the demo needs, then run it.
#
#   bash scripts/demo.sh               # ~30 s: tasks running, an edit applied, the new timing
#   bash scripts/demo.sh --seconds 30  # arguments go to examples/demo/run.py
#
# Installs redis-server (apt) if missing, creates/reuses .venv and installs the
# project into it, then starts a throwaway redis-server, a Celery worker and
# celery beat -S redbeat.Scheduler, applies examples/schedules/ with
# redbeat-apply, shows the runs, and stops everything it started.
set -euo pipefail

# shellcheck source=scripts/lib/bootstrap.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/bootstrap.sh"

redbeat_ensure_redis_server
redbeat_ensure_venv
redbeat_pip_install '.'

cd "$REDBEAT_ROOT"
exec "$REDBEAT_VENV/bin/python" examples/demo/run.py "$@"
