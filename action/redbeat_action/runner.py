"""The runner's files and workflow commands: step outputs, the job summary, annotations."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path


def escape_data(text: str) -> str:
    """A workflow command's message: %, CR and LF are escaped so one command stays one line."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def error(message: str) -> str:
    return f"::error::{escape_data(message)}"


def warning(message: str) -> str:
    return f"::warning::{escape_data(message)}"


class Runner:
    """Writes to the files the runner names in ``GITHUB_OUTPUT`` and ``GITHUB_STEP_SUMMARY``."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.output_file = Path(env["GITHUB_OUTPUT"]) if env.get("GITHUB_OUTPUT") else None
        self.summary_file = Path(env["GITHUB_STEP_SUMMARY"]) if env.get("GITHUB_STEP_SUMMARY") else None

    def set_output(self, name: str, value: str) -> None:
        if self.output_file is None:
            return
        # The heredoc form, with a delimiter no value can contain: values may span lines.
        delimiter = f"ghadelimiter_{uuid.uuid4()}"
        with self.output_file.open("a", encoding="utf-8") as out:
            out.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")

    def add_summary(self, markdown: str) -> None:
        if self.summary_file is None:
            return
        with self.summary_file.open("a", encoding="utf-8") as out:
            out.write(markdown if markdown.endswith("\n") else markdown + "\n")
