"""Scenario 6: security of ``redbeat-apply`` (RELIABILITY.md), through the real process.

* Only the safe YAML loader is reachable: every object-constructing tag is an
  error (exit 3, nothing written), and a canary file the payload would create
  never appears; a static check keeps unsafe PyYAML entry points out of the code.
* Secrets (values of kwargs/options keys that look like secrets) are masked in
  every output: the apply form and ``plan`` in text, markdown and JSON,
  ``status``, and ``--watch`` logs in both formats; the Redis password never
  appears.  The saved plan file is the documented exception (it must carry
  the values to apply them).
* The ``--watch`` HTTP listener binds to loopback unless told otherwise.
* An ACL user with only :data:`ACL_COMMANDS` on ``~redbeat:*`` and the wake
  channel can do everything; a read-only user gets a clear error, exit 1, and
  Redis unchanged.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote
from urllib.request import urlopen

import pytest
import yaml
from support.redis_dump import every_key
from support.redis_proc import (
    RedisProcess,
    commandstats,
    dirty_count,
    env_without_redbeat,
    free_port,
    wait_until,
    write_calls,
)

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parents[2]
FULL = os.environ.get("REDBEAT_RELIABILITY_SCALE", "").strip().lower() == "full"

#: The commands redbeat-apply needs (apply, plan, plan --out / apply FILE, status, export), found by
#: removing each in turn from a working set (test_acl_line_is_minimal); with ``~redbeat:*`` (the key
#: prefix) and ``&redbeat::wake`` (the channel an apply publishes to, so beat re-reads at once).
ACL_COMMANDS = (
    "evalsha",
    "evalsha_ro",
    "script|load",
    "hgetall",
    "smembers",
    "hmget",
    "zscore",
    "hget",
    "hset",
    "hdel",
    "del",
    "zrem",
    "zadd",
    "hexists",
    "sismember",
    "hlen",
    "sadd",
    # --adopt drops a bare-name member: test_adopt_and_take_over_with_the_minimal_acl (tests/topology) needs it
    "srem",
    "publish",
    "zrange",
    "xadd",
    "xrange",
)  # the audit record of an apply, the run history in status
ACL_KEYS = ("~redbeat:*", "&redbeat::wake")
ACL_LINE = (
    "user redbeat-apply on >PASSWORD resetchannels -@all "
    + " ".join(f"+{c}" for c in ACL_COMMANDS)
    + " "
    + " ".join(ACL_KEYS)
)

ADMIN_PASSWORD = "adm-SECRET-0"


def cli() -> list[str]:
    script = Path(sys.executable).with_name("redbeat-apply")
    return [str(script)] if script.exists() else [sys.executable, "-m", "reconciler.cli.main"]


def run(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cli(), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=env_without_redbeat(),
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def acl_redis(tmp_path):
    """A redis-server of the test's own whose default user needs a password."""
    server = RedisProcess(workdir=tmp_path / "redis", password=ADMIN_PASSWORD)
    server.dir.mkdir(parents=True, exist_ok=True)
    server.start()
    yield server
    server.cleanup()


def url_for(server: RedisProcess, user: str | None, password: str) -> str:
    auth = f"{quote(user or '', safe='')}:{quote(password, safe='')}@"
    return f"redis://{auth}127.0.0.1:{server.port}/0"




