"""The front's /metrics: every worker's exposition under a `worker` label, and the front's own
view of its workers (alive, restarts, piped connections, rooms placed)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector, CollectorRegistry

MAX_WORKER_EXPOSITION_BYTES = 4 << 20  # a worker's page of metrics, read at most this long


@dataclass(frozen=True, slots=True)
class WorkerScrape:
    """What the front knows of one worker at a scrape; `text` is None when it did not answer."""

    index: int
    alive: bool
    restarts: int
    connections: int
    rooms: int
    text: str | None


def merge_scrapes(scrapes: Sequence[WorkerScrape]) -> list[Metric]:
    """One family per metric name, each sample labelled with its worker; a worker whose page
    does not parse counts as not scraped (confsfu_front_worker_scraped 0)."""
    families: dict[str, Metric] = {}
    scraped: dict[int, bool] = {}
    for scrape in scrapes:
        parsed = _parse(scrape.text) if scrape.text is not None else None
        scraped[scrape.index] = parsed is not None
        for family in parsed or ():
            merged = families.get(family.name)
            if merged is None:
                merged = Metric(family.name, family.documentation, family.type, family.unit)
                families[family.name] = merged
            elif merged.type != family.type:
                continue  # two workers disagree on a family's type: keep the first's
            worker = str(scrape.index)
            merged.samples.extend(
                s._replace(labels={**s.labels, "worker": worker}) for s in family.samples
            )
    return [*_front_families(scrapes, scraped), *families.values()]


def _parse(text: str) -> list[Metric] | None:
    if len(text) > MAX_WORKER_EXPOSITION_BYTES:
        return None
    try:
        return list(text_string_to_metric_families(text))
    except (ValueError, TypeError, KeyError, IndexError):
        return None


def _front_families(scrapes: Sequence[WorkerScrape], scraped: dict[int, bool]) -> Iterable[Metric]:
    alive = GaugeMetricFamily(
        "confsfu_front_worker_alive", "1 while the worker runs and is ready.", labels=["worker"]
    )
    up = GaugeMetricFamily(
        "confsfu_front_worker_scraped",
        "1 when the worker's own metrics were read at this scrape.",
        labels=["worker"],
    )
    restarts = CounterMetricFamily(
        "confsfu_front_worker_restarts",
        "Times the front started the worker again.",
        labels=["worker"],
    )
    connections = GaugeMetricFamily(
        "confsfu_front_connections",
        "Signalling connections the front pipes to the worker.",
        labels=["worker"],
    )
    rooms = GaugeMetricFamily(
        "confsfu_front_rooms", "Rooms whose home is the worker.", labels=["worker"]
    )
    for scrape in scrapes:
        worker = [str(scrape.index)]
        alive.add_metric(worker, int(scrape.alive))
        up.add_metric(worker, int(scraped.get(scrape.index, False)))
        restarts.add_metric(worker, scrape.restarts)
        connections.add_metric(worker, scrape.connections)
        rooms.add_metric(worker, scrape.rooms)
    return [alive, up, restarts, connections, rooms]


class _Merged(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def front_exposition(
    scrapes: Sequence[WorkerScrape], extra: Sequence[Metric] = ()
) -> tuple[bytes, str]:
    """The merged families (and the front's `extra` ones) in the Prometheus text format, and
    its content type."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged([*extra, *merge_scrapes(scrapes)]))
    return generate_latest(registry), CONTENT_TYPE_LATEST
