"""heap_in_use_bytes: what is allocated through malloc, up and down with what the process holds."""

from __future__ import annotations

from confsfu.server.heap import HeapGauge, heap_in_use_bytes

MB = 1024 * 1024


def test_allocated_bytes_follow_an_allocation_and_its_release() -> None:
    before = heap_in_use_bytes()
    assert before is not None and before > 0  # glibc (Debian) has mallinfo2
    held = [bytearray(64 * 1024) for _ in range(160)]  # 10 MB in blocks malloc serves
    during = heap_in_use_bytes()
    del held
    after = heap_in_use_bytes()
    assert during is not None and after is not None
    assert during - before >= 9 * MB
    assert after - before < 1 * MB


def test_the_gauge_reads_at_most_once_a_second() -> None:
    reads = iter(range(1, 100))
    gauge = HeapGauge(lambda: next(reads))
    # (time asked, figure given): a new read only a second after the last one
    table = [(10.0, 1), (10.5, 1), (10.99, 1), (11.0, 2), (11.2, 2), (30.0, 3), (30.0, 3)]
    assert [(t, gauge.value(t)) for t, _ in table] == table


def test_the_gauge_says_none_where_the_reading_cannot_be_had() -> None:
    assert HeapGauge(lambda: None).value(0.0) is None
