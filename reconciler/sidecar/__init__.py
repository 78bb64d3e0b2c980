"""Watch mode: file events, the reconcile loop, health endpoints and metrics."""
