"""`confsfu serve` re-executes itself, keeping its pid, on the allocator its settings name."""

from __future__ import annotations

from pathlib import Path

import pytest

from confsfu.loadgen.meetings import ServerProcess

pytestmark = [pytest.mark.loopback, pytest.mark.timeout(90)]


def environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    pairs = (item.decode(errors="replace").partition("=") for item in raw if item)
    return {key: value for key, _, value in pairs}


@pytest.mark.parametrize(("setting", "expected"), [(None, "malloc"), ("pymalloc", None)])
async def test_the_server_runs_on_the_allocator_of_its_settings(
    tmp_path: Path, setting: str | None, expected: str | None
) -> None:
    extra = {} if setting is None else {"CONFSFU_PYTHON_ALLOCATOR": setting}
    server = ServerProcess(tmp_path, extra_env=extra)
    try:
        await server.started()  # the pid Popen started is the one that listens
        assert server.process.poll() is None
        assert environment(server.process.pid).get("PYTHONMALLOC") == expected
    finally:
        server.stop()
