"""The load generator's per-stream accounting (gaps, repairs by RTX, late arrivals, padding) and
what the report makes of the server's health snapshots."""

from __future__ import annotations

import functools
import re
from typing import Any

import pytest

from confsfu.bench.report import _loop_lag
from confsfu.bench.streams import (
    DELAY_MAX_MS,
    MISSING_KEPT,
    SendTimes,
    StreamStats,
    server_read_after,
)
from confsfu.bench.worker import layer_label
from confsfu.loadgen.packets import Pacer, RecentPackets
from confsfu.rtp.extensions import abs_send_time
from confsfu.rtp.packet import build_rtp
from confsfu.server.loop_lag import LoopLag


def receive(stats: StreamStats, *seqs: int) -> list[int]:
    return [stats.arrived(seq) for seq in seqs]


def test_a_gap_repaired_by_rtx_is_recovered_once() -> None:
    stats = StreamStats()
    assert receive(stats, 10, 11, 14) == [0, 0, 2]
    assert stats.gaps == 2
    assert stats.filled(12) and not stats.filled(12)  # the second copy is probe padding
    assert stats.recovered == 1 and stats.late == 0


def test_a_packet_arriving_late_fills_its_gap() -> None:
    stats = StreamStats()
    receive(stats, 65_534, 65_535, 1, 0)  # 0 comes after 1, across the wrap
    assert (stats.gaps, stats.recovered, stats.late) == (1, 1, 1)


def test_padding_copies_of_received_packets_recover_nothing() -> None:
    stats = StreamStats()
    receive(stats, *range(100, 200))
    assert not any(stats.filled(seq) for seq in range(150, 200))
    assert (stats.gaps, stats.recovered) == (0, 0)


def test_the_missing_set_stays_bounded() -> None:
    stats = StreamStats()
    seq = 0
    for _ in range(5000):
        receive(stats, seq)
        seq = (seq + 3) % 65536  # two lost every time
    assert stats.gaps == 2 * 4999
    assert len(stats.missing) <= 2 * MISSING_KEPT


def test_a_publisher_keeps_its_recent_packets_for_nacks() -> None:
    recent = RecentPackets(size=2)
    packets = [build_rtp(payload_type=96, sequence_number=n, timestamp=0, ssrc=7, payload=b"x")
               for n in (1, 2, 3)]  # fmt: skip
    for packet in packets:
        recent.keep(packet)
    assert recent.get(7, 1) is None  # pushed out
    assert recent.get(7, 2) == packets[1] and recent.get(7, 3) == packets[2]
    assert recent.get(8, 3) is None


@pytest.mark.parametrize(
    ("slot", "label"),
    [
        ({"spatial": 2, "reason": "optimal"}, "2"),
        ({"spatial": 0, "reason": "bandwidth"}, "0"),
        ({"spatial": None, "reason": "paused: bandwidth"}, "paused: bandwidth"),
        ({"spatial": None, "reason": "publisher not sending"}, "paused: publisher not sending"),
        ({"spatial": None, "reason": None}, "paused"),
    ],
)
def test_a_paused_slot_says_why_in_the_layer_table(slot: dict[str, Any], label: str) -> None:
    assert layer_label(slot) == label


def test_send_times_are_kept_while_a_delay_counts_and_then_forgotten() -> None:
    keep_s = DELAY_MAX_MS / 1000
    times = SendTimes(0.0)
    times.note(("Lima", b"first"), 0.0)
    for i in range(1, 2000):  # a packet every 10 ms for 20 s
        now = i * 0.01
        times.note(("Lima", i.to_bytes(12, "big")), now)
        if now < keep_s:
            assert times.get(("Lima", b"first")) == 0.0
        assert len(times) <= 2 * keep_s / 0.01 + 1  # bounded: two generations at most
    assert times.get(("Lima", b"first")) is None
    assert times.get(("Lima", (1999).to_bytes(12, "big"))) == pytest.approx(19.99)
    assert times.get(("Lima", (1999 - int(keep_s / 0.01)).to_bytes(12, "big"))) is not None
    assert times.get(("Seoul", b"never")) is None


