"""Prometheus metrics read from the live rooms at scrape time, so the packet path pays nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from confsfu.server.loop_lag import LoopLag

# RoomMedia.counters keys and the metric each becomes (confsfu_<name>_total).
MEDIA_COUNTERS: dict[str, tuple[str, str]] = {
    "packets_in": ("packets_in", "RTP packets received from publishers."),
    "bytes_in": ("bytes_in", "RTP bytes received from publishers."),
    "packets_out": ("packets_out", "RTP packets forwarded to subscribers."),
    "bytes_out": ("bytes_out", "RTP bytes forwarded to subscribers."),
    "keyframe_requests": ("keyframe_requests", "Keyframe requests (PLI) sent to publishers."),
    "rtx_out": ("rtx_sent", "Retransmissions sent to subscribers from the packet history."),
    "rtx_in": ("rtx_received", "Retransmissions received from publishers."),
    "nacks_sent": ("nacks_sent", "NACKs sent to publishers for lost packets."),
}


class _Counts(Protocol):
    def items(self) -> Iterable[tuple[str, int]]: ...


class _Media(Protocol):
    @property
    def counters(self) -> _Counts: ...

    @property
    def drops(self) -> _Counts: ...


class _Room(Protocol):
    @property
    def participants(self) -> Mapping[str, object]: ...


class LiveRoomView(Protocol):
    """What the collector reads of a live room (server.live_room.LiveRoom has it)."""

    @property
    def room(self) -> _Room: ...

    @property
    def media(self) -> _Media: ...

    @property
    def listeners(self) -> Mapping[str, object]: ...


class ServerCollector(Collector):
    """Rooms, participants, connections and the media counters of every live room, and how late
    the event loop runs."""

    def __init__(
        self,
        rooms: Callable[[], Mapping[str, LiveRoomView]],
        connections: Callable[[], int],
        loop_lag: LoopLag | None = None,
        send_queue_overflows: Callable[[], int] | None = None,
    ) -> None:
        self._rooms = rooms
        self._overflows = send_queue_overflows
        self._connections = connections
        self._loop_lag = loop_lag

    def describe(self) -> Iterable[Metric]:
        return list(self._families().values()) + self._lag_family()

    def collect(self) -> Iterable[Metric]:
        return list(self._collect_rooms()) + self._lag_family()

    def _lag_family(self) -> list[Metric]:
        lag = self._loop_lag
        if lag is None:
            return []
        family = HistogramMetricFamily(
            "confsfu_event_loop_lag_seconds",
            "How late the event loop ran a 10 ms timer: time no socket was read.",
        )
        family.add_metric(
            [],
            [(_le_seconds(edge), count) for edge, count in lag.buckets()],
            sum_value=lag.late_ms_total / 1000,
        )
        return [family]

    def _collect_rooms(self) -> Iterable[Metric]:
        families = self._families()
        rooms = self._rooms()
        families["rooms"].add_metric([], len(rooms))
        families["connections"].add_metric([], self._connections())
        overflows = self._overflows() if self._overflows is not None else 0
        families["send_queue_overflows"].add_metric([], overflows)
        for name, live in rooms.items():
            families["participants"].add_metric([name], len(live.room.participants))
            families["listeners"].add_metric([name], len(live.listeners))
            counts = dict(live.media.counters.items())
            for key, (metric, _doc) in MEDIA_COUNTERS.items():
                families[metric].add_metric([name], counts.pop(key, 0))  # 0: the series exists
            for key, value in counts.items():
                families["media_events"].add_metric([name, key], value)
            for reason, value in live.media.drops.items():
                families["forwarding_drops"].add_metric([name, reason], value)
        return list(families.values())

    def _families(self) -> dict[str, GaugeMetricFamily | CounterMetricFamily]:
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {
            "rooms": GaugeMetricFamily("confsfu_rooms", "Rooms held by this server."),
            "connections": GaugeMetricFamily(
                "confsfu_connections", "Open signalling WebSockets, joined or not."
            ),
            "send_queue_overflows": CounterMetricFamily(
                "confsfu_send_queue_overflows",
                "Connections closed because their page stopped reading (send queue full).",
            ),
            "participants": GaugeMetricFamily(
                "confsfu_participants", "Participants in the room.", labels=["room"]
            ),
            "listeners": GaugeMetricFamily(
                "confsfu_listeners", "Listeners (the audience) in the room.", labels=["room"]
            ),
        }
        for name, doc in MEDIA_COUNTERS.values():
            families[name] = CounterMetricFamily(f"confsfu_{name}", doc, labels=["room"])
        families["forwarding_drops"] = CounterMetricFamily(
            "confsfu_forwarding_drops",
            "Packets the media plane dropped, by reason.",
            labels=["room", "reason"],
        )
        families["media_events"] = CounterMetricFamily(
            "confsfu_media_events",
            "Other media-plane counters, by name.",
            labels=["room", "event"],
        )
        return families


def _le_seconds(edge_ms: float) -> str:
    return "+Inf" if edge_ms == float("inf") else str(edge_ms / 1000)


def make_registry(
    rooms: Callable[[], Mapping[str, LiveRoomView]],
    connections: Callable[[], int],
    loop_lag: LoopLag | None = None,
    send_queue_overflows: Callable[[], int] | None = None,
) -> CollectorRegistry:
    """A registry of its own (not the process-wide one) holding a ServerCollector."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ServerCollector(rooms, connections, loop_lag, send_queue_overflows))
    return registry


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The registry in the Prometheus text format, and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST
