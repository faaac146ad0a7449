"""The front's worker processes: start each on its own Unix socket, notice when one ends,
start it again (with a growing pause if it keeps dying), stop them all in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

log = logging.getLogger(__name__)

READY_LINE = b"confsfu worker ready"  # what a worker prints once its socket listens
START_TIMEOUT_S = 120.0  # a loaded machine imports slowly
RESTART_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 5.0)  # after the 1st, 2nd, ... quick death in a row
STEADY_S = 30.0  # a worker that lived this long starts the delays over
STOP_TIMEOUT_S = 20.0  # after SIGTERM: then SIGKILL (a loaded worker writes reports slowly)


@dataclass(eq=False)
class Worker:
    """One worker slot: its socket, its current process (None while down) and HTTP client."""

    index: int
    socket: Path
    process: asyncio.subprocess.Process | None = None
    client: aiohttp.ClientSession | None = None
    restarts: int = 0  # starts after the first
    quick_deaths: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def url(self, path: str) -> str:
        return f"http://worker{self.index}{path}"  # the host is ignored on a Unix socket


class WorkerPool:
    """N workers, each run by `command(socket)`. `on_ready(index)` when one listens,
    `on_died(index)` when its process ended (not while stopping)."""

    def __init__(
        self,
        count: int,
        directory: Path,
        command: Callable[[Path], Sequence[str]],
        on_ready: Callable[[int], None],
        on_died: Callable[[int], None],
    ) -> None:
        self.workers = [Worker(i, directory / f"worker{i}.sock") for i in range(count)]
        self._command = command
        self._on_ready = on_ready
        self._on_died = on_died
        self._tasks: list[asyncio.Task[None]] = []
        self.stopping = False

    async def start(self) -> None:
        """Start every worker; returns once each listens (or raises if one cannot start)."""
        self._tasks = [asyncio.create_task(self._keep(w)) for w in self.workers]
        try:
            readies = (w.ready.wait() for w in self.workers)
            await asyncio.wait_for(asyncio.gather(*readies), START_TIMEOUT_S)
        except TimeoutError:
            await self.stop()
            raise RuntimeError("the workers did not start") from None

    async def _keep(self, worker: Worker) -> None:
        """Run `worker`, again and again, until the pool stops."""
        loop = asyncio.get_running_loop()
        while not self.stopping:
            started = loop.time()
            await self._run_once(worker)
            if self.stopping:
                return
            worker.quick_deaths = 0 if loop.time() - started > STEADY_S else worker.quick_deaths
            delay = RESTART_DELAYS_S[min(worker.quick_deaths, len(RESTART_DELAYS_S) - 1)]
            worker.quick_deaths += 1
            worker.restarts += 1
            await asyncio.sleep(delay)

    async def _run_once(self, worker: Worker) -> None:
        with contextlib.suppress(FileNotFoundError):
            worker.socket.unlink()
        process = await asyncio.create_subprocess_exec(
            *self._command(worker.socket),
            stdin=asyncio.subprocess.PIPE,  # the worker stops when it reads EOF: the front ended
            stdout=asyncio.subprocess.PIPE,
            # Its own process group: a terminal's Ctrl-C reaches the front only, which then
            # stops the workers in order (they tell their pages) instead of racing them.
            start_new_session=True,
        )
        worker.process = process
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT_S)
        except TimeoutError:
            line = b""
        if READY_LINE in line:
            worker.client = worker_client(worker.socket)
            worker.ready.set()
            log.info("worker %d ready (pid %d)", worker.index, process.pid)
            self._on_ready(worker.index)
            drain = asyncio.create_task(_drain(process.stdout))
        else:
            log.error("worker %d did not start: %r", worker.index, line[:200])
            process.kill()
            drain = None
        code = await process.wait()
        if drain is not None:
            drain.cancel()
        was_ready = worker.ready.is_set()
        worker.ready.clear()
        if worker.client is not None:
            await worker.client.close()
            worker.client = None
        worker.process = None
        if not self.stopping:
            log.warning("worker %d (pid %d) ended with %s", worker.index, process.pid, code)
            if was_ready:
                self._on_died(worker.index)

    async def stop(self) -> None:
        """SIGTERM every worker (they tell their pages and write their reports), wait, kill."""
        self.stopping = True
        processes = [w.process for w in self.workers if w.process is not None]
        for process in processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        waits = [asyncio.ensure_future(p.wait()) for p in processes]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=STOP_TIMEOUT_S)
            for process in processes:
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            if pending:
                await asyncio.wait(pending, timeout=STOP_TIMEOUT_S)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for worker in self.workers:
            if worker.client is not None:
                await worker.client.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(worker.socket)


async def _drain(stream: asyncio.StreamReader) -> None:
    """Read what a worker prints after it is ready, so its pipe never fills."""
    while await stream.read(4096):
        pass


def worker_client(socket: Path) -> aiohttp.ClientSession:
    """The front's HTTP client to one worker: every page's piped WebSocket, the control
    connection and the polls share it, so its connector has no limit (aiohttp's default of 100
    held a worker to 99 pages, and queued the polls behind them); the pages are the bound."""
    return aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(socket), limit=0))