def test_the_pacer_spreads_a_burst_over_ticks_in_order() -> None:
    pacer = Pacer(bytes_per_tick=5_000)
    sent: list[bytes] = []
    confirmed: list[int] = []
    for i in range(30):  # a 30-packet keyframe queued at once
        pacer.push(bytes([i]) * 1_000, functools.partial(confirmed.append, i))
    per_tick = []
    while len(sent) < 30:
        before = len(sent)
        pacer.tick(sent.append)
        per_tick.append(len(sent) - before)
    assert sent == [bytes([i]) * 1_000 for i in range(30)] and confirmed == list(range(30))
    assert max(per_tick) <= 6 and len(per_tick) >= 5  # ~5 kB a tick, never all at once
    for _ in range(10):  # idle ticks do not save up a burst for later
        pacer.tick(sent.append)
    for _ in range(30):
        pacer.push(b"x" * 1_000, lambda: None)
    before = len(sent)
    pacer.tick(sent.append)
    assert len(sent) - before <= 6


def test_loop_lag_over_the_window_comes_from_two_health_snapshots() -> None:
    before, after = LoopLag(), LoopLag()
    for late_ms in [0.5] * 50:
        before.record(late_ms)
        after.record(late_ms)
    for late_ms in [0.5] * 97 + [3.0, 12.0, 60.0]:  # the window: 100 more samples
        after.record(late_ms)
    lag = _loop_lag(before.snapshot(), after.snapshot())
    assert lag is not None
    assert lag["samples"] == 100 and lag["late_10ms_or_more"] == 2
    assert lag["p99_below_ms"] == 20  # the 99th sample is the 12 ms one
    assert lag["late_ms_total"] == round(97 * 0.5 + 75.0, 1)
    assert lag["worst_since_start_ms"] == 60.0
    assert _loop_lag(None, after.snapshot()) is None  # a server without the probe


@pytest.mark.parametrize(
    ("sent_s", "read_ms", "after_s"),
    [
        (100.0, 100_004, 0.004),  # 4 ms after the send
        (127.9995, 128_010, 0.0105),  # abs-send-time wrapped (every 64 s) in between
        (100.0006, 100_000, 0.0),  # read within the same ms: the truncated clock is "earlier"
        (5.0, 35_000, 30.0),
    ],
)
def test_the_server_read_time_comes_back_from_its_abs_send_time(
    sent_s: float, read_ms: int, after_s: float
) -> None:
    assert server_read_after(sent_s, abs_send_time(read_ms)) == pytest.approx(after_s, abs=1e-5)


def test_a_server_kept_waiting_for_a_cpu_is_named_in_the_bottleneck_row() -> None:
    from confsfu.bench.report import build_result, summary
    from confsfu.bench.scenario import load_scenario

    URL = "ws://127.0.0.1:1/ws"

    def snapshot(t: float, waited_s: float) -> dict[str, Any]:
        counters = {"packets_in": int(t * 100), "packets_out": int(t * 1000)}
        return {
            "t": t,
            "counters": counters,
            "drops": {},
            "server_cpu_s": t / 2,
            "processes": [
                {"role": "server", "url": URL, "pid": 7, "cpu_s": t / 2, "wait_s": waited_s}
                | {"rss_bytes": 0, "packets_out": counters["packets_out"], "gone": False}
            ],
            "bench_cpu_s": t / 4,
        }

    def result(waited_s: float, unreported: int = 0) -> dict[str, Any]:
        start, end = snapshot(10.0, 1.0), snapshot(30.0, 1.0 + waited_s)
        return build_result(
            scenario=load_scenario("fanout"),
            urls=[URL],
            own_server=True,
            base=start,
            window=start,
            end=end,
            final_health=end,
            rss0=None,
            samples=[],
            peers=[],
            worker_cpu_s=[5.0],
            layer_seconds={},
            planned=1,
            unreported=unreported,
        )

    waited = result(4.0)  # 4 s of a 20 s window
    assert waited["server"]["waiting_for_cpu_pct"] == 20.0
    assert "the server waited for a CPU 20% of the time" in summary(waited)
    (process,) = waited["server_processes"]["processes"]
    assert (process["cpu_s"], process["packets_out"], process["cpu_us_per_packet_out"]) == (
        10.0,
        20_000,
        500.0,
    )
    assert re.search(r"server +7 +10\.00 +50\.0 +20\.0 +20,000 +500", summary(waited))
    calm = result(0.2)
    assert calm["server"]["waiting_for_cpu_pct"] == 1.0
    assert "waited" not in "; ".join(calm["bench"]["bottleneck"])
    assert "never reported" not in summary(calm)
    # A load generator worker that sent no result: its participants are said to be missing.
    lost = result(0.2, unreported=23)
    assert lost["participants"]["unreported"] == 23
    assert "0/1 joined, 0 failed, 23 never reported" in summary(lost)


