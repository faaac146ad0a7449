"""confsfu.server._wire.Intake (C): a publisher's RTP from the socket to the slots, held to the
Python path it replaces (Reception, parse_rtp, parse_vp8, SourcePacket, fan_out), packet by
packet."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confsfu.bandwidth._counts import LayerCounts
from confsfu.codecs.vp8 import packetize_vp8, parse_vp8
from confsfu.conference.voice_activity import VoiceActivity, VoiceConfig
from confsfu.forwarding._reception import Reception as CReception
from confsfu.forwarding.classify import Dropped, classify
from confsfu.forwarding.published import PublishedTrack, StreamRouter
from confsfu.forwarding.reception import Reception
from confsfu.forwarding.slot import SlotForwarder
from confsfu.forwarding.source_packet import SourcePacket
from confsfu.ids import SourceId
from confsfu.rtp.errors import ParseError
from confsfu.rtp.extensions import ExtensionIds, abs_send_time, build_audio_level, parse_audio_level
from confsfu.rtp.packet import build_rtp, parse_rtp
from confsfu.server import _wire
from confsfu.server.srtp_contexts import srtp_context

from .test_wire import route_to, sessions, video_header

VIDEO, AUDIO, LEVEL_ID, QUIET_FROM = 0x1111, 0x2222, 1, 70
VOICE = VoiceConfig(frame_bytes=10, assumed_dbov=40)
RTX, RTX_PT = 0x3333, 97  # repairs VIDEO (payload type 96)
KEYFRAME = b"\x10\x02\x00\x9d\x01\x2a\x80\x02\xe0\x01"  # a VP8 keyframe header, 640x480
KEYS = {VIDEO: "p/video#1", AUDIO: "p/audio#0"}
FIXED = {"suppress_health_check": [HealthCheck.function_scoped_fixture], "deadline": None}


@dataclass
class Slot:
    forwarder: SlotForwarder
    wire: _wire.Wire


@dataclass
class Side:
    """One way of taking the packets: what it forwarded and what it told its owner."""

    slots: dict[str, list[Slot]]
    heard: list[tuple[Any, ...]] = field(default_factory=list)
    meter: LayerCounts = field(default_factory=lambda: LayerCounts(2000, 250))
    counts: dict[str, int] = field(default_factory=dict)
    voice: VoiceActivity = field(default_factory=lambda: VoiceActivity(VOICE))

    def fan_outs(self) -> dict[str, Any]:
        return {
            key: tuple((s, s.forwarder, s.wire) for s in slots) for key, slots in self.slots.items()
        }

    def count(self, name: str, n: int = 1) -> None:
        if n:
            self.counts[name] = self.counts.get(name, 0) + n


def make_slots(route: _wire.Route, first_ssrc: int) -> dict[str, list[Slot]]:
    slots: dict[str, list[Slot]] = {}
    for k, (key, is_video) in enumerate(((KEYS[VIDEO], True), (KEYS[AUDIO], False))):
        for i, max_temporal in enumerate((0, 2)):
            forwarder = SlotForwarder(
                is_video=is_video,
                clock_rate=90000 if is_video else 48000,
                initial_seq=1000 * i,
                initial_ts=7 * i,
            )
            forwarder.max_temporal = max_temporal
            forwarder.assign(0, key)
            header = video_header(ssrc=first_ssrc + 2 * k + i)
            wire = _wire.Wire(route, header.template(), header.abs_send_time_at, history=1024)
            slots.setdefault(key, []).append(Slot(forwarder, wire))
    return slots


# The publisher as the server's slow path routes it (forwarding.classify): VIDEO with its RTX
# stream, AUDIO; no payload type to learn another SSRC by, as the intake learns none either.
ROUTER = StreamRouter(
    [
        PublishedTrack("0", "video", SourceId.camera("p", "video"), (VIDEO,), {RTX: VIDEO},
                       frozenset(), {RTX_PT: 96}),
        PublishedTrack("1", "audio", SourceId.camera("p", "audio"), (AUDIO,)),
    ],
    ExtensionIds(),
)  # fmt: skip


def python_path(side: Side, streams: dict[int, Reception], clear: bytes, now_ms: int) -> bool:
    """What the slow path (server/publishing.py) does with a packet of a known stream or of its
    RTX, read through the same classifier (False: it is not one the intake takes, which then
    goes to the slow path)."""
    verdict = classify(clear, ROUTER)
    if isinstance(verdict, Dropped):
        if verdict.reason != "rtx_padding":
            return False  # oversized, malformed, unknown: the slow path's
        side.count("packets_in")
        side.count("bytes_in", len(clear))
        side.count("rtx_padding")  # padding only (a bandwidth probe): nothing to repair
        return True
    pkt, repaired = verdict.pkt, verdict.repaired
    try:
        vp8 = parse_vp8(pkt.payload) if pkt.ssrc == VIDEO and pkt.payload else None
    except ParseError:
        return False
    side.count("packets_in")
    side.count("bytes_in", len(clear))
    side.count("rtx_in", int(repaired))
    stream = streams[pkt.ssrc]
    if not stream.on_packet(now_ms, pkt.sequence_number, len(clear)):
        side.count("duplicate")
        return True
    if pkt.padding_only:
        return True
    key = KEYS[pkt.ssrc]
    send_time = b""
    picture = None
    if vp8 is not None:
        if vp8.is_keyframe:
            side.heard.append(("keyframe", key))
        side.meter.add(now_ms, 1, vp8.temporal_id or 0, len(clear))
        if vp8.picture_id is not None:
            picture = stream.unwrap_picture(vp8.picture_id)
        send_time = abs_send_time(now_ms)
    else:
        value = pkt.extensions.get(LEVEL_ID)
        judged = side.voice.on_packet(bool(value), pkt.payload)
        if judged is not None:
            side.heard.append(("level", now_ms, "p", judged.level_dbov, True))
        elif value:
            voice, level = parse_audio_level(value)
            if voice or level < QUIET_FROM:
                side.heard.append(("level", now_ms, "p", level, voice))
    inbound = SourcePacket(key, pkt, stream.last_ext, vp8, picture)
    sent, sent_bytes, switched, _ = _wire.fan_out(side.fan_outs()[key], inbound, now_ms, send_time)
    side.count("packets_out", sent)
    side.count("bytes_out", sent_bytes)
    if switched:
        side.heard.append(("switched", len(switched)))
    return True


DROPS = {"duplicate", "chair_muted", "rtx_padding", "ssrc_limit"}


def taken(intake: _wire.Intake) -> dict[str, int]:
    """The intake's counters and drops since the last call, in one dict (drops by their names)."""
    counters, drops = intake.take_counts()
    assert set(drops) <= DROPS and not set(counters) & DROPS
    return {**counters, **drops}


