"""GStreamer's webrtcbin publishes through the real server (issue 21): an RSA certificate, `vad=on`
extmap attributes, a bundle-only audio section and Opus without audio levels. An aiortc
subscriber decodes its VP8 and hears its Opus in an audio slot while it sends a tone.

The publisher is tests/fixtures/webrtcbin_publisher.py, run by the system Python (it needs gi and
Debian's GStreamer packages, which scripts/test.sh installs); this test does confsfu's
signalling on its behalf."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiortc.codecs.vpx import Vp8Decoder, vp8_depayload
from aiortc.jitterbuffer import JitterFrame
from OpenSSL import crypto

from confsfu.loadgen.peer import LoopbackPeer
from confsfu.loadgen.receiving import ReceivedStream
from confsfu.rtp.seq import seq_diff
from confsfu.server.app import HUB

pytestmark = pytest.mark.loopback

SYSTEM_PYTHON = "/usr/bin/python3"
SCRIPT = Path(__file__).resolve().parent.parent / "fixtures" / "webrtcbin_publisher.py"
PROBE = """
import gi
gi.require_version("Gst", "1.0"); gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0"); gi.require_version("Nice", "0.1")
from gi.repository import Gst, GstWebRTC, GstSdp, Nice
Gst.init(None)
missing = [e for e in ("webrtcbin", "nicesrc", "vp8enc", "opusenc", "videotestsrc",
                       "audiotestsrc", "rtpvp8pay", "rtpopuspay") if not Gst.ElementFactory.find(e)]
print(" ".join(missing))
"""


def gstreamer_missing() -> str | None:
    """Why the publisher cannot run here, or None."""
    try:
        probe = subprocess.run(
            [SYSTEM_PYTHON, "-c", PROBE], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{SYSTEM_PYTHON} cannot run: {exc}"
    if probe.returncode != 0:
        last = probe.stderr.strip().splitlines()[-1:] or ["?"]
        return f"{SYSTEM_PYTHON} has no GStreamer through gi ({last[0]})"
    if probe.stdout.strip():
        return f"GStreamer elements missing: {probe.stdout.strip()}"
    return None


class Publisher:
    """The webrtcbin script, talked to in JSON lines."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def read(self, kind: str, timeout: float = 20) -> dict[str, Any]:
        assert self.process.stdout is not None
        while True:
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
            if not line:
                raise AssertionError("the webrtcbin publisher ended (see its stderr above)")
            message: dict[str, Any] = json.loads(line)
            if message["type"] == kind:
                return message

    async def write(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        await self.process.stdin.drain()


@pytest.fixture
async def webrtcbin(tmp_path: Path) -> AsyncIterator[Publisher]:
    reason = gstreamer_missing()
    if reason is not None:
        pytest.skip(reason)
    with (tmp_path / "webrtcbin.stderr").open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            SYSTEM_PYTHON, str(SCRIPT),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr,
        )  # fmt: skip
        try:
            yield Publisher(process)
        finally:
            if process.stdin is not None:
                process.stdin.close()  # end of input: it stops
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
    print((tmp_path / "webrtcbin.stderr").read_text(errors="replace")[-3000:])