def write_manifest(path: Path, entries: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("schedules:\n" + "".join(f"  - {{name: {n}, task: app.tasks.t, every: {e}}}\n" for n, e in entries))


# --- 1. only the safe loader -------------------------------------------------------------------------

_JOB = "name: a\ntask: app.t\nevery: 30s\n"
PAYLOADS = {
    "apply-os-system": _JOB + 'kwargs: {x: !!python/object/apply:os.system ["touch {canary}"]}\n',
    "apply-subprocess": _JOB + 'args: [!!python/object/apply:subprocess.check_call [["touch", "{canary}"]]]\n',
    "new-os-system": 'name: !!python/object/new:os.system ["touch {canary}"]\ntask: app.t\nevery: 30s\n',
    "apply-exec": _JOB + "kwargs: {x: !!python/object/apply:builtins.exec [\"open('{canary}', 'w')\"]}\n",
    "name-reference": "name: a\ntask: !!python/name:os.system\nevery: 30s\n",
    "module": "name: a\ntask: app.t\nevery: 30s\nkwargs: {m: !!python/module:os}\n",
    "object-state": _JOB + 'kwargs: {o: !!python/object:subprocess.Popen {args: ["touch", "{canary}"]}}\n',
    "tuple": "name: a\ntask: app.t\nevery: 30s\nargs: !!python/tuple [1, 2]\n",
    "on-a-key": _JOB + 'kwargs:\n  ? !!python/object/apply:os.system ["touch {canary}"]\n  : 1\n',
    "in-a-merge": 'base: &b !!python/object/apply:os.system ["touch {canary}"]\n' + _JOB + "<<: *b\n",
    "second-document": 'name: ok\ntask: app.t\nevery: 30s\n---\n'
    'name: !!python/object/apply:os.system ["touch {canary}"]\n',
    "tag-directive": "%TAG !p! tag:yaml.org,2002:python/object/apply:\n---\n"
    + _JOB
    + 'kwargs: {x: !p!os.system ["touch {canary}"]}\n',
    "verbatim-tag": _JOB + 'kwargs: {x: !<tag:yaml.org,2002:python/object/apply:os.system> ["touch {canary}"]}\n',
    "in-defaults": 'defaults: {kwargs: {x: !!python/object/apply:os.system ["touch {canary}"]}}\n'
    "schedules:\n  - {name: a, task: app.t, every: 30s}\n",
    "local-tag": "name: a\ntask: !Ref app.t\nevery: 30s\n",
}


def test_object_tags_are_rejected_and_nothing_runs(tmp_path, redis_server, redis_client) -> None:
    """Every payload through the apply form (some through plan and validate too), concurrently.

    Each exits 3 naming the tag; no canary file appears and nothing is written.
    """
    jobs = []
    for name, template in PAYLOADS.items():
        case = tmp_path / name
        case.mkdir()
        canary = case / "CANARY"
        (case / "m.yaml").write_text(template.replace("{canary}", str(canary)))
        forms = [["--redis-url", redis_server.url]]
        if name in ("apply-os-system", "object-state", "tag-directive"):  # the other commands share the loader
            forms += [["plan", "--redis-url", redis_server.url], ["validate"]]
        for form in forms:
            jobs.append((name, canary, [*form, str(case / "m.yaml")]))
    before = dirty_count(redis_client)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda job: (job, run(*job[2])), jobs))
    for (name, canary, args), result in results:
        output = result.stdout + result.stderr  # validate reports on stdout, the apply forms on stderr
        context = f"{name}: {args}\n{output[-1500:]}"
        assert result.returncode == 3, context
        assert "Traceback" not in output, context
        assert any(
            why in output
            for why in ("is not allowed in a manifest", "invalid YAML", "mapping keys must be plain strings")
        ), context
        assert output.startswith(str(canary.parent / "m.yaml") + ":"), context
        assert not canary.exists(), f"{name}: the payload ran"
    assert dirty_count(redis_client) == before
    assert write_calls(commandstats(redis_client)) == {}


