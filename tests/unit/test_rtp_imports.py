"""The wire-format cores import only the standard library and each other, and no IO modules."""

import ast
import sys
from pathlib import Path

import pytest

import confsfu

PACKAGE = Path(confsfu.__file__).resolve().parent
MODULES = sorted([*PACKAGE.joinpath("rtp").glob("*.py"), *PACKAGE.joinpath("codecs").glob("*.py")])
MODULES.append(PACKAGE / "sdp.py")
FORBIDDEN = {"asyncio", "aiohttp", "aiortc", "socket", "time", "random", "numpy"}
ALLOWED_INTERNAL = ("confsfu.rtp", "confsfu.codecs")


def imported_modules(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_stdlib_only(path: Path) -> None:
    for name in imported_modules(path):
        top = name.split(".")[0]
        assert top not in FORBIDDEN, f"{path.name} imports {name}"
        if top == "confsfu":
            assert name.startswith(ALLOWED_INTERNAL), f"{path.name} imports {name}"
        else:
            assert top in sys.stdlib_module_names, f"{path.name} imports non-stdlib {name}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_module_opens_with_a_docstring(path: Path) -> None:
    docstring = ast.get_docstring(ast.parse(path.read_text()))
    assert docstring, f"{path.name} has no module docstring"