def test_the_arrival_time_is_the_kernels_not_the_read() -> None:
    import socket
    import time

    from confsfu.bench.arrival import ArrivalStamps

    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
    ):
        rx.bind(("127.0.0.1", 0))
        stamps = ArrivalStamps(rx.fileno())
        # Nothing received yet; asking switches the socket's time stamping on (without, the
        # first answer would be the time of asking).
        assert stamps.latest() is None
        # The kernel turns receive stamping on through deferred work (a static key): until it
        # runs, a datagram is stamped when read. Wait (bounded) for a stamp older than its read.
        for _ in range(100):
            tx.sendto(b"w", rx.getsockname())
            time.sleep(0.02)
            assert rx.recv(10) == b"w"
            warm = stamps.latest()
            if warm is not None and time.monotonic() - warm >= 0.015:
                break
        before = time.monotonic()
        tx.sendto(b"y", rx.getsockname())  # on loopback it arrives within the call
        after = time.monotonic()
        time.sleep(0.05)  # the datagram waits in the socket
        assert rx.recv(10) == b"y"
        now = time.monotonic()
        arrived = stamps.latest()
        assert arrived is not None
        assert before - 0.001 <= arrived <= after + 0.001  # clock conversion slack
        assert now - arrived >= 0.049


def test_an_arrival_time_holds_while_the_realtime_clock_is_slewed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A freshly booted VM's realtime clock may be slewed at up to 8 % (chrony's default
    maxslewrate): an arrival is converted through the realtime clock read at the question, not
    through an offset read a while before."""
    import struct

    from confsfu.bench import arrival

    clock = {"mono": 100.0, "offset": 1_000_000.0}  # realtime = monotonic + offset

    class Clocks:
        @staticmethod
        def monotonic() -> float:
            return clock["mono"]

        @staticmethod
        def time() -> float:
            return clock["mono"] + clock["offset"]

    kernel_stamp = [0.0]

    def ioctl(fd: int, request: int, buffer: bytearray, mutate: bool) -> int:
        seconds = int(kernel_stamp[0])
        buffer[:] = struct.pack("qq", seconds, round((kernel_stamp[0] - seconds) * 1e9))
        return 0

    monkeypatch.setattr(arrival, "time", Clocks)
    monkeypatch.setattr(arrival.fcntl, "ioctl", ioctl)
    stamps = arrival.ArrivalStamps(0)
    for step in range(20):  # 50 ms apart, the offset slewing 4 ms each step
        clock["mono"] += 0.05
        clock["offset"] += 0.004
        arrived_mono = clock["mono"] - 0.003  # it arrived 3 ms before the read
        kernel_stamp[0] = arrived_mono + clock["offset"]
        got = stamps.latest()
        assert got is not None
        assert abs(got - arrived_mono) < 0.0005, step


async def test_a_bench_peer_keeps_what_the_run_needs_and_a_bounded_log() -> None:
    from confsfu.bench.worker import MESSAGES_KEPT, BenchPeer

    peer = BenchPeer("ws://127.0.0.1:9/ws", sent_at=SendTimes(0.0), name="Chair")
    joined = {"type": "participant_joined", "participant": {"id": "p1", "name": "Presenter"}}
    stage = {"mid": "3", "purpose": "stage", "name": "Presenter", "source": "screen"}
    messages: list[dict[str, Any]] = [joined, {"type": "slot_map", "slots": [stage]}]
    messages += [{"type": "room_state", "floor_holder": f"p{i % 7}"} for i in range(5000)]
    for m in messages:  # as LoopbackPeer._read hands them over
        peer.messages.append(m)
        await peer._on_message(m)
    assert len(peer.messages) <= 2 * MESSAGES_KEPT
    assert peer.people == {"Presenter": "p1"} and peer.stage_seen == {"screen"}
    assert peer.floor_holders == {f"p{i}" for i in range(7)}
    assert peer.room_state == messages[-1]


async def test_identical_packets_are_told_apart_and_a_resend_is_the_same_packet() -> None:
    from confsfu.bench.worker import BenchPeer

    sent_at = SendTimes(0.0)
    peer = BenchPeer("ws://127.0.0.1:9/ws", sent_at=sent_at, name="Seoul")
    pc = peer._publisher_connection()  # not connected: sending returns False, nothing leaves
    try:
        frame = build_rtp(
            payload_type=97, sequence_number=1, timestamp=0, ssrc=7, payload=bytes(range(200))
        )
        again = build_rtp(
            payload_type=97, sequence_number=2, timestamp=0, ssrc=7, payload=bytes(range(200))
        )
        pc.send_rtp(frame)  # the same frame bytes twice, as a looping source sends them
        pc.send_rtp(again)
        assert len(sent_at) == 2
        kept = peer._recent.get(7, 1)  # what a NACK's answer sends
        assert kept is not None and kept != frame and kept[:-6] == frame[:-6]
        pc.send_rtp(kept)
        assert len(sent_at) == 2  # the same packet, the same key: its send time renewed
        # Another room's publisher of the same name (a run with rooms: 2) has keys of its own.
        twin = BenchPeer("ws://127.0.0.1:9/ws", sent_at=sent_at, name="Seoul", room="bench-2")
        twin_pc = twin._publisher_connection()
        try:
            twin_pc.send_rtp(frame)
            assert len(sent_at) == 3
        finally:
            await twin_pc.close()
    finally:
        await pc.close()


def test_bench_without_its_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    from confsfu.cli import main

    monkeypatch.setitem(sys.modules, "psutil", None)  # import psutil raises ImportError
    monkeypatch.delitem(sys.modules, "confsfu.bench.runner", raising=False)
    monkeypatch.delitem(sys.modules, "confsfu.bench.report", raising=False)
    assert main(["bench", "fanout", "--duration", "1"]) == 2
    assert "pip install 'confsfu[bench]'" in capsys.readouterr().err


LISTENER_TOKENS = [
    # (case, secret, token file roles, the listeners' token roles: None for the watch link)
    ("minted by the runner", "s" * 32, (), ["listener", "listener"]),
    ("no secret: the watch link", None, (), [None, None]),
    ("a token file with one listener token", None, ("listener", "participant"),
     ["listener", None]),
    ("a token file without listener tokens", None, ("participant",), [None, None]),
]  # fmt: skip


@pytest.mark.parametrize(("secret", "roles", "expected"), [r[1:] for r in LISTENER_TOKENS],
                         ids=[r[0] for r in LISTENER_TOKENS])  # fmt: skip
def test_listeners_join_with_a_listener_token_or_the_watch_link(
    secret: str | None, roles: tuple[str, ...], expected: list[str | None]
) -> None:
    import jwt

    from confsfu.bench.peers import plan_peers
    from confsfu.bench.scenario import Scenario
    from confsfu.tokens import make_token

    scenario = Scenario(name="x", publishers=1, listeners=2)
    tokens = tuple(make_token("k" * 32, room="x", name=r, role=r, now_s=0) for r in roles)  # type: ignore[arg-type]
    plans = plan_peers(scenario, secret, tokens)
    listeners = [p for p in plans if p.role == "listener"]
    assert [p.name for p in listeners] == ["Listener 0000", "Listener 0001"]
    assert not any(p.publish for p in listeners)
    got = [
        jwt.decode(p.token, options={"verify_signature": False})["role"] if p.token else None
        for p in listeners
    ]
    assert got == expected
    assert len(plans) == scenario.participants + 2  # listeners are not participants


def test_the_clock_offset_comes_from_the_closest_readings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker preempted between reading the realtime clock and the monotonic one would be
    off by the preemption: of the tries, the closest-together readings count."""
    from confsfu.bench import arrival

    # (monotonic before, realtime, monotonic after) per try: the first is preempted 30 ms
    # after the realtime reading; the true offset is 1000.0.
    readings = iter([(10.0, 1010.0, 10.030), (10.031, 1010.031, 10.03101)])
    pending: list[float] = []

    class Clocks:
        @staticmethod
        def monotonic() -> float:
            if not pending:
                before, real, after = next(readings)
                pending.extend([real, after])
                return before
            return pending.pop(0)

        @staticmethod
        def time() -> float:
            return pending.pop(0)

    monkeypatch.setattr(arrival, "time", Clocks)
    assert abs(arrival.realtime_offset() - 1000.0) < 0.0001
