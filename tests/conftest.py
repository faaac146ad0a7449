"""Shared fixtures: a real confsfu server on 127.0.0.1 with loopback-only ICE."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from hypothesis import settings

from confsfu.server.app import create_app
from confsfu.settings import RoomSettings, Settings

SECRET = "test-secret-0123456789abcdef0123456789"

# Hypothesis's per-example deadline (200 ms) is a wall-clock assertion: on a machine busy with
# other processes a first example took 510 ms and failed a test that times nothing.
settings.register_profile("confsfu", deadline=None)
settings.load_profile("confsfu")


@dataclass
class RunningServer:
    app: web.Application
    port: int

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def test_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "token_secret": SECRET,
        "rooms": [RoomSettings(name="demo", open=True), RoomSettings(name="council")],
        "ice": {"candidates": "loopback"},
        "slots": {"audio": 3, "video": 4},
    }
    base.update(overrides)
    return Settings(**base)


async def start_server(
    settings: Settings, host: str = "127.0.0.1", worker: bool = False
) -> tuple[web.AppRunner, RunningServer]:
    """`worker`: the app as a front's worker makes it (its control and member routes)."""
    app = create_app(settings, worker=worker)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]
    return runner, RunningServer(app, port)


@pytest.fixture
async def server_factory() -> AsyncIterator[Callable[..., Any]]:
    runners: list[web.AppRunner] = []

    async def make(**overrides: Any) -> RunningServer:
        runner, running = await start_server(test_settings(**overrides))
        runners.append(runner)
        return running

    yield make
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def server(server_factory: Callable[..., Any]) -> RunningServer:
    running: RunningServer = await server_factory()
    return running
