"""Day-two operations: status, pause/resume/trigger, and the audit stream."""
