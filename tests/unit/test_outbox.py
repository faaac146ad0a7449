import pytest

from confsfu.signalling.outbox import Outbox


@pytest.mark.parametrize(
    ("max_messages", "max_bytes", "sizes", "expected"),
    [
        (3, 100, [10, 10, 10], [True, True, True]),
        (2, 100, [10, 10, 10], [True, True, False]),  # message count
        (10, 25, [10, 10, 10], [True, True, False]),  # bytes
        (10, 20, [20], [True]),  # exactly at the byte limit
        (10, 19, [20], [False]),  # one message larger than the whole limit
        (2, 100, [10, 10, 10, 1], [True, True, False, False]),  # overflowed stays so
    ],
)
def test_admit(max_messages: int, max_bytes: int, sizes: list[int], expected: list[bool]) -> None:
    box = Outbox(max_messages, max_bytes)
    assert [box.admit(size) for size in sizes] == expected
    assert box.overflowed == (False in expected)


def test_written_makes_room() -> None:
    box = Outbox(2, 100)
    assert box.admit(40) and box.admit(40)
    box.written(40)
    assert (box.messages, box.bytes) == (1, 40)
    assert box.admit(60)
    assert not box.admit(1)
