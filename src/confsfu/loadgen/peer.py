"""A loopback participant: joins over the WebSocket, publishes pre-encoded media, receives raw RTP.

It never decodes. It answers like a browser would: NACKs gaps, and counts what each slot carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import aiohttp

from confsfu.loadgen.link import RateQueue, TransportLink
from confsfu.loadgen.publishing import Publisher
from confsfu.loadgen.receiving import Receiver
from confsfu.server.clock import clock_ms


class LoopbackPeer(Receiver, Publisher):
    """One simulated participant on the server at `url` (ws://host:port/ws): the signalling and
    the connection's life here, the subscribe side in Receiver, the publish side in Publisher."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        room: str = "demo",
        token: str | None = None,
        keep_payloads: bool = False,
        drop_received: Callable[[int, int], bool] | None = None,
        simulcast: bool = False,
        legacy_sim: bool = False,
        remb_bps: int | None = None,
        remb_follows: bool = False,
        confirms_slots: bool = False,
        link_bps: Callable[[], int] | None = None,
        link: TransportLink | None = None,
        watch: bool = False,
        sealed: bool = False,
    ) -> None:
        self.url = url
        self.name = name
        self.room = room
        self.token = token
        self.keep_payloads = keep_payloads
        # Say confirms_slots at join, as the page does; the peer then confirms slot maps only
        # when told to (confirm_slots), so a test can play a page that is late to show them.
        self.confirms_slots = confirms_slots
        self.watch = watch  # join as a listener: subscribe only (by the room's watch link)
        # link_bps: a downlink of link_bps() (read per packet) with a 300 ms queue
        if link is None and link_bps is not None:
            link = TransportLink(RateQueue(link_bps))
        self._init_receiver(remb_bps, remb_follows, link, drop_received)
        self.sealed = sealed
        self._init_publisher(simulcast, legacy_sim)
        self.slot_map_seq = 0  # the latest slot map's
        self.messages: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.participant_id = ""
        self.slots: dict[str, dict[str, Any]] = {}  # mid -> latest SlotInfo
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def join(self, *, publish: bool = True) -> None:
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(self.url)
        self._reader = asyncio.create_task(self._read())
        wait_s = self.join_timeout_s
        await self.wait_for(lambda: any(m["type"] == "hello" for m in self.messages), wait_s)
        join: dict[str, Any] = {"type": "join", "confirms_slots": self.confirms_slots}
        if self.token:
            join["token"] = self.token
        else:
            join.update(room=self.room, name=self.name)
        if self.watch:
            join["watch"] = True
        await self.send(join)
        await self.wait_for(lambda: bool(self.participant_id) or bool(self.errors), wait_s)
        if not self.participant_id:
            raise RuntimeError(f"{self.name} could not join: {self.errors[-1]}")
        await asyncio.wait_for(self._subscribed.wait(), wait_s)
        if publish and not self.watch:
            await self._publish()

    async def send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        await self._ws.send_str(json.dumps(message))

    async def _read(self) -> None:
        assert self._ws is not None
        async for frame in self._ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            message = json.loads(frame.data)
            self.messages.append(message)
            await self._on_message(message)
            self._changed.set()
        self._changed.set()

    async def _on_message(self, m: dict[str, Any]) -> None:
        kind = m["type"]
        if kind == "joined":
            self.participant_id = m["participant_id"]
            self.watch = self.watch or m.get("role") == "listener"  # a listener's token
        elif kind == "error":
            self.errors.append(m)
        elif kind == "subscribe_offer":
            for slot in m["slots"]:
                self.update_slot(slot, clock_ms())
            await self._answer_subscribe(m["sdp"])
        elif kind == "slot_map":
            for slot in m["slots"]:
                self.update_slot(slot, clock_ms())
            self.slot_map_seq = m.get("seq", self.slot_map_seq)
        elif kind == "publisher_layers" and m.get("purpose") == "camera":
            active = set(m["active"])
            self._layers_resumed |= bool(active - self.active_rids)  # they start on a keyframe
            self.active_rids = active
        elif kind == "publish_answer" and m.get("purpose") == "screen":
            assert self.screen_pc is not None
            await self.screen_pc.accept_answer(m["sdp"])
            self._screen_answered.set()
        elif kind == "publish_answer":
            assert self.publish_pc is not None
            await self.publish_pc.accept_answer(m["sdp"])
            self._publish_answered.set()

    async def confirm_slots(self) -> None:
        """Tell the server the latest slot map is shown (a page does so as it draws it)."""
        await self.send({"type": "slots_shown", "seq": self.slot_map_seq})

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async def until() -> None:
            while not predicate():
                self._changed.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.05)

        await asyncio.wait_for(until(), timeout)

    async def go_silent(self) -> None:
        """Stop reading, answering and sending, as if the network vanished (no goodbye)."""
        for task in (self._reader, self._media_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._reader = self._media_task = None

    @property
    def closed(self) -> bool:
        return self._ws is None or self._ws.closed

    async def close(self, *, goodbye: bool = True) -> None:
        tasks = (self._media_task, self._screen_task, self._remb_task, self._feedback_task)
        for task in (*tasks, self._link_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if goodbye and self._ws is not None and not self._ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.send({"type": "leave"})
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for pc in (self.publish_pc, self.screen_pc, self.subscribe_pc):
            if pc is not None:
                await pc.close()
        if self._session is not None:
            await self._session.close()
