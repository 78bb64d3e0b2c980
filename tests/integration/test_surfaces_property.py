"""Property: any name and kwargs go through validate -> plan (every format) -> apply -> status -> export.

No traceback, exit codes 0-3, every name shown literally, the Markdown plan under
GitHub's comment limit, and export then apply is a no-op.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.cli.main import main
from reconciler.sync.plan_report import GITHUB_COMMENT_LIMIT, md_code

SPECIAL = " []/:{}|`'\"<>#&*!%@,?-_.~$^\\"
NAME_CHARS = st.one_of(st.sampled_from(SPECIAL), st.characters(categories=("L", "N", "So", "Sm")))
NAMES = st.text(NAME_CHARS, min_size=1, max_size=200).filter(lambda n: n.strip() == n and n.strip())
KWARGS = st.dictionaries(
    st.text(NAME_CHARS, min_size=1, max_size=20),
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=30),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=6,
    ),
    max_size=4,
)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code in (0, 1, 2, 3), (args, code, err)
    assert "Traceback" not in out + err, (args, err)
    return code, out


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(names=st.lists(NAMES, min_size=1, max_size=4, unique_by=lambda n: n.casefold()), kwargs=KWARGS)
def test_any_name_goes_through_every_surface(
    names: list[str],
    kwargs: dict[str, object],
    redis_server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in ("REDBEAT_OWNER", "REDBEAT_KEY_PREFIX", "REDBEAT_REDIS_URL", "NO_COLOR"):
        monkeypatch.delenv(variable, raising=False)
    client = redis_server.client()
    client.flushall()
    work = tmp_path / "work"
    shutil.rmtree(work, ignore_errors=True)
    (work / "in").mkdir(parents=True)
    manifest = {"schedules": [{"name": n, "task": "app.tasks.job", "every": "5m", "kwargs": kwargs} for n in names]}
    (work / "in" / "jobs.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True), encoding="utf-8")
    url = ["--redis-url", redis_server.url]

    code, out = run(capsys, "validate", "-o", "json", str(work / "in"))
    if code == 3:  # refused: each error is reported, nothing more to check
        assert json.loads(out)["errors"]
        return
    assert code == 0, out
    for fmt in ("text", "markdown", "json"):
        code, out = run(capsys, "plan", "-o", fmt, *url, str(work / "in"))
        assert code == 0
        for name in names:
            shown = (
                md_code(name)
                if fmt == "markdown"
                else (json.dumps(name, ensure_ascii=False)[1:-1] if fmt == "json" else name)
            )
            assert shown in out, (fmt, name)
        if fmt == "markdown":
            assert len(out) < GITHUB_COMMENT_LIMIT
    assert run(capsys, *url, str(work / "in"))[0] == 0
    code, out = run(capsys, "status", *url)
    assert code == 0
    for name in names:
        assert name in out, name
    rows = json.loads(run(capsys, "status", "-o", "json", *url)[1])["entries"]
    assert sorted(r["name"] for r in rows) == sorted(names)
    assert all(r["problem"] is None for r in rows)
    assert run(capsys, "export", *url, str(work / "out"))[0] == 0
    code, out = run(capsys, "--dry-run", "-o", "json", *url, str(work / "out"))
    assert code == 0
    assert json.loads(out)["has_changes"] is False
