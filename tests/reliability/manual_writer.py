"""A user's own process saving and deleting entries while beat and redbeat-apply run (scenario 3).

    python manual_writer.py REDIS_URL SECONDS OUT_FILE MANAGED_NAMES(comma-separated)

Creates entries ``manual-K`` (every 0.2 s), re-saves each a few times with
new kwargs, deletes it, and never recreates a deleted name; also re-saves
apply-managed entries (drift apply will undo).  Writes one JSON line per
deletion, after it returned: {"name", "deleted_at"}; and a last line
{"saves": N, "deletes": N}.
"""

from __future__ import annotations

import json
import random
import sys
import time
from datetime import datetime, timedelta, timezone

from celery import Celery
from celery.schedules import schedule

from redbeat import RedBeatSchedulerEntry


def main() -> None:
    url, seconds, out, managed = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4].split(",")
    app = Celery("manual-writer", set_as_current=False)
    app.conf.update(redbeat_redis_url=url, timezone="UTC", broker_url=url)
    rng = random.Random(3)
    live: list[str] = []
    saves = deletes = k = 0
    deadline = time.time() + seconds
    with open(out, "a") as fh:
        while time.time() < deadline:
            if len(live) < 5:
                name = f"manual-{k:03d}"
                k += 1
                RedBeatSchedulerEntry(name, "rel.record", schedule(timedelta(seconds=0.2)), args=[name],
                                      kwargs={"v": 0}, app=app, last_run_at=datetime.now(timezone.utc)).save()
                live.append(name)
                saves += 1
            name = rng.choice(live)
            entry = RedBeatSchedulerEntry.from_key(f"redbeat:{name}", app=app)
            entry.kwargs = {"v": rng.randrange(1000)}
            entry.save()
            saves += 1
            if rng.random() < 0.3:
                other = rng.choice(managed)
                entry = RedBeatSchedulerEntry.from_key(f"redbeat:{other}", app=app)
                entry.kwargs = {"gen": "manual"}
                entry.save()
                saves += 1
            if rng.random() < 0.15:
                victim = live.pop(0)
                RedBeatSchedulerEntry.from_key(f"redbeat:{victim}", app=app).delete()
                fh.write(json.dumps({"name": victim, "deleted_at": time.time()}) + "\n")
                fh.flush()
                deletes += 1
            time.sleep(rng.uniform(0.01, 0.08))
        fh.write(json.dumps({"saves": saves, "deletes": deletes}) + "\n")


if __name__ == "__main__":
    main()
