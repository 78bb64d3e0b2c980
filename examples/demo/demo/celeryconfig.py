"""Settings of the demo app, from the environment.

DEMO_REDIS_URL      broker and schedule store (default redis://localhost:6379/0)
DEMO_LOCK_TIMEOUT   redbeat_lock_timeout in seconds (default 10)
"""

from __future__ import annotations

import os

_redis_url = os.environ.get("DEMO_REDIS_URL", "redis://localhost:6379/0")

broker_url = _redis_url
broker_connection_retry_on_startup = True
redbeat_redis_url = _redis_url
redbeat_lock_timeout = float(os.environ.get("DEMO_LOCK_TIMEOUT", "10"))

# The queues used by examples/schedules/*.yaml; the demo worker consumes all of them.
task_default_queue = "celery"
task_ignore_result = True
timezone = "UTC"
enable_utc = True
worker_hijack_root_logger = False
# No result backend, so no celery.backend_cleanup entry in the schedule.
result_expires = None
