"""Run the server process: uvloop when available, the app on the configured address."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from confsfu.server.app import create_app
from confsfu.settings import Settings

log = logging.getLogger(__name__)


def serve(settings: Settings) -> None:
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    runner(_serve(settings))


async def _serve(settings: Settings) -> None:
    runner = web.AppRunner(create_app(settings), handle_signals=True)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    rooms = ", ".join(r.name for r in settings.rooms)
    print(
        f"confsfu listening on http://{settings.host}:{settings.port}/ (rooms: {rooms})", flush=True
    )
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
