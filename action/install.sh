#!/usr/bin/env bash
# The action's install step: redbeat-apply from the action's own checkout (the
# ref in `uses: OWNER/redbeat@REF`), in a venv of its own under RUNNER_TEMP
# (the runner's system Python refuses pip installs, PEP 668), put on PATH for
# the steps after it.
set -euo pipefail
python="${REDBEAT_ACTION_PYTHON:-python3}"
venv="${RUNNER_TEMP:?RUNNER_TEMP is not set}/redbeat-apply-venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${GITHUB_ACTION_PATH:?GITHUB_ACTION_PATH is not set}"
echo "$venv/bin" >> "${GITHUB_PATH:?GITHUB_PATH is not set}"
"$venv/bin/redbeat-apply" --help >/dev/null
