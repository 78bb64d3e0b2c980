"""Fixtures for integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.beat import PINNED_NOW, current, make_app
from support.celery_redbeat_venv import celery_redbeat_python as _celery_redbeat_python


@pytest.fixture
def app(redis_url):
    """A beat app on the session's redis-server, current, without a lock, its clock pinned at PINNED_NOW."""
    app = make_app(redis_url, now=PINNED_NOW, redbeat_lock_key=None)
    with current(app):
        yield app


@pytest.fixture(scope="session")
def celery_redbeat_python() -> Path:
    """The python of the celery-redbeat 2.4.2 venv (built on first use; fails, not skips, offline).

    Use it only to run tests/compat/cr_*.py in subprocesses (see support.celery_redbeat_venv.
    run_compat_script); mark such tests `@pytest.mark.compat`.
    """
    return _celery_redbeat_python()