def taking(receiver: socket.socket, sender: socket.socket) -> tuple[Side, _wire.Intake]:
    """A side with slots on a live route and an intake that must take every packet itself."""
    side = Side(make_slots(route_to(receiver, sender, sessions()[0]), 10))
    return side, make_intake(side, lambda data, now: pytest.fail("not slow"))


def make_intake(side: Side, slow: Callable[[bytes, int], object]) -> _wire.Intake:
    intake = _wire.Intake(
        "p",
        side.fan_outs(),
        slow=slow,
        on_level=lambda *a: side.heard.append(("level", *a)),
        on_keyframe=lambda key: side.heard.append(("keyframe", key)),
        after_fan_out=lambda sw, un: side.heard.append(("switched", len(sw or ()))),
        schedule_flush=lambda: None,
        max_packet=1500,
    )
    intake.level_id = LEVEL_ID
    intake.level_floor = QUIET_FROM
    intake.voice_frame_bytes, intake.voice_dbov = VOICE.frame_bytes, VOICE.assumed_dbov
    for ssrc, is_video in ((VIDEO, True), (AUDIO, False)):
        track = CReception(ssrc, nack_delay_ms=10)
        track.route(KEYS[ssrc], is_video, 1, side.meter if is_video else None)
        assert intake.add(track)
        if is_video:
            assert intake.add_repair(RTX, RTX_PT, track)
    return intake


def video(seq: int, picture: int, tid: int, key: bool, padding: int = 0) -> bytes:
    body = (KEYFRAME if key else b"\x11\x02\x00") + bytes([seq % 256]) * 30
    (payload,) = packetize_vp8(
        body, picture_id=picture % 32768, tl0picidx=picture % 256, temporal_id=tid, layer_sync=False
    )
    return build_rtp(
        payload_type=96,
        sequence_number=seq % 65536,
        timestamp=(seq * 3000) % 2**32,
        ssrc=VIDEO,
        payload=payload,
        marker=True,
        padding_bytes=padding,
    )


def audio(seq: int, level: int | None, payload: bytes | None = None) -> bytes:
    return build_rtp(
        payload_type=111,
        sequence_number=seq % 65536,
        timestamp=(seq * 960) % 2**32,
        ssrc=AUDIO,
        payload=bytes([seq % 256]) * 60 if payload is None else payload,
        extensions={LEVEL_ID: build_audio_level(level % 2 == 0, level)}
        if level is not None
        else {},
    )


