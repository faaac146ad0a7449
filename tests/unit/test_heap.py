"""heap_in_use_bytes: what is allocated through malloc, up and down with what the process holds."""

from __future__ import annotations

from confsfu.server.heap import heap_in_use_bytes

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
