"""Foundations every other package uses: error types, the desired-entry model, logging, git revisions."""
