"""Run the server process: uvloop if present, the app on its address, an orderly stop on signal."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

from aiohttp import web

from confsfu.server.app import create_app
from confsfu.settings import Settings, demo_secret_refusal

log = logging.getLogger(__name__)
T = TypeVar("T")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
SHUTDOWN_TIMEOUT_S = 2.0  # then handlers still running are cancelled


def run_loop(main: Coroutine[Any, Any, T], loop: str = "uvloop") -> T:
    """`asyncio.run(main)`, on uvloop where it is installed unless `loop` is "asyncio"."""
    if loop == "asyncio":
        return asyncio.run(main)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def serve(settings: Settings) -> None:
    """Serve until a stop signal; refuses (SystemExit with the reason) to serve the demo token
    secret beyond loopback."""
    refusal = demo_secret_refusal(settings.host, settings.token_secret)
    if refusal is not None:
        raise SystemExit(f"confsfu: {refusal}")
    run_loop(_serve(settings), settings.event_loop)


async def _serve(settings: Settings) -> None:
    # Our own signal handlers rather than aiohttp's GracefulExit: that exception leaves the loop
    # and cancels every task at once, so pages would never be told; this stops in order.
    runner = web.AppRunner(
        create_app(settings, keep_reports=True),
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop.set()
        for sig in STOP_SIGNALS:  # a second signal ends the process the ordinary way
            loop.remove_signal_handler(sig)

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        port = next((a[1] for a in runner.addresses if isinstance(a, tuple)), settings.port)
        rooms = ", ".join(r.name for r in settings.rooms)
        print(f"confsfu listening on http://{settings.host}:{port}/ (rooms: {rooms})", flush=True)
        await stop.wait()
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        log.info("stopped")
