"""redbeat-apply's command line without Redis: exit codes, validate and its reports, parsing, Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.cli import report
from reconciler.cli.main import SUBCOMMANDS, ExitCode, main
from reconciler.core.errors import Location, ManifestError

JOB = "name: {name}\ntask: demo.tasks.job\nevery: 5s\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_exit_codes_are_the_documented_ones() -> None:
    assert [(c.name, int(c)) for c in ExitCode] == [
        ("OK", 0), ("ERROR", 1), ("CHANGES", 2), ("INVALID", 3), ("PARTIAL", 4), ("INTERRUPTED", 130),
    ]
    assert {"validate", "schema"} <= set(SUBCOMMANDS)


def test_validate_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "a.yaml", JOB.format(name="a") + "---\n" + JOB.format(name="b"))
    assert main(["validate", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "ok: 2 schedules in 1 file\n"


def test_validate_invalid_text_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "a.yaml", "schedules:\n  - name: a\n    task: demo.tasks.a\n    cron: '61 * * * *'\n")
    assert main(["validate", str(path)]) == 3
    assert capsys.readouterr().out == (
        f"{path}:4:11: schedules[0].cron: '61 * * * *': minute 61 is out of range 0-59\n"
        " 4 |     cron: '61 * * * *'\n"
        "   |           ^^^^^^^^^^^^\n"
        "1 error in 1 file\n"
    )


def test_validate_path_without_schedules_is_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path)]) == 3
    assert f"{tmp_path}: no manifests (*.yaml, *.yml) in this directory" in capsys.readouterr().out


def test_validate_compat_reports_extensions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "a.yaml", "name: a\ntask: demo.tasks.a\ncron: '0 9 * * *'\ntimezone: Europe/Berlin\n")
    assert main(["validate", str(path)]) == 0
    capsys.readouterr()
    assert main(["validate", "--compat", "celery-redbeat", "-o", "json", str(path)]) == 3
    payload = json.loads(capsys.readouterr().out)
    assert payload["valid"] is False
    assert [(e["line"], e["column"], e["field"], e["code"]) for e in payload["errors"]] == [
        (4, 11, "timezone", "compat")
    ]


def test_validate_json_when_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "a.yaml", JOB.format(name="a"))
    assert main(["validate", "--output", "json", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out) == {"valid": True, "schedules": 1, "valid_schedules": 1, "errors": []}


def test_usage_error_exits_1_not_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == 1
    assert "the following arguments are required: PATH" in capsys.readouterr().err
    assert main(["validate", "--output", "xml", "x"]) == 1


def test_arguments_without_subcommand_go_to_the_apply_form(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def fake_apply_form(argv: list[str]) -> int:
        seen.append(list(argv))
        return 2

    monkeypatch.setattr("reconciler.cli.main._run_apply_form", fake_apply_form)
    assert main(["--dry-run", "schedules/"]) == 2
    assert main(["schedules/"]) == 2
    assert main(["validate", "--help"]) == 0
    assert seen == [["--dry-run", "schedules/"], ["schedules/"]]


def test_options_before_the_subcommand_are_the_subcommands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--redis-url URL status`` is ``status --redis-url URL``, not an apply of a directory named status."""
    seen: list[list[str]] = []
    monkeypatch.setattr("reconciler.cli.main._run_apply_form", lambda argv: seen.append(list(argv)) or 2)
    path = write(tmp_path / "a.yaml", JOB.format(name="a"))
    assert main(["-q", "validate", str(path)]) == 0
    assert main(["--redis-url", "redis://127.0.0.1:1/0", "validate", str(path)]) == 1  # validate reads no Redis
    assert "unrecognized arguments: --redis-url" in capsys.readouterr().err
    assert main(["--redis-url=redis://x/0", "--owner", "validate", "schedules/"]) == 2  # owner named validate
    assert main(["--redis-url", "redis://x/0", "--", "validate"]) == 2
    assert seen == [["--redis-url=redis://x/0", "--owner", "validate", "schedules/"],
                    ["--redis-url", "redis://x/0", "--", "validate"]]


def test_ctrl_c_is_exit_130_and_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted() -> ExitCode:
        raise KeyboardInterrupt

    monkeypatch.setattr("reconciler.cli.commands.schema", interrupted)
    assert main(["schema"]) == ExitCode.INTERRUPTED == 130
    assert capsys.readouterr().err == "redbeat-apply: interrupted\n"


def test_every_command_runs_a_typed_function_that_returns_an_exit_code() -> None:
    """Each sub-command's parser goes to a one-line adapter; the command itself is a function of typed arguments."""
    import inspect

    from reconciler.cli import commands

    for name, command in SUBCOMMANDS.items():
        assert command.run.__annotations__["return"] == "ExitCode", name
    functions = [f for _, f in inspect.getmembers(commands, inspect.isfunction)
                 if f.__module__ == commands.__name__ and not f.__name__.startswith("_")]
    assert len(functions) >= 15
    for function in functions:
        annotations = dict(function.__annotations__)  # strings: the module has `from __future__ import annotations`
        assert annotations.pop("return") == "ExitCode", function.__name__
        parameters = inspect.signature(function).parameters
        assert set(annotations) == set(parameters), f"{function.__name__}: every parameter is typed"
        assert not [a for a in annotations.values() if "Namespace" in a or a == "Any"], function.__name__


