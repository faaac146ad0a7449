"""Spreading a benchmark over rooms, URLs and server processes: the URL list's checks, the
spreading rule, the command line, and the per-process and per-URL figures."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.bench.__main__ import main as bench_main
from confsfu.bench.deployment import merged
from confsfu.bench.scenario import Scenario, ScenarioError
from confsfu.bench.spread import is_loopback, parse_urls, shares, spread_peers
from confsfu.bench.spread_report import per_process, per_url, spread_lines

A, B, C = "ws://127.0.0.1:8001/ws", "ws://127.0.0.1:8002/ws", "wss://meet.example.org/ws"

GOOD_URLS = [
    ("one", [A], (A,)),
    ("repeated", [A, B], (A, B)),
    ("a comma list", [f"{A},{B}"], (A, B)),
    ("both, with spaces", [f"{A} , {B}", C], (A, B, C)),
    ("a path before /ws", ["wss://h.example/conf/ws"], ("wss://h.example/conf/ws",)),
    ("IPv6", ["ws://[::1]:8000/ws"], ("ws://[::1]:8000/ws",)),
]  # fmt: skip


@pytest.mark.parametrize(("given_", "expected"), [r[1:] for r in GOOD_URLS],
                         ids=[r[0] for r in GOOD_URLS])  # fmt: skip
def test_url_lists_parse(given_: list[str], expected: tuple[str, ...]) -> None:
    assert parse_urls(given_) == expected


BAD_URLS = [
    ("http, not ws", ["http://127.0.0.1:8000/ws"], "ws:// or wss://"),
    ("no scheme", ["127.0.0.1:8000/ws"], "ws:// or wss://"),
    ("no host", ["ws://:8000/ws"], "no host"),
    ("port out of range", ["ws://127.0.0.1:99999/ws"], "port"),
    ("port zero", ["ws://127.0.0.1:0/ws"], "port"),
    ("port not a number", ["ws://127.0.0.1:x/ws"], "port"),
    ("not /ws", ["ws://127.0.0.1:8000/"], "/ws"),
    ("a query", ["ws://127.0.0.1:8000/ws?room=x"], "/ws"),
    ("an empty entry", [f"{A},,{B}"], "empty entry"),
    ("a trailing comma", [f"{A},"], "empty entry"),
    ("the same twice", [A, f"{B},{A}"], "twice"),
    ("too many", [",".join(f"ws://h{i}.example/ws" for i in range(65))], "at most 64"),
]  # fmt: skip


@pytest.mark.parametrize(("given_", "says"), [r[1:] for r in BAD_URLS],
                         ids=[r[0] for r in BAD_URLS])  # fmt: skip
def test_bad_url_lists_are_refused_saying_why(given_: list[str], says: str) -> None:
    with pytest.raises(ScenarioError, match=says):
        parse_urls(given_)


@given(st.lists(st.text(max_size=40), max_size=4))
def test_any_url_list_parses_or_gets_a_scenario_error(values: list[str]) -> None:
    try:
        urls = parse_urls(values)
    except ScenarioError:
        return
    assert all(u.startswith(("ws://", "wss://")) and u.endswith("/ws") for u in urls)


@pytest.mark.parametrize(("url", "loopback"), [
    (A, True), ("ws://localhost:1/ws", True), ("ws://[::1]:1/ws", True), (C, False),
    ("ws://10.0.0.2:1/ws", False),
])  # fmt: skip
def test_loopback_urls_are_told_apart(url: str, loopback: bool) -> None:
    assert is_loopback(url) is loopback


FANOUT = Scenario(name="f", publishers=1, subscribers=3)
P, V0, V1, V2 = "Publisher 000", "Viewer 000", "Viewer 001", "Viewer 002"

# (rooms, URLs, spread) -> (label, URL index, room) in joining order
SPREADS = [
    ("one room, one URL", 1, 1, "participants",
     [(P, 0, "bench"), (V0, 0, "bench"), (V1, 0, "bench"), (V2, 0, "bench")]),
    ("one room dealt over two URLs", 1, 2, "participants",
     [(P, 0, "bench"), (V0, 1, "bench"), (V1, 0, "bench"), (V2, 1, "bench")]),
    ("one room over three URLs", 1, 3, "participants",
     [(P, 0, "bench"), (V0, 1, "bench"), (V1, 2, "bench"), (V2, 0, "bench")]),
    ("two rooms on one URL, interleaved", 2, 1, "participants",
     [(f"{P} @bench-1", 0, "bench-1"), (f"{P} @bench-2", 0, "bench-2"),
      (f"{V0} @bench-1", 0, "bench-1"), (f"{V0} @bench-2", 0, "bench-2"),
      (f"{V1} @bench-1", 0, "bench-1"), (f"{V1} @bench-2", 0, "bench-2"),
      (f"{V2} @bench-1", 0, "bench-1"), (f"{V2} @bench-2", 0, "bench-2")]),
    ("two rooms dealt over two URLs, each room starting one further", 2, 2, "participants",
     [(f"{P} @bench-1", 0, "bench-1"), (f"{P} @bench-2", 1, "bench-2"),
      (f"{V0} @bench-1", 1, "bench-1"), (f"{V0} @bench-2", 0, "bench-2"),
      (f"{V1} @bench-1", 0, "bench-1"), (f"{V1} @bench-2", 1, "bench-2"),
      (f"{V2} @bench-1", 1, "bench-1"), (f"{V2} @bench-2", 0, "bench-2")]),
    ("two rooms whole, one a URL", 2, 2, "rooms",
     [(f"{P} @bench-1", 0, "bench-1"), (f"{P} @bench-2", 1, "bench-2"),
      (f"{V0} @bench-1", 0, "bench-1"), (f"{V0} @bench-2", 1, "bench-2"),
      (f"{V1} @bench-1", 0, "bench-1"), (f"{V1} @bench-2", 1, "bench-2"),
      (f"{V2} @bench-1", 0, "bench-1"), (f"{V2} @bench-2", 1, "bench-2")]),
    ("one room whole on the first of two URLs", 1, 2, "rooms",
     [(P, 0, "bench"), (V0, 0, "bench"), (V1, 0, "bench"), (V2, 0, "bench")]),
]  # fmt: skip


@pytest.mark.parametrize(("rooms", "n_urls", "spread", "expected"), [r[1:] for r in SPREADS],
                         ids=[r[0] for r in SPREADS])  # fmt: skip
def test_the_spreading_rule(
    rooms: int, n_urls: int, spread: Any, expected: list[tuple[str, int, str]]
) -> None:
    urls = [A, B, C][:n_urls]
    plans = spread_peers(FANOUT.with_values(rooms=rooms), None, (), urls, spread)
    assert [(p.label, urls.index(p.url or ""), p.room) for p in plans] == expected
    # Names repeat from room to room (the chair finds its presenter by name); labels do not.
    assert {p.name for p in plans} == {P, V0, V1, V2}
    assert len({p.label for p in plans}) == len(plans)


def test_each_room_gets_tokens_for_itself() -> None:
    import jwt

    scenario = Scenario(name="m", chair=True, publishers=2, rooms=3)
    plans = spread_peers(scenario, "k" * 32, (), [A])
    for plan in plans:
        assert plan.token is not None
        claims = jwt.decode(plan.token, options={"verify_signature": False})
        assert claims["room"] == plan.room
    assert [p.room for p in plans if p.role == "chair"] == ["bench-1", "bench-2", "bench-3"]


def test_spreading_refuses_what_it_cannot_do() -> None:
    with pytest.raises(ScenarioError, match="one room"):
        spread_peers(FANOUT.with_values(rooms=2), None, ("a.b.c",), [A])
    with pytest.raises(ScenarioError, match="no URL"):
        spread_peers(FANOUT, None, (), [])
    with pytest.raises(ScenarioError, match="spread"):
        spread_peers(FANOUT, None, (), [A], "nodes")  # type: ignore[arg-type]
    with pytest.raises(ScenarioError, match="room"):
        FANOUT.with_values(room="r" * 61)
    with pytest.raises(ScenarioError, match="rooms"):
        FANOUT.with_values(rooms=0)


@given(
    st.integers(1, 4), st.integers(0, 3), st.integers(0, 7), st.integers(1, 5),
    st.sampled_from(["participants", "rooms"]),
)  # fmt: skip
def test_everyone_joins_once_and_urls_share_each_room_evenly(
    rooms: int, publishers: int, subscribers: int, n_urls: int, spread: Any
) -> None:
    if publishers + subscribers == 0:
        return
    scenario = Scenario(name="h", publishers=publishers, subscribers=subscribers, rooms=rooms)
    urls = [f"ws://127.0.0.1:{9000 + i}/ws" for i in range(n_urls)]
    plans = spread_peers(scenario, None, (), urls, spread)
    assert len(plans) == rooms * scenario.participants
    per_room = {r: [p for p in plans if p.room == r] for r in scenario.room_names}
    assert all(len(ps) == scenario.participants for ps in per_room.values())
    counts = shares(plans)
    for room in scenario.room_names:
        held = [counts.get((u, room), 0) for u in urls]
        if spread == "participants":
            assert max(held) - min(held) <= 1
        else:
            assert sorted(held)[-1] == scenario.participants and sum(held) == sorted(held)[-1]


CLI_ERRORS = [
    ("workers with a URL", ["--url", A, "--server-workers", "2"], "no --url"),
    ("no workers", ["--server-workers", "0"], "1 to 64"),
    ("too many workers", ["--server-workers", "65"], "1 to 64"),
    ("spill on one worker", ["--server-spill", "3"], "--server-workers 2 or more"),
    ("spill below zero", ["--server-workers", "2", "--server-spill", "-1"], "0 to 100000"),
    ("a pid without a URL", ["--server-pid", "1"], "goes with --url"),
    ("a pid that is none", ["--url", A, "--server-pid", "0"], "process id"),
    ("a bad URL", ["--url", "http://x/ws"], "ws:// or wss://"),
    ("a bad URL in a list", ["--url", f"{A},ws://h:70000/ws"], "port"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "says"), [r[1:] for r in CLI_ERRORS],
                         ids=[r[0] for r in CLI_ERRORS])  # fmt: skip
def test_the_command_line_refuses_bad_spreads(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench_main(["fanout", *args]) == 2
    assert says in capsys.readouterr().err


CLI_OPTIONS = [
    ("own server", [], ((), (), 1, "participants", 1)),
    ("own server, workers and rooms", ["--server-workers", "2", "--set", "rooms=2"],
     ((), (), 2, "participants", 2)),
    ("own server spilling", ["--server-workers", "2", "--server-spill", "5"],
     ((), (), 2, "participants", 1)),
    ("URLs repeated and listed", ["--url", A, "--url", f"{B},{C}", "--spread", "rooms"],
     ((A, B, C), (), 1, "rooms", 1)),
    ("pids", ["--url", A, "--server-pid", "10", "--server-pid", "11"],
     ((A,), (10, 11), 1, "participants", 1)),
]  # fmt: skip


@pytest.mark.parametrize(("args", "expected"), [r[1:] for r in CLI_OPTIONS],
                         ids=[r[0] for r in CLI_OPTIONS])  # fmt: skip
def test_the_command_line_passes_the_spread_on(
    args: list[str], expected: tuple[Any, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    from confsfu.bench import runner

    seen: list[runner.BenchOptions] = []
    monkeypatch.setattr(runner, "run", lambda options: seen.append(options) or {})
    assert bench_main(["fanout", *args]) == 0
    (o,) = seen
    assert (o.urls, o.server_pids, o.server_workers, o.spread, o.scenario.rooms) == expected
    assert o.server_spill == (int(args[args.index("--server-spill") + 1])
                              if "--server-spill" in args else 0)  # fmt: skip


FRONT_HEALTH = {
    "front_pid": 100,
    "counters": {"packets_in": 30, "packets_out": 300},
    "drops": {"x": 1},
    "participants": 6,
    "loop_lag": {"every_ms": 10, "bins": {"0": 5, "10": 1}, "max_ms": 12, "late_ms_total": 3.0},
    "workers": [
        {"index": 0, "pid": 101, "rooms": ["bench-1"],
         "health": {"counters": {"packets_out": 200}}},
        {"index": 1, "pid": 102, "rooms": ["bench-2"],
         "health": {"counters": {"packets_out": 100}}},
    ],
}  # fmt: skip
ONE_HEALTH = {
    "pid": 200,
    "room_names": ["bench"],
    "counters": {"packets_out": 50},
    "drops": {"x": 2, "y": 1},
    "participants": 2,
    "loop_lag": {"every_ms": 10, "bins": {"0": 7, "10": 0}, "max_ms": 30, "late_ms_total": 1.0},
}


def test_several_servers_health_is_added_up() -> None:
    both = merged([FRONT_HEALTH, ONE_HEALTH])
    assert both["counters"] == {"packets_in": 30, "packets_out": 350}
    assert both["drops"] == {"x": 3, "y": 1} and both["participants"] == 8
    assert both["loop_lag"]["bins"] == {"0": 12, "10": 1} and both["loop_lag"]["max_ms"] == 30
    assert merged([ONE_HEALTH]) is ONE_HEALTH


def test_server_processes_are_named_by_the_health_that_lists_them() -> None:
    import os

    import psutil  # type: ignore[import-untyped]

    from confsfu.bench.deployment import ServerProcess, packets_out, rooms_of

    me = psutil.Process(os.getpid())
    urls, bodies = [A, B], [FRONT_HEALTH, ONE_HEALTH]

    def proc(role: str, url: str, worker: int | None, pid: int) -> ServerProcess:
        p = ServerProcess(role=role, url=url, worker=worker, process=me)
        p.process = type("P", (), {"pid": pid})()  # only its pid is read
        return p

    cases = [
        (proc("front", A, None, 100), 0, []),
        (proc("worker 0", A, 0, 101), 200, ["bench-1"]),
        (proc("worker 1", A, 1, 102), 100, ["bench-2"]),
        (proc("worker 1", A, 1, 999), None, []),  # restarted: another pid holds the place
        (proc("server", B, None, 200), 50, ["bench"]),
    ]
    for p, packets, rooms in cases:
        assert packets_out(p, urls, bodies) == packets, p.role
        assert rooms_of(p, urls, bodies) == rooms, p.role


def _snap(
    pid: int,
    role: str,
    cpu_s: float,
    packets: int | None,
    wait_s: float | None = 0.0,  # type: ignore[no-untyped-def]
    relayed: int = 0,
):
    return {"role": role, "url": A, "pid": pid, "cpu_s": cpu_s, "wait_s": wait_s}  | {
        "rss_bytes": 1, "packets_out": packets, "gone": False, "rooms": [],
        "relay_frames_out": relayed,
    }  # fmt: skip


def test_cpu_per_packet_per_process_and_in_total() -> None:
    start = [
        _snap(1, "front", 1.0, 0),
        _snap(2, "worker 0", 2.0, 1000),
        _snap(3, "worker 1", 2.0, 0),
    ]
    end = [
        _snap(1, "front", 1.5, 0, 1.0),  # 0.5 s, waited 1 s of 10
        _snap(2, "worker 0", 4.0, 101_000),  # 2 s for 100,000 packets: 20 us
        _snap(3, "worker 1", 3.0, 50_000, relayed=700),  # 1 s for 50,000: 20 us
        _snap(4, "worker 2", 9.0, 9),  # not there at the start: not counted
    ]  # fmt: skip
    out = per_process(start, end, 10.0)
    rows = {r["role"]: r for r in out["processes"]}
    assert set(rows) == {"front", "worker 0", "worker 1"}
    assert rows["front"]["cpu_us_per_packet_out"] is None
    assert rows["front"]["waiting_for_cpu_pct"] == 10.0
    assert rows["worker 0"]["cpu_us_per_packet_out"] == 20.0
    assert rows["worker 1"]["cpu_pct_of_core"] == 10.0
    assert (out["cpu_s"], out["packets_out"], out["cpu_us_per_packet_out"]) == (3.5, 150_000, 23.33)
    assert out["waiting_for_cpu_pct_max"] == 10.0
    assert rows["worker 1"]["relay_frames_out"] == out["relay_frames_out"] == 700
    assert "relay frames between workers: 700" in "\n".join(
        spread_lines({"urls": [A], "server_processes": out})
    )


def test_figures_per_url() -> None:
    def peer(
        url: str, packets: int, delays: dict[str, int], listener: bool = False
    ) -> dict[str, Any]:
        return {"url": url, "room": "bench", "listener": listener, "join_ms": 5.0,
                "packets": packets, "delays": delays, "expected": 50, "unrecovered": 1}  # fmt: skip

    peers = [peer(A, 99, {"10": 99}), peer(A, 0, {}), peer(B, 9, {"50": 9}), peer(B, 5, {}, True)]
    start = [{"packets_out": 0}, {"packets_out": 100}]
    end = [{"packets_out": 1000}, {"packets_out": 300}]
    a, b = per_url(peers, [A, B], start, end, 10.0)
    assert (a["participants"], a["received_packets"], a["delay_p50_ms"]) == (2, 99, 1.05)
    assert a["loss_pct"] == 2.0 and a["server_packets_out_per_s"] == 100.0
    assert (b["participants"], b["listeners"], b["received_packets"]) == (1, 1, 9)
    assert b["delay_p99_ms"] == 5.05 and b["server_packets_out_per_s"] == 20.0
    result = {
        "urls": [A, B],
        "per_url": [a, b],
        "server_processes": per_process(
            [_snap(1, "server", 0.0, 0)], [_snap(1, "server", 1.0, 10)], 10.0
        ),
    }  # fmt: skip
    text = "\n".join(spread_lines(result))
    assert "server processes" in text and "per URL" in text
    assert f"1. {A}  rooms bench: 2/2 joined; received 99 packets" in text
