"""Helpers shared by the test directories: processes (redis-server, beat, worker, kubectl), rigs and snapshots."""
