"""The sans-IO rule: core packages never import event loops, networking, clocks or randomness."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import confsfu

ROOT = Path(confsfu.__file__).resolve().parent
CORE = (
    *("rtp", "codecs", "forwarding", "bandwidth", "conference", "signalling", "sdp", "ids"),
    "scale",
)
FORBIDDEN = frozenset({"asyncio", "aiohttp", "aiortc", "aioice", "socket", "time", "random"})


def core_modules() -> list[Path]:
    paths: list[Path] = []
    for name in CORE:
        package = ROOT / name
        if package.is_dir():
            paths.extend(sorted(package.rglob("*.py")))
        else:
            paths.append(ROOT / f"{name}.py")
    return paths


MODULES = core_modules()


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(source: str, package: str, filename: str = "<source>") -> list[str]:
    """Absolute names of everything `source` imports, wherever in the module it does so.

    `package` resolves relative imports; ``__import__("x")`` and ``import_module("x")`` count.
    """
    names: list[str] = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                prefix = ".".join(parts[: len(parts) - (node.level - 1)])
                if node.module:
                    names.append(f"{prefix}.{node.module}")
                else:
                    names.extend(f"{prefix}.{alias.name}" for alias in node.names)
            elif node.module:
                names.append(node.module)
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "__import__")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
        ):
            names.append(node.args[0].value)
    return names


def imports(path: Path) -> list[str]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return imported_names(path.read_text(), package, str(path))


def test_every_core_package_is_found() -> None:
    found = {module_name(p).split(".")[1] for p in MODULES}
    assert found == set(CORE)
    assert len(MODULES) > len(CORE)


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_core_module_is_sans_io(path: Path) -> None:
    bad = [name for name in imports(path) if name.split(".")[0] in FORBIDDEN]
    assert not bad, f"{module_name(path)} imports {', '.join(bad)} (core packages are sans-IO)"


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_core_module_imports_only_other_cores(path: Path) -> None:
    """Importing confsfu.server, settings, tokens ... would bring IO in through the back door."""
    allowed = tuple(f"confsfu.{name}" for name in CORE)
    bad = [
        name
        for name in imports(path)
        if name.split(".")[0] == "confsfu"
        and name != "confsfu"
        and not any(name == a or name.startswith(a + ".") for a in allowed)
    ]
    assert not bad, f"{module_name(path)} imports {', '.join(bad)}, which is not a core package"


def test_the_checker_catches_every_kind_of_import() -> None:
    source = (
        "import os\n"
        "import time\n"
        "from asyncio import sleep\n"
        "import aiortc.codecs as c\n"
        "from . import slot\n"
        "from ..server import app\n"
        "def f():\n"
        "    import socket\n"
        "    from random import random\n"
        "    __import__('aioice')\n"
        "    importlib.import_module('aiohttp.web')\n"
    )
    names = imported_names(source, "confsfu.forwarding")
    assert {name.split(".")[0] for name in names} >= FORBIDDEN
    assert "confsfu.forwarding.slot" in names
    assert "confsfu.server" in names
