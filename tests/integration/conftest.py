"""Fixtures for integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.celery_redbeat_venv import celery_redbeat_python as _celery_redbeat_python


@pytest.fixture(scope="session")
def celery_redbeat_python() -> Path:
    """The python of the celery-redbeat 2.4.2 venv (built on first use; fails, not skips, offline).

    Use it only to run tests/compat/cr_*.py in subprocesses (see support.celery_redbeat_venv.
    run_compat_script); mark such tests `@pytest.mark.compat`.
    """
    return _celery_redbeat_python()
