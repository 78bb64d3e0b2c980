"""The GitHub Action's pure parts: inputs, markdown that input cannot break, comment sizing and markers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "action"))  # as the step's PYTHONPATH does

from redbeat_action.comments import COMMENT_LIMIT, fit, marker  # noqa: E402
from redbeat_action.inputs import InputError, Mode, read_inputs  # noqa: E402
from redbeat_action.markdown import code, fence  # noqa: E402
from redbeat_action.runner import Runner, escape_data  # noqa: E402


def test_inputs_read_as_the_step_maps_them():
    inputs = read_inputs({"INPUT_MODE": "plan", "INPUT_PATH": "a dir/\n\n  b.yaml \n", "INPUT_KEY_PREFIX": "x: ",
                          "INPUT_COMMENT": "FALSE", "INPUT_OWNER": " team "})
    assert inputs.mode is Mode.PLAN and inputs.paths == (Path("a dir"), Path("b.yaml"))
    assert inputs.key_prefix == "x: " and inputs.comment is False and inputs.owner == "team"
    assert inputs.sarif_file is None


@pytest.mark.parametrize("text", ["plain", "a `b` c", "``x``", "`", "a|b", "<script>", "line\nbreak"])
def test_code_shows_any_text_literally(text):
    shown = code(text)
    ticks = len(shown) - len(shown.lstrip("`"))
    inner = shown[ticks:-ticks]
    if text.startswith("`") or text.endswith("`"):
        inner = inner[1:-1]  # CommonMark strips one space each side when the content touches a backtick
    assert "`" * ticks not in inner, "the delimiter never occurs inside"
    assert inner == text.replace("\n", " ").replace("|", "\\|")
    assert "\n" not in shown


def test_fence_outlasts_any_backtick_run():
    text = "before\n````\ninside\n"
    shown = fence(text, "diff")
    assert shown.startswith("`````diff\n") and shown.endswith("\n`````\n") and text in shown


def test_fit_cuts_to_the_comment_limit_with_a_note():
    assert fit("short", "cut") == "short"
    long = "x" * (COMMENT_LIMIT + 10)
    cut = fit(long, "cut; see the summary")
    assert len(cut) == COMMENT_LIMIT and cut.endswith("… cut; see the summary\n")


def test_marker_differs_per_owner_and_cannot_close_the_comment_early():
    assert marker("a", "redbeat:") != marker("b", "redbeat:") != marker("a", "other:")
    hostile = marker("--> <script>", "redbeat:")
    assert hostile.count("-->") == 1 and hostile.endswith("-->") and "<script>" not in hostile


def test_workflow_command_escaping_keeps_one_line():
    assert escape_data("50%\r\nnext") == "50%25%0D%0Anext"


def test_outputs_survive_newlines_and_equals(tmp_path):
    out = tmp_path / "out"
    Runner({"GITHUB_OUTPUT": str(out)}).set_output("body", "a=b\nc")
    name, rest = out.read_text().split("<<", 1)
    delimiter, value = rest.split("\n", 1)
    assert name == "body" and value == f"a=b\nc\n{delimiter}\n"


def test_bad_inputs_name_the_input():
    with pytest.raises(InputError, match="input mode: 'x' is not one of validate, plan, apply"):
        read_inputs({"INPUT_MODE": "x", "INPUT_PATH": "s"})
