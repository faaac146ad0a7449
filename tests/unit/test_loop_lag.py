"""The event loop's lateness: counted by bin (sans-IO), and the probe timer that measures it."""

from __future__ import annotations

import asyncio
import gc
import time

from hypothesis import given
from hypothesis import strategies as st

from confsfu.server.loop_lag import BIN_EDGES_MS, LagProbe, LoopLag


def test_lateness_lands_in_the_bin_of_its_lower_edge() -> None:
    lag = LoopLag()
    for late_ms in (0.0, 0.9, 1.0, 4.99, 10.0, 12.5, 600.0, -3.0):  # early counts as on time
        lag.record(late_ms)
    bins = lag.snapshot()["bins"]
    assert bins == {"0": 3, "1": 1, "2": 1, "5": 0, "10": 2} | {
        "20": 0,
        "50": 0,
        "100": 0,
        "200": 0,
        "500": 1,
    }
    assert lag.max_ms == 600.0
    assert lag.late_ms_total == 0.9 + 1.0 + 4.99 + 10.0 + 12.5 + 600.0
    assert lag.samples == 8


@given(st.lists(st.floats(min_value=-10, max_value=5_000), max_size=50))
def test_buckets_are_cumulative_and_end_with_every_sample(lates: list[float]) -> None:
    lag = LoopLag()
    for late_ms in lates:
        lag.record(late_ms)
    buckets = lag.buckets()
    assert [edge for edge, _ in buckets] == [*BIN_EDGES_MS[1:], float("inf")]
    counts = [n for _, n in buckets]
    assert counts == sorted(counts) and counts[-1] == len(lates)
    for edge, n in buckets:
        assert n == sum(1 for late in lates if max(late, 0.0) < edge)


async def test_the_probe_sees_a_callback_that_holds_the_loop() -> None:
    lag = LoopLag()
    probe = LagProbe(lag, every_ms=5)
    gc.collect()  # no collection of earlier tests' garbage in the window: it spends CPU
    gc.disable()
    probe.start()
    try:
        await asyncio.sleep(0.05)
        asyncio.get_running_loop().call_soon(time.sleep, 0.08)  # a stall of 80 ms
        await asyncio.sleep(0.15)
    finally:
        probe.stop()
        gc.enable()
    assert lag.samples >= 5
    assert lag.max_ms >= 70  # the timer due during the stall ran at least that late
    assert lag.snapshot()["bins"]["50"] >= 1
    seen = lag.samples
    await asyncio.sleep(0.03)
    assert lag.samples == seen  # stopped
    assert lag.max_cpu_ms < 40  # time.sleep holds the loop without spending CPU


async def test_the_probe_counts_the_cpu_a_callback_holds_the_loop_for() -> None:
    def spin(seconds: float) -> None:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    lag = LoopLag()
    probe = LagProbe(lag, every_ms=5)
    probe.start()
    try:
        await asyncio.sleep(0.03)
        asyncio.get_running_loop().call_soon(spin, 0.06)  # 60 ms of CPU in one callback
        await asyncio.sleep(0.1)
    finally:
        probe.stop()
    assert lag.max_cpu_ms >= 60
    assert lag.snapshot()["max_cpu_ms"] >= 60
    lag.reset_max()
    assert lag.max_cpu_ms == lag.max_ms == 0.0
