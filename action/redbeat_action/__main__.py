"""Entry point of the action's run step: ``python -m redbeat_action`` with the inputs in ``INPUT_*``."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import TextIO

from . import modes
from .inputs import ActionInputs, InputError, Mode, read_inputs
from .runner import Runner, error

MODES: dict[Mode, Callable[[ActionInputs, Mapping[str, str], Runner, TextIO], int]] = {
    Mode.VALIDATE: modes.validate,
    Mode.PLAN: modes.plan,
    Mode.APPLY: modes.apply,
}


def main(env: Mapping[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    try:
        inputs = read_inputs(env)
    except InputError as exc:
        print(error(f"redbeat-apply action: {exc}"))
        return 1
    return MODES[inputs.mode](inputs, env, Runner(env), sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
