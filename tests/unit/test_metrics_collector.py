"""The Prometheus collector reads rooms and media counters as they are at scrape time."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from confsfu.server.loop_lag import LoopLag
from confsfu.server.metrics import MEDIA_COUNTERS, exposition, make_registry


@dataclass
class FakeMedia:
    counters: Counter[str] = field(default_factory=Counter)
    drops: Counter[str] = field(default_factory=Counter)


@dataclass
class FakeRoom:
    participants: dict[str, object] = field(default_factory=dict)


@dataclass
class FakeLive:
    room: FakeRoom = field(default_factory=FakeRoom)
    media: FakeMedia = field(default_factory=FakeMedia)
    listeners: dict[str, object] = field(default_factory=dict)


def scrape(
    rooms: dict[str, FakeLive], connections: int = 0
) -> dict[tuple[str, tuple[str, ...]], float]:
    registry = make_registry(lambda: rooms, lambda: connections)
    body, content_type = exposition(registry)
    assert content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            labels = tuple(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[sample.name, labels] = sample.value
    return samples


def test_no_rooms() -> None:
    samples = scrape({})
    assert samples[("confsfu_rooms", ())] == 0
    assert samples[("confsfu_connections", ())] == 0
    assert not any(name == "confsfu_participants" for name, _ in samples)


def test_rooms_participants_counters_and_drops() -> None:
    demo = FakeLive(FakeRoom({"a": 1, "b": 2}))
    demo.media.counters.update(
        packets_in=10, bytes_in=1000, packets_out=30, bytes_out=3000, rtx_out=2, nacks_sent=1
    )
    demo.media.counters["keyframe_requests"] = 4
    demo.media.drops.update(unknown_ssrc=3, chair_muted=7)
    council = FakeLive(FakeRoom({"c": 3}), listeners={"l1": 1, "l2": 2, "l3": 3})
    council.media.counters["packets_in"] = 5
    samples = scrape({"demo": demo, "council": council}, connections=4)
    assert samples[("confsfu_rooms", ())] == 2
    assert samples[("confsfu_connections", ())] == 4
    assert samples[("confsfu_participants", ("room=demo",))] == 2
    assert samples[("confsfu_participants", ("room=council",))] == 1
    assert samples[("confsfu_listeners", ("room=council",))] == 3
    assert samples[("confsfu_listeners", ("room=demo",))] == 0
    assert samples[("confsfu_packets_in_total", ("room=demo",))] == 10
    assert samples[("confsfu_packets_in_total", ("room=council",))] == 5
    assert samples[("confsfu_bytes_out_total", ("room=demo",))] == 3000
    assert samples[("confsfu_rtx_sent_total", ("room=demo",))] == 2
    assert samples[("confsfu_nacks_sent_total", ("room=demo",))] == 1
    assert samples[("confsfu_keyframe_requests_total", ("room=demo",))] == 4
    drops = ("confsfu_forwarding_drops_total", ("reason=chair_muted", "room=demo"))
    assert samples[drops] == 7


def test_values_are_read_at_each_scrape() -> None:
    live = FakeLive()
    rooms = {"demo": live}
    registry = make_registry(lambda: rooms, lambda: 0)
    live.media.counters["packets_out"] = 1
    assert b'confsfu_packets_out_total{room="demo"} 1.0' in exposition(registry)[0]
    live.media.counters["packets_out"] = 99
    live.room.participants["x"] = object()
    body = exposition(registry)[0]
    assert b'confsfu_packets_out_total{room="demo"} 99.0' in body
    assert b'confsfu_participants{room="demo"} 1.0' in body


def test_unknown_media_counters_are_still_exported() -> None:
    live = FakeLive()
    live.media.counters["padding_sent"] = 12
    samples = scrape({"demo": live})
    assert samples[("confsfu_media_events_total", ("event=padding_sent", "room=demo"))] == 12


def test_every_known_counter_has_a_distinct_metric() -> None:
    names = [name for name, _ in MEDIA_COUNTERS.values()]
    assert len(set(names)) == len(names)
    assert {"packets_in", "bytes_in", "packets_out", "bytes_out"} <= set(names)
    assert {"keyframe_requests", "rtx_sent", "nacks_sent"} <= set(names)


def test_registries_are_independent() -> None:
    first = scrape({"demo": FakeLive(FakeRoom({"a": 1}))})
    second = scrape({})
    assert ("confsfu_participants", ("room=demo",)) in first
    assert second[("confsfu_rooms", ())] == 0


def test_event_loop_lag_is_a_histogram_in_seconds() -> None:
    lag = LoopLag()
    for late_ms in (0.5, 3, 30, 30, 700):
        lag.record(late_ms)
    body = exposition(make_registry(lambda: {}, lambda: 0, lag))[0].decode()
    family = next(
        f
        for f in text_string_to_metric_families(body)
        if f.name == "confsfu_event_loop_lag_seconds"
    )
    assert family.type == "histogram"
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name.endswith("_bucket")}
    assert buckets["0.001"] == 1 and buckets["0.005"] == 2 and buckets["0.05"] == 4
    assert buckets["0.5"] == 4 and buckets["+Inf"] == 5
    total = next(s.value for s in family.samples if s.name.endswith("_sum"))
    assert abs(total - 0.7635) < 1e-9
