"""Run the server process: uvloop if present, the app on its address, an orderly stop on signal.
The same process is either the one server (`--workers 1`), a front (`--workers N`), or one of a
front's workers (on a Unix socket, stopping when the front's pipe to it closes)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.log import access_logger

from confsfu.server.app import create_app
from confsfu.server.workers import READY_LINE
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


def serve(
    settings: Settings,
    *,
    workers: int = 1,
    worker_command: Callable[[Path], Sequence[str]] | None = None,
    worker_socket: Path | None = None,
) -> None:
    """Serve until a stop signal; refuses (SystemExit with the reason) to serve the demo token
    secret beyond loopback. With `workers` > 1 this process is the front and `worker_command`
    runs a worker; with `worker_socket` it is a worker."""
    refusal = demo_secret_refusal(settings.host, settings.token_secret)
    if refusal is not None:
        raise SystemExit(f"confsfu: {refusal}")
    refusal = _node_refusal(settings)
    if refusal is not None and worker_socket is None:
        raise SystemExit(f"confsfu: {refusal}")
    if worker_socket is not None:
        app = create_app(settings, keep_reports=True, worker=True)
    elif workers > 1 or settings.node_id is not None:  # a node is always a front
        from confsfu.server.front import create_front_app

        assert worker_command is not None
        app = create_front_app(settings, workers, worker_command)
    else:
        if settings.redis_url is not None:
            log.warning("redis_url is used by a front (--workers N > 1) only: not here")
        app = create_app(settings, keep_reports=True)
    run_loop(_serve(settings, app, worker_socket), settings.event_loop)


def _node_refusal(settings: Settings) -> str | None:
    """A node (setting node_id) needs Redis and an address the other nodes reach it at."""
    from confsfu.scale.directory import valid_address

    if settings.node_id is None:
        return None
    if settings.redis_url is None:
        return "a node (node_id) needs redis_url"
    if settings.node_address is None or not valid_address(settings.node_address):
        return f"a node needs node_address, host:port, not {settings.node_address!r}"
    return None


async def _serve(settings: Settings, app: web.Application, worker_socket: Path | None) -> None:
    # Our own signal handlers rather than aiohttp's GracefulExit: that exception leaves the loop
    # and cancels every task at once, so pages would never be told; this stops in order.
    runner = web.AppRunner(
        app,
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        # A worker's requests are the front's polls and pipes: the front logs the pages'.
        access_log=None if worker_socket is not None else access_logger,
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
        if worker_socket is not None:
            await web.UnixSite(runner, str(worker_socket)).start()
            _stop_when_front_goes(loop, stop)
            sys.stdout.buffer.write(READY_LINE + b"\n")
            sys.stdout.flush()
        else:
            site = web.TCPSite(runner, settings.host, settings.port)
            await site.start()
            port = next((a[1] for a in runner.addresses if isinstance(a, tuple)), settings.port)
            rooms = ", ".join(r.name for r in settings.rooms)
            where = f"http://{settings.host}:{port}/"
            print(f"confsfu listening on {where} (rooms: {rooms})", flush=True)
        await stop.wait()
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        if worker_socket is not None:  # the front may have gone without tidying up
            worker_socket.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                worker_socket.parent.rmdir()  # once the last worker went
        log.info("stopped")


def _stop_when_front_goes(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """A worker's stdin is the front's pipe: end of file means the front is gone."""
    fd = sys.stdin.fileno()

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            log.warning("the front is gone: stopping")
            stop.set()

    loop.add_reader(fd, readable)
