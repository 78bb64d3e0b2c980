"""core.bulk.gc_paused: the collector is off inside the block and as it was after it."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.core.bulk import gc_paused
from reconciler.manifests.checks import check_manifests


@pytest.fixture()
def gc_state() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_paused_inside_and_restored_after_even_on_error(gc_state: None) -> None:
    gc.enable()
    with pytest.raises(RuntimeError), gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block found it paused and left it so
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_collector_the_caller_turned_off_stays_off(gc_state: None) -> None:
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()


def test_checking_manifests_leaves_the_collector_on(gc_state: None, tmp_path: Path) -> None:
    gc.enable()
    (tmp_path / "a.yaml").write_text("name: a\ntask: t.a\nevery: 0s\n", encoding="utf-8")
    entries, errors = check_manifests([tmp_path])
    assert entries == {} and len(errors) == 1
    assert gc.isenabled()
