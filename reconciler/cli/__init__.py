"""Command-line surfaces: redbeat-apply and the `celery redbeat` command."""