packet = st.one_of(
    st.builds(
        lambda s, p, t, k, pad: ("video", s, p, t, k, pad),
        st.integers(0, 40),
        st.integers(0, 40),
        st.integers(0, 2),
        st.booleans(),
        st.sampled_from([0, 0, 0, 5]),
    ),
    st.builds(
        lambda s, lv, p: ("audio", s, lv, p),
        st.integers(0, 40),
        st.none() | st.integers(0, 127),
        st.none() | st.binary(min_size=1, max_size=40),  # an Opus TOC and frames, or not
    ),
    st.builds(lambda b: ("junk", b), st.binary(max_size=40)),
    st.builds(lambda s: ("unknown", s), st.integers(0, 40)),
    st.builds(lambda s: ("padding only", s), st.integers(0, 40)),
    st.builds(
        lambda s, t, k, pt: ("rtx", s, t, k, pt),
        st.integers(0, 40),
        st.integers(0, 2),
        st.booleans(),
        st.sampled_from([RTX_PT, RTX_PT, 98]),
    ),
    st.builds(lambda s: ("rtx probe", s), st.integers(0, 40)),
)


def raw(item: tuple[Any, ...], base: int) -> bytes:
    match item:
        case ("video", s, p, t, k, pad):
            return video(base + s, base + p, t, k, pad)
        case ("audio", s, level, payload):
            return audio(base + s, level, payload)
        case ("unknown", s):
            return build_rtp(payload_type=96, sequence_number=s, timestamp=0, ssrc=5, payload=b"x")
        case ("padding only", s):
            return build_rtp(
                payload_type=96,
                sequence_number=(base + s) % 65536,
                timestamp=0,
                ssrc=VIDEO,
                payload=b"",
                padding_bytes=8,
            )
        case ("junk", data):
            return bytes(data)
        case ("rtx", s, t, k, pt):
            original = parse_rtp(video(base + s, base + s, t, k))
            return build_rtp(
                payload_type=pt,
                sequence_number=(7 * s) % 65536,
                timestamp=original.timestamp,
                ssrc=RTX,
                payload=original.data[2:4] + original.payload,
                marker=original.marker,
            )
        case ("rtx probe", s):
            return build_rtp(
                payload_type=RTX_PT,
                sequence_number=s,
                timestamp=0,
                ssrc=RTX,
                payload=b"",
                padding_bytes=200,
            )
    raise AssertionError(item)


@settings(max_examples=60, **FIXED)
@given(items=st.lists(packet, min_size=1, max_size=60), base=st.integers(0, 65_535))
def test_the_intake_does_what_the_python_path_does(
    receiver: socket.socket, sender: socket.socket, items: list[tuple[Any, ...]], base: int
) -> None:
    route = route_to(receiver, sender, sessions()[0])
    receiver.setblocking(False)
    spec, fast = Side(make_slots(route, 10)), Side(make_slots(route, 20))
    streams = {ssrc: Reception(ssrc, nack_delay_ms=10) for ssrc in (VIDEO, AUDIO)}
    slow_spec: list[bytes] = []
    slow_fast: list[tuple[bytes, int]] = []
    intake = make_intake(fast, lambda data, now: slow_fast.append((data, now)))
    for now, item in enumerate(items, start=5000):
        data = raw(item, base)
        if not python_path(spec, streams, data, now):
            slow_spec.append(data)
        intake.receive(data, now)
        _wire.flush()
        while True:  # drained, so the socket never fills
            try:
                receiver.recv(2048)
            except BlockingIOError:
                break
    assert [d for d, _ in slow_fast] == slow_spec
    assert taken(intake) == spec.counts
    assert taken(intake) == {}  # taken
    assert fast.heard == spec.heard
    assert fast.meter.state() == spec.meter.state()
    for key in KEYS.values():
        for mine, theirs in zip(fast.slots[key], spec.slots[key], strict=True):
            assert mine.forwarder.last_seq == theirs.forwarder.last_seq
            assert mine.wire.packets == theirs.wire.packets
            for seq in range(theirs.forwarder.last_seq - 70, theirs.forwarder.last_seq + 1):
                assert mine.wire.sent(seq % 65536) == theirs.wire.sent(seq % 65536)


