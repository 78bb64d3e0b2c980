"""Schedule semantics: cron, durations, what Celery can run, and manifest <-> Redis entry conversion."""
