"""The front's /metrics merge: each worker's families under a `worker` label, one family per
name, a worker whose page is missing or garbled counted as not scraped."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from confsfu.server.front_metrics import WorkerScrape, front_exposition, merge_scrapes

PAGE = """# HELP confsfu_rooms Rooms held by this server.
# TYPE confsfu_rooms gauge
confsfu_rooms 1.0
# HELP confsfu_packets_out_total RTP packets forwarded to subscribers.
# TYPE confsfu_packets_out_total counter
confsfu_packets_out_total{room="east"} 120.0
"""


def scrape(index: int, text: str | None, alive: bool = True) -> WorkerScrape:
    return WorkerScrape(index, alive, restarts=index, connections=3, rooms=1, text=text)


def values(scrapes: list[WorkerScrape]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = front_exposition(scrapes)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


@pytest.mark.parametrize(
    ("pages", "expected"),
    [
        (
            [PAGE, PAGE],
            {
                ("confsfu_rooms", (("worker", "0"),)): 1.0,
                ("confsfu_rooms", (("worker", "1"),)): 1.0,
                ("confsfu_packets_out_total", (("room", "east"), ("worker", "1"))): 120.0,
                ("confsfu_front_worker_scraped", (("worker", "0"),)): 1.0,
                ("confsfu_front_worker_scraped", (("worker", "1"),)): 1.0,
            },
        ),
        (
            [PAGE, None],
            {
                ("confsfu_rooms", (("worker", "0"),)): 1.0,
                ("confsfu_front_worker_scraped", (("worker", "1"),)): 0.0,
                ("confsfu_front_worker_restarts_total", (("worker", "1"),)): 1.0,
            },
        ),
        (
            [PAGE, "confsfu_rooms{{{ not a page"],
            {
                ("confsfu_rooms", (("worker", "0"),)): 1.0,
                ("confsfu_front_worker_scraped", (("worker", "1"),)): 0.0,
            },
        ),
    ],
    ids=["two workers", "one did not answer", "one garbled"],
)
def test_merged_pages(pages: list[str | None], expected: dict[object, float]) -> None:
    got = values([scrape(i, page) for i, page in enumerate(pages)])
    for key, value in expected.items():
        assert got[key] == value, (key, got)
    if pages[1] is None or "{{{" in (pages[1] or ""):
        assert ("confsfu_rooms", (("worker", "1"),)) not in got


def test_one_family_per_name() -> None:
    body, _ = front_exposition([scrape(0, PAGE), scrape(1, PAGE)])
    assert body.decode().count("# TYPE confsfu_rooms gauge") == 1


def test_a_family_whose_type_differs_keeps_the_first() -> None:
    other = "# TYPE confsfu_rooms counter\nconfsfu_rooms_total 5.0\n"
    families = {f.name: f for f in merge_scrapes([scrape(0, PAGE), scrape(1, other)])}
    assert families["confsfu_rooms"].type == "gauge"
    assert {s.labels["worker"] for s in families["confsfu_rooms"].samples} == {"0"}


@given(st.text(max_size=400))
def test_any_page_merges_without_raising(text: str) -> None:
    body, _ = front_exposition([scrape(0, text), scrape(1, PAGE)])
    assert b"confsfu_front_worker_scraped" in body
