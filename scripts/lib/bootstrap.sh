# shellcheck shell=bash
# Shared set-up for scripts/test.sh and scripts/demo.sh; source it, don't run it.
#
# On a fresh Debian/Ubuntu machine (root, or a user with sudo) it installs what
# the project needs from apt and PyPI and nothing else:
#   redbeat_ensure_redis_server   apt-get install redis-server, unless one is on PATH
#   redbeat_ensure_kubectl        apt-get install kubernetes-client, unless kubectl is on PATH
#   redbeat_ensure_chromium       apt-get install chromium chromium-driver, unless both are on PATH
#   redbeat_ensure_venv           .venv in the repo (python3-venv from apt if needed)
#   redbeat_pip_install SPEC      pip install -e SPEC into .venv, skipped when nothing changed
# Set PYTHON to choose the interpreter (default python3; needs >= 3.10).

REDBEAT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REDBEAT_VENV="${REDBEAT_VENV:-$REDBEAT_ROOT/.venv}"
_redbeat_apt_updated=0

redbeat_say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
redbeat_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Run a command as root: directly when we are root, else through sudo.
redbeat_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        redbeat_die "need root or sudo to run: $*"
    fi
}

redbeat_apt_install() {
    command -v apt-get >/dev/null 2>&1 \
        || redbeat_die "apt-get not found; install these yourself and re-run: $*"
    if [ "$_redbeat_apt_updated" -eq 0 ]; then
        redbeat_say "apt-get update"
        redbeat_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        _redbeat_apt_updated=1
    fi
    redbeat_say "apt-get install $*"
    redbeat_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

redbeat_ensure_redis_server() {
    if ! command -v redis-server >/dev/null 2>&1; then
        redbeat_apt_install redis-server
    fi
    # Debian installs it in /usr/bin; some images keep /usr/sbin off PATH.
    command -v redis-server >/dev/null 2>&1 || redbeat_die "redis-server is still not on PATH after installing it"
}

# kubectl renders deploy/kubernetes in the suite (`kubectl kustomize`); no
# cluster is needed.  Debian ships it as kubernetes-client.
redbeat_ensure_kubectl() {
    if ! command -v kubectl >/dev/null 2>&1; then
        redbeat_apt_install kubernetes-client
    fi
    command -v kubectl >/dev/null 2>&1 || redbeat_die "kubectl is still not on PATH after installing kubernetes-client"
}

# The console's browser tests (tests/e2e/test_console_browser.py) drive Debian's headless
# chromium through its chromedriver; nothing downloads a browser of its own.
redbeat_ensure_chromium() {
    if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
        redbeat_apt_install chromium chromium-driver
    fi
    command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 \
        || redbeat_die "chromium and chromedriver are still not on PATH after installing chromium chromium-driver"
}

_redbeat_python() {
    local python="${PYTHON:-python3}"
    if ! command -v "$python" >/dev/null 2>&1; then
        redbeat_apt_install python3 python3-venv
    fi
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
        || redbeat_die "$python is $("$python" -V 2>&1); redbeat needs Python >= 3.10 (set PYTHON=...)"
    printf '%s\n' "$python"
}

redbeat_ensure_venv() {
    if [ -x "$REDBEAT_VENV/bin/python" ] && "$REDBEAT_VENV/bin/python" -c 'import pip' >/dev/null 2>&1; then
        return 0
    fi
    local python
    python="$(_redbeat_python)"
    rm -rf "$REDBEAT_VENV"
    redbeat_say "creating $REDBEAT_VENV ($("$python" -V 2>&1))"
    if ! "$python" -m venv "$REDBEAT_VENV" >/dev/null 2>&1; then
        # Debian splits ensurepip out of the interpreter package.
        rm -rf "$REDBEAT_VENV"
        local version
        version="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        redbeat_apt_install python3-venv "python${version}-venv" \
            || redbeat_apt_install python3-venv
        "$python" -m venv "$REDBEAT_VENV" || redbeat_die "could not create $REDBEAT_VENV"
    fi
}

# pip install -e SPEC (e.g. '.[test]'), quietly.  Skipped when pyproject.toml
# and SPEC are unchanged since the last successful install into this venv.
redbeat_pip_install() {
    local spec="$1" stamp="$REDBEAT_VENV/.redbeat-install" want
    want="$spec $(cksum <"$REDBEAT_ROOT/pyproject.toml")"
    if [ -f "$stamp" ] && grep -qxF "$want" "$stamp"; then
        return 0
    fi
    redbeat_say "pip install -e '$spec' (into ${REDBEAT_VENV#"$REDBEAT_ROOT"/})"
    (cd "$REDBEAT_ROOT" && PIP_DISABLE_PIP_VERSION_CHECK=1 "$REDBEAT_VENV/bin/python" -m pip install -q -e "$spec") \
        || redbeat_die "pip install -e '$spec' failed (network to PyPI needed)"
    printf '%s\n' "$want" >>"$stamp"
}
