"""The web console: schedules, timeline, entry, activity and health pages over Redis (and the manifests)."""
