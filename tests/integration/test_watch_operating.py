"""The watch mode and operator state: a pause holds through resyncs and drift corrections; applies are audited."""

from __future__ import annotations

from test_watch_loop import JOBS, run_loop

from reconciler.operating import audit
from reconciler.operating.operate import pause_entry
from redbeat.keys import KeySpace
from redbeat.operator import Pause

KEYS = KeySpace()


def test_a_pause_holds_through_resyncs_and_only_writing_applies_are_audited(tmp_path, redis_url, redis_client):
    (tmp_path / "jobs.yaml").write_text(JOBS)
    run_loop(tmp_path, redis_url, until=1)
    pause = Pause("alice@host", 1.0, None, "incident 4711")
    pause_entry(redis_client, KEYS, "a", pause)
    # a hand edit of the paused entry itself: the resync corrects the definition and keeps the pause
    redis_client.hset("redbeat:a", "definition", redis_client.hget("redbeat:a", "definition").replace("30.0", "1.0"))
    run_loop(tmp_path, redis_url, until=200)  # the drift correction, then resyncs at 60, 120, 180
    assert '"every": 30.0' in redis_client.hget("redbeat:a", "definition")
    assert redis_client.hget("redbeat:a", "pause") == pause.encode()  # the pause is not drift: kept
    records = audit.read(redis_client, KEYS)
    assert [(r["action"], r.get("counts")) for r in records] == [
        ("apply", {"create": 2}), ("pause", None), ("apply", {"update": 1, "no-op": 1})]
    assert records[0]["owner"] == "default" and records[0]["revision"].startswith("sha256:")
    assert records[2]["revision"] == records[0]["revision"]