def test_closed_gates_count_the_packet_and_forward_nothing(
    receiver: socket.socket, sender: socket.socket
) -> None:
    side, intake = taking(receiver, sender)
    intake.gate_audio = False
    intake.receive(audio(1, 10), 0)
    intake.receive(video(1, 1, 0, True), 0)
    assert [h[0] for h in side.heard] == ["keyframe", "switched"]  # video still flows
    intake.gate_video = False
    intake.receive(video(2, 2, 0, False), 1)
    intake.receive(audio(2, 10), 1)
    counts = taken(intake)
    assert counts["chair_muted"] == 3 and counts["packets_in"] == 4
    assert all(s.wire.packets == 0 for s in side.slots[KEYS[AUDIO]])  # not heard, not sent
    _wire.flush()


def test_what_the_tap_cannot_open_goes_to_the_fallback(
    receiver: socket.socket, sender: socket.socket
) -> None:
    side, intake = taking(receiver, sender)
    fell_back: list[bytes] = []
    tap = intake.tap(lambda data, addr: fell_back.append(data))
    key, salt = bytes(range(16)), bytes(range(12))
    sealer = _wire.Sealer(key, salt)
    protected = sealer.seal(audio(1, 10))
    assert protected is not None
    tap(protected, ("127.0.0.1", 1))  # no opener yet
    intake.opener = _wire.Opener(key, salt)
    tap(protected, ("127.0.0.1", 1))  # opened and taken
    tap(protected, ("127.0.0.1", 1))  # a replay: refused, so Python's to count
    stun = b"\x00\x01" + bytes(18)
    tap(stun, ("127.0.0.1", 1))
    rtcp = b"\x81\xc9" + bytes(30)
    tap(rtcp, ("127.0.0.1", 1))
    assert fell_back == [protected, protected, stun, rtcp]
    assert taken(intake)["packets_in"] == 1
    assert side.heard[0][0] == "level"
    with pytest.raises(TypeError):
        tap(protected)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        intake.opener = "key"  # type: ignore[assignment]
    _wire.flush()


@settings(max_examples=300, **FIXED)
@given(data=st.binary(max_size=3000))
def test_any_bytes_are_taken_or_handed_on(
    receiver: socket.socket, sender: socket.socket, data: bytes
) -> None:
    side = Side(make_slots(route_to(receiver, sender, sessions()[0]), 10))
    slow: list[bytes] = []
    intake = make_intake(side, lambda d, now: slow.append(d))
    intake.receive(data, 0)
    counts = taken(intake)
    assert (slow == [data]) != bool(counts.get("packets_in")), "exactly one of the two"
    _wire.flush()


def test_the_intake_refuses_what_it_cannot_use() -> None:
    def make(**changes: Any) -> _wire.Intake:
        args: dict[str, Any] = {
            "pid": "p",
            "fan_outs": {},
            "slow": print,
            "on_level": print,
            "on_keyframe": print,
            "after_fan_out": print,
            "schedule_flush": print,
        }
        return _wire.Intake(**{**args, **changes})

    with pytest.raises(TypeError, match="on_level must be callable"):
        make(on_level=3)
    with pytest.raises(TypeError):
        make(fan_outs=[])
    with pytest.raises(ValueError, match="max_packet"):
        make(max_packet=5000)
    intake = make()
    with pytest.raises(TypeError):
        intake.add("a track")  # type: ignore[arg-type]
    track = CReception(1)
    with pytest.raises(ValueError, match="layer"):
        track.route("k", True, 3)
    with pytest.raises(TypeError, match="meter"):
        track.route("k", True, 0, meter=print)  # type: ignore[arg-type]
    assert all(intake.add(CReception(ssrc)) for ssrc in range(32))
    assert not intake.add(CReception(99))  # full: its packets keep going the slow way
    assert intake.add(CReception(5)) and intake.holds(5) and not intake.holds(99)
    with pytest.raises(ValueError, match="payload type"):
        intake.add_repair(1000, 200, track)
    with pytest.raises(TypeError):
        intake.add_repair(1000, 97, "a track")  # type: ignore[arg-type]
    assert all(intake.add_repair(1000 + ssrc, 97, track) for ssrc in range(32))
    assert not intake.add_repair(2000, 97, track) and intake.holds(1000) and not intake.holds(2000)


def test_a_fourth_temporal_layer_is_taken_but_not_measured(
    receiver: socket.socket, sender: socket.socket
) -> None:
    side, intake = taking(receiver, sender)
    intake.receive(video(1, 1, 0, True), 0)
    before = side.meter.state()
    intake.receive(video(2, 2, 3, False), 10)
    assert side.meter.state() == before
    assert side.slots[KEYS[VIDEO]][1].wire.packets == 1  # the keyframe: its slots take tid <= 2
    assert taken(intake)["packets_in"] == 2
    with pytest.raises(ValueError, match="no layer"):
        side.meter.add(0, 0, 3, 100)
    _wire.flush()


