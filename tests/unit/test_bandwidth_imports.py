"""The bandwidth package stays sans-IO: stdlib and numpy, no clocks, sockets or event loops."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import confsfu.bandwidth

PACKAGE = Path(confsfu.bandwidth.__file__).parent
FORBIDDEN = {"asyncio", "aiohttp", "aiortc", "socket", "time", "random", "threading", "select"}
ALLOWED_THIRD_PARTY = {"numpy"}
MODULES = sorted(PACKAGE.glob("*.py"))


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return {name.split(".")[0] for name in names}


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_module_imports_only_stdlib_and_numpy(path: Path) -> None:
    roots = _imports(path) - {"__future__", "confsfu"}
    assert not roots & FORBIDDEN
    third_party = {r for r in roots if r not in sys.stdlib_module_names}
    assert third_party <= ALLOWED_THIRD_PARTY


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_module_opens_with_a_one_sentence_docstring(path: Path) -> None:
    docstring = ast.get_docstring(ast.parse(path.read_text()))
    assert docstring, f"{path.name} has no docstring"
    assert docstring.splitlines()[0].endswith(".")