@dataclass
class Signalling:
    """The webrtcbin participant's side of confsfu's signalling, read on for the test's length."""

    session: aiohttp.ClientSession
    reader: asyncio.Task[None]
    participant_id: str

    async def close(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader
        await self.session.close()


async def publish_for(url: str, name: str, publisher: Publisher) -> Signalling:
    """Join as `name` and publish the script's offer; its answer goes back to the script."""
    offer = await publisher.read("offer")
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(url)
    await ws.send_json({"type": "join", "room": "demo", "name": name})
    pid = ""
    async for frame in ws:
        message = json.loads(frame.data)
        if message["type"] == "error":
            raise AssertionError(f"the server refused {name}: {message}")
        if message["type"] == "joined" and not pid:
            pid = message["participant_id"]
            await ws.send_json({"type": "publish_offer", "sdp": offer["sdp"]})
        elif message["type"] == "publish_answer":
            await publisher.write({"type": "answer", "sdp": message["sdp"]})
            break

    async def read_on() -> None:
        async for _ in ws:
            pass

    return Signalling(session, asyncio.create_task(read_on()), pid)


def decoded_frames(stream: ReceivedStream) -> list[tuple[int, int]]:
    """(width, height) of every frame aiortc's VP8 decoder makes of what the slot delivered, in
    sequence order (a frame starts at a packet with the S bit of partition 0). The first must be
    a keyframe (the slot switched on it) and every frame must decode."""
    by_seq: dict[int, bytes] = {}
    first = stream.seqs[0] if stream.seqs else 0
    for seq, payload in zip(stream.seqs, stream.payloads, strict=True):
        by_seq.setdefault(seq_diff(seq, first), payload)  # a few thousand packets at most
    frames: list[bytes] = []
    for seq in sorted(by_seq):
        payload = by_seq[seq]
        if payload and payload[0] & 0x1F == 0x10:  # S=1, PID=0: a frame starts
            frames.append(b"")
        if frames:
            frames[-1] += vp8_depayload(payload)
    assert frames and not frames[0][0] & 1, "the slot did not start on a keyframe"
    decoder = Vp8Decoder()
    sizes: list[tuple[int, int]] = []
    for index, frame in enumerate(frames[:-1]):  # the last may be incomplete
        sizes += [(f.width, f.height) for f in decoder.decode(JitterFrame(frame, index))]
    return sizes


@pytest.mark.parametrize("judged", [True, False], ids=["judged by size", "levels only"])
async def test_a_webrtcbin_publisher_is_seen_and_heard(
    server_factory: Any, peers: list[LoopbackPeer], webrtcbin: Publisher, judged: bool
) -> None:
    server = await server_factory(media={"voice_frame_bytes": 10 if judged else 0})
    viewer = LoopbackPeer(server.ws_url, name="Viewer", keep_payloads=True)
    peers.append(viewer)
    await viewer.join(publish=False)
    signalling = await publish_for(server.ws_url, "Kiosk", webrtcbin)
    kiosk = signalling.participant_id

    def dominant() -> bool:
        states = (m for m in viewer.messages if m["type"] == "room_state")
        return any(m.get("dominant_speaker") == kiosk for m in states)

    try:
        state = await webrtcbin.read("state")
        while state["connection"] not in ("connected", "failed"):
            state = await webrtcbin.read("state")
        assert state["connection"] == "connected"
        pub = server.app[HUB].rooms["demo"].media.publishers[kiosk, "camera"]
        peer_key = pub.pc._dtls._ssl.get_peer_certificate().get_pubkey()
        assert peer_key.type() == crypto.TYPE_RSA  # webrtcbin's own certificate
        assert pub.ext.audio_level is not None  # negotiated (from `... vad=on`), never sent
        assert pub.pc.callback_errors == 0

        def video_flows() -> bool:
            stream = viewer.streams_showing("video").get("Kiosk")
            return stream is not None and stream.packets >= 60

        await viewer.wait_for(video_flows, timeout=20)
        if judged:

            def heard() -> bool:
                stream = viewer.streams_showing("audio").get("Kiosk")
                return stream is not None and stream.packets >= 50

            await viewer.wait_for(heard, timeout=10)
            audio = viewer.streams_showing("audio")["Kiosk"]
            # GStreamer's opusenc on a tone: about 160 bytes a packet (silence would be 3).
            assert statistics.median(len(p) for p in audio.payloads) > 100
            await viewer.wait_for(dominant, timeout=5)  # it speaks: the dominant speaker

            def in_a_slot() -> bool:
                return "Kiosk" in viewer.streams_showing("audio")

            # Silent (3-byte frames), it gives its audio slot up; speaking again, it is back.
            await webrtcbin.write({"type": "volume", "value": 0.0})
            await viewer.wait_for(lambda: not in_a_slot(), timeout=5)
            await webrtcbin.write({"type": "volume", "value": 0.3})
            await viewer.wait_for(in_a_slot, timeout=5)
        else:
            await asyncio.sleep(3)  # video has flowed for a while: the audio would have too
            assert "Kiosk" not in viewer.streams_showing("audio"), "heard without levels?"
            assert not dominant()
        frames = decoded_frames(viewer.streams_showing("video")["Kiosk"])
        assert len(frames) >= 10 and set(frames) == {(320, 240)}
    finally:
        await signalling.close()
