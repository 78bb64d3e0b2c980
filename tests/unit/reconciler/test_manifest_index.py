"""The incremental manifest index equals a cold check_manifests, and re-reads only the files that changed."""

from __future__ import annotations

import os
from pathlib import Path

from reconciler.manifests import index as index_module
from reconciler.manifests.checks import check_manifests
from reconciler.manifests.digest import content_digest
from reconciler.manifests.index import ManifestIndex


def schedules(*names: str, every: str = "30s") -> str:
    return "schedules:\n" + "".join(f"  - {{name: {n}, task: t.{n}, every: {every}}}\n" for n in names)


def assert_equals_cold(index: ManifestIndex) -> None:
    entries, errors = check_manifests(index.paths, compat=index.compat, allow_empty=index.allow_empty)
    assert index.entries == entries
    assert [str(e) for e in index.errors] == [str(e) for e in errors]
    assert index.digest == content_digest(entries)


def settled_index(paths: list[Path]) -> ManifestIndex:
    """An index whose clock is far ahead, so every identity it reads is trusted (no racy window)."""
    return ManifestIndex(paths, clock=lambda: 4e9)


def test_a_refresh_rechecks_only_the_file_that_changed(tmp_path, monkeypatch):
    (tmp_path / "a.yaml").write_text(schedules("a1", "a2"))
    (tmp_path / "b.yaml").write_text(schedules("b1"))
    index = settled_index([tmp_path])
    first = index.refresh()
    assert first.names == {"a1", "a2", "b1"}
    assert_equals_cold(index)
    parsed: list[Path] = []
    real_parse = index_module.parse_text
    monkeypatch.setattr(index_module, "parse_text", lambda path, text: parsed.append(path) or real_parse(path, text))
    assert index.refresh().names == frozenset() and parsed == []
    (tmp_path / "b.yaml").write_text(schedules("b1", every="45s") + "  - {name: b2, task: t, every: 1m}\n")
    refresh = index.refresh()
    assert parsed == [tmp_path / "b.yaml"] and refresh.names == {"b1", "b2"}
    assert_equals_cold(index)


def test_duplicates_moves_deletes_and_invalid_files_match_a_cold_check(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(schedules("x", "y"))
    b.write_text(schedules("x", "z"))  # x is a duplicate: a.yaml's wins
    index = settled_index([tmp_path])
    index.refresh()
    assert_equals_cold(index)
    assert any("duplicate name 'x'" in str(e) for e in index.errors)
    a.write_text(schedules("y"))  # x moves to b.yaml only
    assert "x" in index.refresh().names
    assert_equals_cold(index)
    assert index.errors == []
    b.write_text("schedules: [")
    index.refresh()
    assert_equals_cold(index)
    b.unlink()
    (tmp_path / "c.yml").write_text(schedules("x", "y"))  # y now duplicated across a and c
    index.refresh()
    assert_equals_cold(index)
    for path in (a, tmp_path / "c.yml"):
        path.unlink()
    index.refresh()
    assert_equals_cold(index)  # "no manifests in this directory"
    assert index.entries == {}


def test_a_same_size_rewrite_within_the_racy_window_is_seen(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text(schedules("a", every="30s"))
    st = path.stat()
    index = ManifestIndex([tmp_path])  # real clock: the file was just written, so it is hashed next time
    index.refresh()
    path.write_text(schedules("a", every="40s"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime: identity cannot tell
    assert index.refresh().names == {"a"}
    assert index.entries["a"].definition["schedule"]["every"] == 40.0


def test_a_configmap_style_symlink_swap_is_seen(tmp_path):
    mount = tmp_path / "mount"
    mount.mkdir()
    for version, every in (("..v1", "30s"), ("..v2", "40s")):
        (mount / version).mkdir()
        (mount / version / "jobs.yaml").write_text(schedules("a", every=every))
    os.symlink("..v1", mount / "..data")
    os.symlink("..data/jobs.yaml", mount / "jobs.yaml")
    index = settled_index([mount])
    index.refresh()
    assert index.entries["a"].definition["schedule"]["every"] == 30.0
    os.symlink("..v2", mount / "..data_tmp")
    os.replace(mount / "..data_tmp", mount / "..data")
    assert index.refresh().names == {"a"}
    assert index.entries["a"].definition["schedule"]["every"] == 40.0
    assert_equals_cold(index)
