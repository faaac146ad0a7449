"""`confsfu serve` runs on the C library's malloc unless told otherwise (confsfu/allocator.py)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from confsfu.allocator import reexec_plan
from confsfu.server.run import run_loop


@pytest.mark.parametrize(
    ("choice", "environ", "reexecutes"),
    [
        ("malloc", {}, True),
        ("malloc", {"PYTHONMALLOC": "malloc"}, False),  # already on it: no loop
        ("malloc", {"PYTHONMALLOC": "pymalloc"}, False),  # the operator's own choice stands
        ("malloc", {"PYTHONMALLOC": ""}, False),
        ("pymalloc", {}, False),
    ],
)
def test_the_server_reexecutes_only_to_change_allocator(
    choice: str, environ: dict[str, str], reexecutes: bool
) -> None:
    plan = reexec_plan(choice, environ, ["serve", "--port", "0"])  # type: ignore[arg-type]
    assert (plan is not None) is reexecutes
    if plan is not None:
        command, env = plan
        assert command == [sys.executable, "-m", "confsfu.cli", "serve", "--port", "0"]
        assert env["PYTHONMALLOC"] == "malloc"


def test_the_reexecuted_server_finds_this_confsfu_and_keeps_the_environment() -> None:
    plan = reexec_plan("malloc", {"PYTHONPATH": "/opt/x", "CONFSFU_PORT": "9"}, ["serve"])
    assert plan is not None
    _, env = plan
    first, rest = env["PYTHONPATH"].split(":", 1)
    assert first.endswith("/src") or first.endswith("site-packages")
    assert rest == "/opt/x" and env["CONFSFU_PORT"] == "9"


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


@pytest.mark.parametrize(("choice", "module"), [("asyncio", "asyncio"), ("uvloop", "uvloop")])
def test_the_server_runs_on_the_event_loop_its_settings_name(choice: str, module: str) -> None:
    assert run_loop(_loop_module(), choice).split(".")[0] == module