def test_only_the_safe_yaml_loader_is_reachable() -> None:
    """Static guard: no unsafe PyYAML entry point in the shipped code, and the manifest loader is a SafeLoader."""
    from reconciler.manifests import loader as manifest

    unsafe = {
        "load",
        "load_all",
        "unsafe_load",
        "unsafe_load_all",
        "full_load",
        "full_load_all",
        "Loader",
        "FullLoader",
        "UnsafeLoader",
        "CLoader",
        "CFullLoader",
        "CUnsafeLoader",
        "add_constructor",
        "add_multi_constructor",
        "construct_python_object_apply",
    }
    found = []
    for path in sorted([*ROOT.joinpath("reconciler").rglob("*.py"), *ROOT.joinpath("redbeat").rglob("*.py")]):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "yaml"
                and node.attr in unsafe
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: yaml.{node.attr}")
            if isinstance(node, ast.ImportFrom) and node.module == "yaml":
                found += [
                    f"{path.relative_to(ROOT)}:{node.lineno}: from yaml import {a.name}"
                    for a in node.names
                    if a.name in unsafe
                ]
    assert found == []
    assert issubclass(manifest._Loader, (yaml.SafeLoader, getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    assert not issubclass(manifest._Loader, (yaml.FullLoader, yaml.UnsafeLoader))


# --- 2. secrets masked in every output --------------------------------------------------------------

SECRETS = {
    "password": "SECRET-pw-1",
    "db_password": "SECRET-pw-2",
    "apiKey": "SECRET-key-3",
    "client_secret": "SECRET-cs-4",
    "access_token": "SECRET-tok-5",
    "X-Auth-Token": "SECRET-tok-6",
    "private_key": "SECRET-pk-7",
    "dsn": "SECRET-dsn-8",
}


def secret_manifest(path: Path, version: int) -> None:
    kwargs = {k: f"{v}-v{version}" for k, v in SECRETS.items()}
    kwargs["nested"] = {"token": f"SECRET-nested-v{version}", "visible": "plain-value"}
    doc = {
        "schedules": [
            {
                "name": "with-secrets",
                "task": "app.tasks.t",
                "every": "30s",
                "kwargs": kwargs,
                "options": {
                    "queue": "q",
                    "headers": {
                        "Authorization": f"Bearer SECRET-auth-v{version}",
                        "X-Api-Key": f"SECRET-hdr-v{version}",
                    },
                },
            }
        ]
    }
    doc["schedules"].append({"name": "plain", "task": "app.tasks.t", "every": "1m"})
    doc["schedules"].append({"name": "plain-2", "task": "app.tasks.t", "every": "2m"})
    doc["schedules"].append({"name": "plain-3", "task": "app.tasks.t", "every": "3m"})
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def assert_masked(label: str, text: str, redis_password: str) -> None:
    assert "SECRET" not in text, f"{label} shows a secret:\n{text[:3000]}"
    assert redis_password not in text and quote(redis_password, safe="") not in text, (
        f"{label} shows the Redis password"
    )


def test_secrets_masked_in_every_output(tmp_path, acl_redis) -> None:
    url = url_for(acl_redis, None, ADMIN_PASSWORD)
    manifests = tmp_path / "m"
    manifests.mkdir()
    secret_manifest(manifests / "jobs.yaml", 1)
    outputs: dict[str, subprocess.CompletedProcess[str]] = {}
    for fmt in ("text", "markdown", "json"):
        outputs[f"dry-run --output {fmt}"] = run("--dry-run", "--output", fmt, "--redis-url", url, str(manifests))
    outputs["apply (create)"] = run("--redis-url", url, str(manifests))
    assert outputs["apply (create)"].returncode == 0, outputs["apply (create)"].stderr
    assert "***" in outputs["apply (create)"].stdout and "plain-value" in outputs["apply (create)"].stdout
    secret_manifest(manifests / "jobs.yaml", 2)  # every secret changes: update diffs show old and new
    for fmt in ("text", "markdown", "json"):
        outputs[f"plan --output {fmt}"] = run("plan", "--output", fmt, "--redis-url", url, str(manifests))
    plan_path = tmp_path / "plan.json"
    outputs["plan --out FILE"] = run("plan", "--out", str(plan_path), "--redis-url", url, str(manifests))
    outputs["apply FILE"] = run("apply", "--redis-url", url, str(plan_path))
    assert outputs["apply FILE"].returncode == 0, outputs["apply FILE"].stderr
    outputs["status"] = run("status", "--redis-url", url)
    outputs["status --output json"] = run("status", "--output", "json", "--redis-url", url)
    secret_manifest(manifests / "jobs.yaml", 2)
    text = (manifests / "jobs.yaml").read_text().replace("name: with-secrets", "name: renamed-with-secrets")
    (manifests / "jobs.yaml").write_text(text)  # a delete (old values) and a create
    outputs["apply (delete + create) --output json"] = run("--output", "json", "--redis-url", url, str(manifests))
    outputs["apply with a wrong password"] = run(
        "--redis-url", url.replace(ADMIN_PASSWORD, "wr0ng-SECRET"), str(manifests)
    )
    for label, result in outputs.items():
        assert_masked(label, result.stdout + result.stderr, ADMIN_PASSWORD)
    updated = json.loads(run("plan", "--output", "json", "--redis-url", url, str(manifests)).stdout)
    assert updated["has_changes"] is False
    document = json.loads(outputs["plan --output json"].stdout)
    fields = {f["path"]: f for c in document["changes"] for f in c["fields"]}
    assert fields["kwargs.password"] == {"path": "kwargs.password", "old": "***", "new": "***"}
    assert fields["options.headers.Authorization"]["new"] == "***"
    # the documented exception: a saved plan carries the values it will write (keep it like the manifests)
    assert "SECRET-pw-1-v2" in plan_path.read_text()


def test_secrets_inside_lists_are_masked(tmp_path, redis_url) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("name: a\ntask: app.t\nevery: 30s\nkwargs:\n  servers: [{host: h1, api_key: SECRET-in-list}]\n")
    for fmt in ("text", "markdown", "json"):
        result = run("--dry-run", "--output", fmt, "--redis-url", redis_url, str(path))
        assert result.returncode == 0, result.stderr
        assert "SECRET" not in result.stdout, f"{fmt}:\n{result.stdout}"


# --- 3. watch mode: loopback listener, masked logs ---------------------------------------------------


def host_address() -> str | None:
    """This machine's address on its default route (not loopback), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent
        except OSError:
            return None
        address = sock.getsockname()[0]
    return None if address.startswith("127.") else address


def listening(pid: int) -> list[str]:
    """Local addresses of the TCP sockets ``pid`` listens on (``ss -ltnp``)."""
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, timeout=10).stdout
    return [line.split()[3] for line in out.splitlines() if f"pid={pid}," in line]


class Watch:
    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self.handle = log.open("wb")
        self.proc = subprocess.Popen(
            [*cli(), "--watch", "--debounce", "50ms", *args],
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            env=env_without_redbeat(),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.handle.close()
        return self.proc.returncode


@pytest.mark.slow
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_watch_listens_on_loopback_and_masks_its_logs(log_format, tmp_path, acl_redis) -> None:
    url = url_for(acl_redis, None, ADMIN_PASSWORD)
    manifests = tmp_path / "m"
    manifests.mkdir()
    secret_manifest(manifests / "jobs.yaml", 1)
    port = free_port()
    # "--listen :PORT" leaves the host to the default, which must be loopback; the text run also
    # tries the real default (127.0.0.1:9185) when that port is free here
    default_port_free = False
    if log_format == "text":
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", 9185))
                default_port_free = True
            except OSError:
                pass
    listen_args = [] if default_port_free else ["--listen", f":{port}"]
    if default_port_free:
        port = 9185
    canary = tmp_path / "CANARY"
    watch = Watch(
        ["--redis-url", url, "--log-format", log_format, *listen_args, str(manifests)], tmp_path / "watch.log"
    )
    try:
        wait_until(
            lambda: "applied" in watch.text() or watch.proc.poll() is not None, timeout=20, message="first apply"
        )
        assert watch.proc.poll() is None, watch.text()
        addresses = wait_until(lambda: listening(watch.proc.pid), timeout=10, message="the listener")
        assert addresses == [f"127.0.0.1:{port}"], addresses
        with urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
            assert reply.status == 200
        other = host_address()
        if other is not None:
            with pytest.raises(OSError):
                socket.create_connection((other, port), timeout=2).close()
        # a change of secrets (logged as field paths), then a payload file (logged as an error, never run)
        secret_manifest(manifests / "jobs.yaml", 2)
        wait_until(lambda: watch.text().count("applied") >= 2, timeout=20, message="the second apply")
        (manifests / "evil.yaml").write_text(PAYLOADS["apply-os-system"].replace("{canary}", str(canary)))
        wait_until(lambda: "is not allowed in a manifest" in watch.text(), timeout=20, message="the payload error")
    finally:
        code = watch.stop()
    log = watch.text()
    assert code == 0, log[-3000:]
    assert not canary.exists()
    assert "kwargs.password" in log  # the change is logged, by field path
    assert_masked(f"watch log ({log_format})", log, ADMIN_PASSWORD)
    if log_format == "json":
        for line in log.splitlines():
            json.loads(line)


# --- 4. ACL: a minimal user works, a read-only user is refused cleanly ----------------------------


def lifecycle(workdir: Path, url: str) -> list[tuple[str, subprocess.CompletedProcess[str]]]:
    """Everything the reconciler does, in order.

    create, no-op, update + delete, plan --out, apply FILE, status, export.
    """
    manifest = workdir / "m" / "jobs.yaml"
    steps = []
    write_manifest(manifest, [("a1", "30s"), ("a2", "1m"), ("a3", "2m"), ("a4", "3m")])
    steps.append(("apply (create)", run("--redis-url", url, str(manifest.parent))))
    steps.append(("apply (no-op)", run("--redis-url", url, str(manifest.parent))))
    write_manifest(manifest, [("a1", "45s"), ("a2", "1m"), ("a3", "2m")])
    steps.append(("apply (update + delete)", run("--redis-url", url, str(manifest.parent))))
    write_manifest(manifest, [("a1", "50s"), ("a2", "1m"), ("a3", "2m")])
    steps.append(
        ("plan --out", run("plan", "--out", str(workdir / "p.json"), "--redis-url", url, str(manifest.parent)))
    )
    steps.append(("apply FILE", run("apply", "--redis-url", url, str(workdir / "p.json"))))
    steps.append(("status", run("status", "--redis-url", url)))
    steps.append(("export", run("export", "--redis-url", url, str(workdir / "export"))))
    return steps


def set_user(admin, name: str, password: str, *rules: str) -> None:
    admin.execute_command("ACL", "SETUSER", name, "reset", "on", f">{password}", "resetchannels", *rules)


def test_minimal_acl_user_can_do_everything(tmp_path, acl_redis) -> None:
    admin = acl_redis.client()
    set_user(admin, "redbeat-apply", "apply-pw", "-@all", *[f"+{c}" for c in ACL_COMMANDS], *ACL_KEYS)
    admin.script_flush()  # the first apply must load its script itself
    steps = lifecycle(tmp_path, url_for(acl_redis, "redbeat-apply", "apply-pw"))
    for label, result in steps:
        assert result.returncode == 0, f"{label}: {result.stderr}"
    assert admin.hlen("redbeat::owner:default") == 3 and admin.zcard("redbeat::schedule") == 3
    assert '"every": 50.0' in admin.hget("redbeat:a1", "definition")
    # docs/topologies.md documents the same line
    documented = next(
        line
        for line in (ROOT / "docs" / "topologies.md").read_text().splitlines()
        if line.startswith("ACL SETUSER deployer ")
    )
    assert set(documented.split()) - {"ACL", "SETUSER", "deployer", "on", ">PASSWORD"} == {
        "-@all",
        *[f"+{c}" for c in ACL_COMMANDS],
        *ACL_KEYS,
    }


@pytest.mark.slow
def test_acl_line_is_minimal(tmp_path, acl_redis) -> None:
    """Without any one of ACL_COMMANDS, or either key/channel rule, some step fails.

    Every rule at full scale (one apply life cycle each, ~1 min); at the default
    scale a fixed sample that covers a script command, a write, the channel and
    the key pattern.
    """
    admin = acl_redis.client()
    unneeded = []
    # srem is needed only by --adopt, which this life cycle does not run (tests/topology/test_acl.py shows it).
    rules_to_drop = [c for c in ACL_COMMANDS if c != "srem"] + list(ACL_KEYS)
    if not FULL:
        rules_to_drop = [r for r in rules_to_drop if r in ("evalsha_ro", "zadd", "publish", "hset")] + list(ACL_KEYS)
        assert len(rules_to_drop) == 6, rules_to_drop
    for index, leave_out in enumerate(rules_to_drop):
        admin.flushall()
        admin.script_flush()
        rules = [f"+{c}" for c in ACL_COMMANDS if c != leave_out] + [k for k in ACL_KEYS if k != leave_out]
        set_user(admin, "redbeat-apply", "apply-pw", "-@all", *rules)
        workdir = tmp_path / str(index)
        steps = lifecycle(workdir, url_for(acl_redis, "redbeat-apply", "apply-pw"))
        if all(result.returncode == 0 for _, result in steps):
            unneeded.append(leave_out)
    assert unneeded == []


def seed(acl_redis, workdir: Path) -> Path:
    manifest = workdir / "m" / "jobs.yaml"
    write_manifest(manifest, [("a1", "30s"), ("a2", "1m"), ("a3", "2m"), ("a4", "3m")])
    result = run("--redis-url", url_for(acl_redis, None, ADMIN_PASSWORD), str(manifest.parent))
    assert result.returncode == 0, result.stderr
    # the next apply creates a0, updates a1 and deletes a4: every kind of write
    write_manifest(manifest, [("a0", "10s"), ("a1", "45s"), ("a2", "1m"), ("a3", "2m")])
    return manifest.parent


@pytest.mark.parametrize(
    "rules",
    [
        pytest.param(("-@all", "+@read", "~redbeat:*"), id="read-only"),
        pytest.param(("-@all", "+@read", "+@scripting", "~redbeat:*", "&*"), id="read-only-with-scripting"),
        pytest.param(("-@all", "+@read", "+@connection", "%R~redbeat:*", "&*"), id="read-only-keys"),
    ],
)
def test_read_only_user_gets_a_clear_error_and_nothing_partial(rules, tmp_path, acl_redis) -> None:
    admin = acl_redis.client()
    manifests = seed(acl_redis, tmp_path)
    set_user(admin, "reader", "read-pw", *rules)
    before, dirty = every_key(admin), dirty_count(admin)
    result = run("--redis-url", url_for(acl_redis, "reader", "read-pw"), str(manifests))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("redbeat-apply: error: Redis at redis://reader:***@"), message
    assert any(why in message for why in ("permission", "can't run this command", "may not run")), message
    if "applying" in message:  # refused at the write, not at the read
        assert "nothing was written" in message, message
    assert every_key(admin) == before
    assert dirty_count(admin) == dirty
    assert "read-pw" not in result.stdout + result.stderr


@pytest.mark.parametrize("missing", ["del", "zadd", "hdel", "publish"])
def test_user_missing_one_write_permission_leaves_nothing_partial(missing, tmp_path, acl_redis) -> None:
    """A user allowed some writes but not all: the apply must still be all or nothing (docs/design.md §6.5).

    Found while writing this suite: the apply script used to fail half-way (Redis scripts do not roll
    back) and the CLI said "nothing was written"; apply now checks the user's rights before any write.
    """
    admin = acl_redis.client()
    manifests = seed(acl_redis, tmp_path)
    set_user(admin, "partial", "partial-pw", "-@all", *[f"+{c}" for c in ACL_COMMANDS if c != missing], *ACL_KEYS)
    before = every_key(admin)
    result = run("--redis-url", url_for(acl_redis, "partial", "partial-pw"), str(manifests))
    assert result.returncode == 1, result.stdout + result.stderr
    after = every_key(admin)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert changed == [], f"without {missing}: {changed} changed, and the CLI said: {result.stderr.strip()}"
    assert "nothing was written" in result.stderr.strip().splitlines()[-1]
