"""Run ONE tick of celery-redbeat 2.4.2's RedBeatScheduler against Redis, recording what it sends.

Run ONLY with the celery-redbeat venv python (see CONTRIBUTING.md):

    .cache/celery-redbeat-venv/bin/python tests/compat/cr_tick.py \
        --redis-url redis://127.0.0.1:PORT/0 --prefix redbeat: [--now 2026-11-25T12:00:00+00:00]

Broker `memory://`, no lock (redbeat_lock_key=None), built lazy (no setup_schedule, so statics
and celery.backend_cleanup are left alone). celery-redbeat's own
tick() runs unchanged: it selects due keys, loads them with from_key, reserves (writes meta and the
new score) and then "publishes"; only the publish is replaced by a recorder (send_task for
unregistered task names, Task.apply_async for registered ones). Prints
{"sent": [{name, task, args, kwargs, options}], "next_sleep": float} in send order.
"""

from __future__ import annotations

import uuid

from _cr_common import app_from_command_line, emit, guard

guard()

from celery.app.task import Task  # noqa: E402

from redbeat import RedBeatScheduler  # noqa: E402


class _Sent:
    def __init__(self) -> None:
        self.id = str(uuid.uuid4())


def main() -> None:
    app, _now = app_from_command_line(__doc__.splitlines()[0])
    sent: list[dict] = []
    # Scheduler.apply_async needs the entry name, which send_task doesn't get: remember it.
    current: dict = {}

    def record(task_name, task_args, task_kwargs, options):
        options = {k: v for k, v in options.items() if k not in ("producer", "headers")}
        sent.append({"name": current.get("name"), "task": task_name, "args": list(task_args or ()),
                     "kwargs": dict(task_kwargs or {}), "options": options})
        return _Sent()

    class RecordingScheduler(RedBeatScheduler):
        def apply_async(self, entry, producer=None, advance=True, **kwargs):
            current["name"] = entry.name
            try:
                return super().apply_async(entry, producer=producer, advance=advance, **kwargs)
            finally:
                current.clear()

        def send_task(self, name, args=None, kwargs=None, **options):
            return record(name, args, kwargs, options)

    def task_apply_async(self, args=None, kwargs=None, **options):
        return record(self.name, args, kwargs, options)

    Task.apply_async = task_apply_async

    # lazy=True: skip setup_schedule(), which would sync (here: delete) statics and add
    # celery.backend_cleanup; this script measures one tick over the data as it is.
    scheduler = RecordingScheduler(app=app, lock_key=None, lazy=True)
    scheduler.lock_key = None  # `lock_key or conf.lock_key`: make sure no lock is ever touched
    next_sleep = scheduler.tick()
    emit({"sent": sent, "next_sleep": next_sleep})


if __name__ == "__main__":
    main()
