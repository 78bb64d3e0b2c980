"""Operator commands as a Redis user without the rights: one-line error, exit 1, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent / "redbeat-apply"
MANIFEST = "schedules:\n  - name: pulse\n    task: t.pulse\n    every: 1m\n"


def run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDBEAT_")}
    return subprocess.run([str(BIN), *args, "--redis-url", url], capture_output=True, text=True, timeout=60, env=env)


def test_a_reader_cannot_pause_or_resume_and_nothing_is_written(acl_redis, tmp_path):
    admin = acl_redis.admin()
    admin.flushall()
    (tmp_path / "jobs.yaml").write_text(MANIFEST)
    assert run(acl_redis.url("default", acl_redis.ADMIN_PASSWORD), str(tmp_path)).returncode == 0
    acl_redis.add_user("oncall", "oncall-pw-1", "~redbeat:*", "+@read", "+ping", "+info")
    before = {key: admin.dump(key) for key in admin.keys("*")}
    reader = acl_redis.url("oncall", "oncall-pw-1")
    # may run scripts and write the entry, but not append to the audit stream: still nothing written
    acl_redis.add_user("half", "half-pw-1", "~redbeat:*", "-@all", "+@read", "+eval", "+evalsha", "+hset", "+hdel",
                       "+zadd", "+publish", "&*")
    half = acl_redis.url("half", "half-pw-1")
    for url, message in ((reader, "no permissions to run the 'eval' command"), (half, "may not write the entry")):
        for args in (("pause", "pulse", "--note", "x"), ("resume", "pulse")):
            done = run(url, *args)
            assert done.returncode == 1 and done.stdout == "", done
            assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
            assert "nothing was written" in done.stderr and "Traceback" not in done.stderr
    assert {key: admin.dump(key) for key in admin.keys("*")} == before
    # reading is allowed
    assert run(reader, "history").returncode == 0
    assert run(reader, "audit").returncode == 0
