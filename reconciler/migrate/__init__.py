"""One-off migrations into manifests (django-celery-beat)."""