def test_schema_command_prints_the_schema_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    out = capsys.readouterr().out
    root = Path(__file__).resolve().parents[3]
    assert out == (root / "schemas" / "redbeat-manifest.schema.json").read_text(encoding="utf-8")
    assert json.loads(out)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def _errors(count: int) -> list[ManifestError]:
    return [
        ManifestError(Location(Path(f"s/f{i:02d}.yaml"), i + 1, 3, f"schedules[{i}].cron"), f"bad {i}")
        for i in range(count)
    ]


def test_github_output_escapes_as_github_requires() -> None:
    error = ManifestError(
        Location(Path("dir,x/a:b.yaml"), 2, 5, "kwargs"), "100% wrong\nsecond line\r", "did you mean 'kwargs'?"
    )
    assert report.render_github([error]) == (
        "::error file=dir%2Cx/a%3Ab.yaml,line=2,col=5,title=redbeat-apply%3A kwargs::"
        "100%25 wrong%0Asecond line%0D (did you mean 'kwargs'?)"
    )


def test_github_output_caps_annotations_at_10() -> None:
    lines = report.render_github(_errors(15)).splitlines()
    annotations = [line for line in lines if line.startswith("::error ")]
    assert len(annotations) == 10
    assert lines[10:15] == [f"s/f{i:02d}.yaml:{i + 1}:3: schedules[{i}].cron: bad {i}" for i in range(10, 15)]
    assert lines[15] == "5 more errors not annotated (GitHub shows at most 10 annotations per step); listed above"
    assert len(report.render_github(_errors(10)).splitlines()) == 10


def test_validate_github_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "a.yaml", "name: a\ntask: demo.tasks.a\nevery: 0s\n")
    assert main(["validate", "-o", "github", str(path)]) == 3
    assert capsys.readouterr().out.startswith(f"::error file={path},line=3,col=8,")


def test_sarif_output() -> None:
    log = json.loads(report.render_sarif(_errors(2)))
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    assert run["tool"]["driver"]["name"] == "redbeat-apply"
    assert run["results"][1] == {
        "ruleId": "redbeat/manifest",
        "level": "error",
        "message": {"text": "schedules[1].cron: bad 1"},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": "s/f01.yaml"},
                    "region": {"startLine": 2, "startColumn": 3},
                }
            }
        ],
    }
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} >= {"redbeat/manifest", "redbeat/schema"}


def test_text_frame_with_hint_and_unknown_line() -> None:
    located = ManifestError(
        Location(Path("a.yaml"), 12, 5, "kwarg"),
        "unknown field 'kwarg'",
        "did you mean 'kwargs'?",
        end_column=10,
        source_line="    kwarg: {}",
    )
    whole_file = ManifestError(Location(Path("b.yaml"), None, None, ""), "file is empty")
    assert report.render_text([located, whole_file]) == (
        "a.yaml:12:5: kwarg: unknown field 'kwarg'\n"
        " 12 |     kwarg: {}\n"
        "    |     ^^^^^\n"
        "    = hint: did you mean 'kwargs'?\n"
        "b.yaml: file is empty\n"
        "2 errors in 2 files"
    )


def test_validate_warns_on_yaml_1_1_surprises_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "a.yaml", "name: a\ntask: demo.tasks.a\nevery: 1:30\n")
    assert main(["validate", "--output", "json", str(path)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["valid"] is True
    assert captured.err == (
        f"warning: {path}:3:8: every: unquoted 1:30 is a base-60 number in YAML 1.1 "
        "(not a time or a duration); quote it\n"
    )


def test_audit_limit_must_be_one_or_more(capsys: pytest.CaptureFixture[str]) -> None:
    # Redis refuses XREVRANGE COUNT 0 and the command said "error: Redis: ..." as if Redis were at fault.
    for value, words in (("0", "0 is not 1 or more"), ("-3", "-3 is not 1 or more"), ("x", "'x' is not a whole")):
        assert main(["audit", "--redis-url", "redis://127.0.0.1:1/0", "--limit", value]) == 1
        assert words in capsys.readouterr().err


def test_the_console_listens_on_loopback_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.console import server

    seen = []
    monkeypatch.setattr(server, "run", lambda settings, environ, say: seen.append(settings) or 0)
    assert main(["console", "--redis-url", "redis://127.0.0.1:1/0"]) == 0
    assert main(["console", "--redis-url", "redis://127.0.0.1:1/0", "--listen", "0.0.0.0:8080", "jobs/"]) == 0
    assert [(s.host, s.port, s.paths) for s in seen] == [("127.0.0.1", 9186, ()), ("0.0.0.0", 8080, (Path("jobs"),))]