def test_the_tap_opens_with_libsrtp_when_there_is_no_opener(
    receiver: socket.socket, sender: socket.socket
) -> None:
    side, intake = taking(receiver, sender)
    fell_back: list[bytes] = []
    tap = intake.tap(lambda data, addr: fell_back.append(data))
    tx, rx = sessions()  # AES-CM with HMAC-SHA1, as Chromium's publish connections choose
    protected = tx.protect(audio(1, 10))
    intake.set_srtp(srtp_context(rx), rx)
    tap(protected, ("127.0.0.1", 1))  # opened and taken
    tap(protected, ("127.0.0.1", 1))  # a replay: libsrtp refuses it, Python counts it
    assert fell_back == [protected]
    assert taken(intake)["packets_in"] == 1
    assert side.heard[0][0] == "level" and side.heard[0][2:] == ("p", 10, True)
    intake.set_srtp(None, None)
    tap(tx.protect(audio(2, 10)), ("127.0.0.1", 1))  # nothing to open with: Python's
    assert len(fell_back) == 2
    _wire.flush()


def test_libsrtp_opens_the_rtp_of_a_few_ssrcs_only(
    receiver: socket.socket, sender: socket.socket
) -> None:
    """Issue 19: libsrtp keeps a stream for every SSRC it opens and walks them all per packet;
    thousands of authentic SSRCs (AES-CM bypasses the Opener's limit) made every packet slow."""
    side = Side(make_slots(route_to(receiver, sender, sessions()[0]), 10))
    slow: list[bytes] = []
    intake = make_intake(side, lambda data, now: slow.append(data))
    fell_back: list[bytes] = []
    tap = intake.tap(lambda data, addr: fell_back.append(data))
    tx, rx = sessions()
    intake.set_srtp(srtp_context(rx), rx)
    for i in range(100):
        packet = build_rtp(payload_type=111, sequence_number=1, timestamp=0, ssrc=50_000 + i,
                           payload=bytes(40))  # fmt: skip
        tap(tx.protect(packet), ("127.0.0.1", 1))
    assert len(slow) == 32  # opened, and handed on (no track takes them)
    assert taken(intake)["ssrc_limit"] == 100 - len(slow) and not fell_back
    _wire.flush()


def test_a_removed_track_goes_the_slow_way_with_its_repair_stream(
    receiver: socket.socket, sender: socket.socket
) -> None:
    side = Side(make_slots(route_to(receiver, sender, sessions()[0]), 10))
    slow: list[bytes] = []
    intake = make_intake(side, lambda data, now: slow.append(data))
    assert intake.holds(VIDEO) and intake.holds(RTX) and intake.holds(AUDIO)
    intake.remove(VIDEO)
    assert not intake.holds(VIDEO) and not intake.holds(RTX) and intake.holds(AUDIO)
    intake.receive(video(1, 1, 0, True), 0)
    assert len(slow) == 1
    intake.remove(12345)  # not there: nothing happens
    _wire.flush()


def test_an_intake_never_initialised_fails_cleanly() -> None:
    bare = _wire.Intake.__new__(_wire.Intake)
    with pytest.raises(RuntimeError, match="never initialised"):
        bare.receive(audio(1, 10), 0)
    with pytest.raises(RuntimeError, match="never initialised"):
        bare.tap(print)  # a tap would have nothing to hand its packets to


def test_audio_without_levels_is_judged_by_its_size(
    receiver: socket.socket, sender: socket.socket
) -> None:
    """Issue 21: webrtcbin sets no level on its packets; the intake judges them as
    confsfu.conference.voice_activity does (held to it packet by packet above)."""
    side, intake = taking(receiver, sender)
    tone, silence = bytes([0xF8]) + bytes(159), bytes([0xF8, 0xFF, 0xFE])
    intake.receive(audio(1, None, tone), 100)
    intake.receive(audio(2, None, silence), 120)
    intake.receive(audio(3, None, bytes([0xFB])), 140)  # code 3 without its count
    assert [h for h in side.heard if h[0] == "level"] == [("level", 100, "p", 40, True)]
    intake.voice_frame_bytes = 0  # off: never heard
    intake.receive(audio(4, None, tone), 160)
    assert len([h for h in side.heard if h[0] == "level"]) == 1
    intake.voice_frame_bytes = 10
    for seq in range(5, 5 + 32):  # it sends silent levels now, as Chromium does
        intake.receive(audio(seq, 127), 180 + seq)
    intake.receive(audio(40, None, tone), 300)  # a packet without: not judged: it has levels
    assert len([h for h in side.heard if h[0] == "level"]) == 1
    _wire.flush()
