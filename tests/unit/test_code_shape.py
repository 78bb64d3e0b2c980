"""The shape CONTRIBUTING.md promises: every module states its one job, no function is over 60 lines.

Every tracked ``.py`` file of the repository (code, tests, benchmarks,
examples) must open with a docstring whose first line says what it is for;
the functions of the shipped code, the benchmarks and the tests (``redbeat/``, ``reconciler/``,
``action/redbeat_action/``, ``bench/``, ``tests/``) are at most 60 lines.  Files are parsed with
:mod:`ast` (nothing is imported).  A function's length runs from its ``def`` line to its
last line, decorators left out; nested functions and methods count on their
own, under their ``__qualname__``-like name (``outer.<locals>.inner``,
``Class.method``).
"""

from __future__ import annotations

import ast
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("redbeat", "reconciler", "action/redbeat_action", "bench", "tests")
MAX_FUNCTION_LINES = 60

#: Functions still over the limit, each being shortened by the work named; "module:qualname" -> owner/why.
#: The test fails when one of them is no longer over the limit, so that the list only shrinks.
LONG_FUNCTIONS: dict[str, str] = {
}

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def functions(node: ast.AST, prefix: str = "") -> Iterator[tuple[str, FunctionNode]]:
    """Every function below ``node`` with its qualified name, nested ones included."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            name = prefix + child.name
            yield name, child
            yield from functions(child, f"{name}.<locals>.")
        elif isinstance(child, ast.ClassDef):
            yield from functions(child, f"{prefix}{child.name}.")
        else:  # functions defined under `if`, `try`, `with` ...
            yield from functions(child, prefix)


def length(function: FunctionNode) -> int:
    assert function.end_lineno is not None
    return function.end_lineno - function.lineno + 1


def long_functions(tree: ast.Module, module: str, limit: int = MAX_FUNCTION_LINES) -> dict[str, int]:
    """``{"module:qualname": lines}`` of the functions of ``tree`` longer than ``limit``."""
    return {f"{module}:{name}": length(node) for name, node in functions(tree) if length(node) > limit}


def all_long_functions() -> dict[str, int]:
    found: dict[str, int] = {}
    for path in source_files():
        found.update(long_functions(ast.parse(path.read_bytes(), str(path)), module_name(path)))
    return found


def test_the_packages_have_source_files() -> None:
    names = {module_name(path) for path in source_files()}
    assert {"redbeat", "redbeat.scheduler", "reconciler.cli.main", "reconciler.sync.state"} <= names
    assert {"tests.unit.test_code_shape", "tests.reliability.test_load", "tests.compat.cr_write"} <= names


def test_no_function_is_over_60_lines_but_the_listed_ones() -> None:
    unlisted = {name: lines for name, lines in all_long_functions().items() if name not in LONG_FUNCTIONS}
    assert unlisted == {}, f"functions over {MAX_FUNCTION_LINES} lines (split them): {unlisted}"


def test_every_listed_long_function_is_still_long() -> None:
    """A function shortened (or renamed, or gone) leaves the list: it only shrinks."""
    stale = sorted(set(LONG_FUNCTIONS) - set(all_long_functions()))
    assert stale == [], f"no longer over {MAX_FUNCTION_LINES} lines: remove from LONG_FUNCTIONS in {__name__}: {stale}"


def tracked_python_files() -> list[Path]:
    """The repository's ``.py`` files: tracked, or new and not ignored (a module not yet committed counts)."""
    command = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "*.py"]
    listed = subprocess.run(command, cwd=ROOT, capture_output=True, check=True).stdout
    return sorted({ROOT / name for name in listed.decode().split("\0") if name and (ROOT / name).is_file()})


def test_the_repository_listing_holds_code_tests_and_benchmarks() -> None:
    listed = set(tracked_python_files())
    assert set(source_files()) <= listed
    assert {ROOT / "tests" / "conftest.py", ROOT / "bench" / "__main__.py", ROOT / "schemas" / "__init__.py"} <= listed
    assert not [p for p in listed if ".venv" in p.parts]


@pytest.mark.parametrize("path", tracked_python_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_module_states_its_job_in_the_first_docstring_line(path: Path) -> None:
    docstring = ast.get_docstring(ast.parse(path.read_bytes(), str(path)))
    first = docstring.splitlines()[0].strip() if docstring else ""
    assert first, f"{path.relative_to(ROOT)}: the module docstring's first line must say what the module is for"


# -- the measure itself ------------------------------------------------------------------------------------------


SAMPLE = '''
"""A sample."""

def short():
    return 1

@decorator
def exactly(limit):
{body_exact}

class Outer:
    def method(self):
{body_long}

    async def coroutine(self):
        return 2

def outer():
    def inner():
{body_long_nested}
    return inner

if True:
    def conditional():
{body_long}
'''


def sample(exact: int, long: int) -> ast.Module:
    def body(lines: int, indent: str) -> str:
        return "\n".join(f"{indent}x = {i}" for i in range(lines))

    text = SAMPLE.format(
        body_exact=body(exact - 1, "    "),  # def line + body
        body_long=body(long - 1, "        "),
        body_long_nested=body(long - 1, "        "),
    )
    return ast.parse(text)


def test_the_measure_counts_from_def_to_the_last_line_and_names_methods_and_nested_functions() -> None:
    found = long_functions(sample(exact=60, long=61), "pkg.mod")
    assert found == {
        "pkg.mod:Outer.method": 61,
        "pkg.mod:outer": 63,  # its def, the nested function, and its return
        "pkg.mod:outer.<locals>.inner": 61,
        "pkg.mod:conditional": 61,
    }
    assert long_functions(sample(exact=61, long=2), "pkg.mod") == {"pkg.mod:exactly": 61}


def test_module_names_follow_the_import_path() -> None:
    assert module_name(ROOT / "reconciler" / "sync" / "state.py") == "reconciler.sync.state"
    assert module_name(ROOT / "redbeat" / "__init__.py") == "redbeat"
