"""Authenticated relay datagrams (confsfu.scale.relay_auth): the key derivation, sealing and
opening, the replay window, and that nothing but an authentic fresh datagram opens."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.scale import relay_auth as ra
from confsfu.scale import relay_frame as rf

SECRET = b"relay-secret-0123456789abcdef"
NOW = 1_800_000_000
PACKET = bytes([0x80, 96, 0, 1]) + bytes(8) + b"payload"
FRAME = rf.rtp(7, 9, 1, PACKET)
KEY = ra.RoomKey(ra.room_key(SECRET, "east"))
KEYS = {7: KEY}
WEST = ra.RoomKey(ra.room_key(SECRET, "west"))


def sealed(frame: bytes = FRAME, sender: int = 3) -> bytes:
    return ra.Sealer(sender, NOW).seal(KEY, frame, 0)


def test_hkdf_matches_rfc_5869_case_1() -> None:
    ikm = bytes([0x0B] * 22)
    salt = bytes(range(13))
    info = bytes(range(0xF0, 0xFA))
    okm = ra.hkdf_sha256(ikm, salt, info, 42)
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


def test_room_keys_agree_on_the_secret_and_differ_by_room() -> None:
    assert ra.room_key(SECRET, "east") == ra.room_key(bytes(SECRET), "east")
    assert ra.room_key(SECRET, "east") != ra.room_key(SECRET, "west")
    assert ra.room_key(SECRET, "east") != ra.room_key(SECRET + b"x", "east")
    assert len(ra.room_key(SECRET, "east")) == 32
    with pytest.raises(ValueError):
        ra.room_key(b"short", "east")


def test_the_room_index_is_where_the_frame_codec_puts_it() -> None:
    frame = rf.encode(rf.RelayFrame(rf.ROOM, 0x01020304, 5, 0, 0, b"{}"))
    assert frame[ra.ROOM_AT : ra.ROOM_AT + 4] == bytes([1, 2, 3, 4])


def test_a_sealed_frame_opens_once() -> None:
    opener = ra.Opener(0, NOW)
    data = sealed()
    assert len(data) == len(FRAME) + ra.TRAILER_BYTES
    assert data[: len(FRAME)] == FRAME  # the frame travels as it is
    assert opener.open(data, KEYS) == (3, FRAME)
    assert opener.open(data, KEYS) is None
    assert opener.counts == {"auth_replayed": 1}


def test_a_datagram_for_another_worker_does_not_open() -> None:
    data = ra.Sealer(3, NOW).seal(KEY, FRAME, 1)
    assert ra.Opener(0, NOW).open(data, KEYS) is None
    assert ra.Opener(1, NOW).open(data, KEYS) == (3, FRAME)


def test_counters_increase_and_restart_above_the_clock() -> None:
    sealer = ra.Sealer(1, NOW)
    opener = ra.Opener(0, NOW)
    first = [sealer.seal(KEY, FRAME, 0) for _ in range(3)]
    restarted = ra.Sealer(1, NOW + 1)  # the same worker, started again a second later
    for data in [*first, restarted.seal(KEY, FRAME, 0)]:
        assert opener.open(data, KEYS) == (1, FRAME)
    sealer.tick(NOW + 5)
    assert opener.open(sealer.seal(KEY, FRAME, 0), KEYS) is not None


REFUSED = [
    ("wrong key", ra.Sealer(3, NOW).seal(ra.RoomKey(ra.room_key(b"x" * 32, "east")), FRAME, 0),
     "auth_bad_tag"),
    ("another room's key", ra.Sealer(3, NOW).seal(WEST, FRAME, 0), "auth_bad_tag"),
    ("unknown room", ra.Sealer(3, NOW).seal(KEY, rf.rtp(8, 9, 1, PACKET), 0), "auth_unknown_room"),
    ("bare frame", rf.rtp(7, 9, 1, PACKET + bytes(40)), "auth_stale"),
    ("empty", b"", "auth_bad_length"),
    ("header only", FRAME[:14], "auth_bad_length"),
    ("too long", FRAME + bytes(rf.MAX_FRAME_BYTES), "auth_bad_length"),
    ("a minute stale", ra.Sealer(3, NOW - 61).seal(KEY, FRAME, 0), "auth_stale"),
    ("a minute ahead", ra.Sealer(3, NOW + 61).seal(KEY, FRAME, 0), "auth_stale"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "why"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_refused(data: bytes, why: str) -> None:
    opener = ra.Opener(0, NOW)
    assert opener.open(data, KEYS) is None
    assert opener.counts == {why: 1}


def test_clock_skew_within_a_minute_is_accepted() -> None:
    assert ra.Opener(0, NOW).open(ra.Sealer(3, NOW - 59).seal(KEY, FRAME, 0), KEYS) is not None
    assert ra.Opener(0, NOW).open(ra.Sealer(3, NOW + 59).seal(KEY, FRAME, 0), KEYS) is not None


# The window: (counters arriving in order, whether each is fresh).
W = ra.WINDOW
WINDOWS = [
    ("in order", [1, 2, 3], [True, True, True]),
    ("repeat", [5, 5], [True, False]),
    ("late within the window", [10, 8, 9, 8], [True, True, True, False]),
    ("oldest in the window", [W + 10, 11, 10], [True, True, False]),
    ("a jump forgets nothing it should", [1, 1 + W, 1, 2], [True, True, False, True]),
    ("a jump past the window", [1, 2 + W, 2, 3], [True, True, False, True]),
    ("far jump", [5, 10**6, 5, 10**6 - 1], [True, True, False, True]),
    ("late then newer", [3, 1, 2, 4, 1, 2], [True, True, True, True, False, False]),
    ("first is anything", [2**63], [True]),
]


@pytest.mark.parametrize(
    ("counters", "fresh"), [w[1:] for w in WINDOWS], ids=[w[0] for w in WINDOWS]
)
def test_replay_window(counters: list[int], fresh: list[bool]) -> None:
    window = ra.ReplayWindow()
    got = []
    for c in counters:
        ok = window.fresh(c)
        got.append(ok)
        if ok:
            window.accept(c)
    assert got == fresh


@given(st.lists(st.integers(0, 400), max_size=200))
def test_window_accepts_each_counter_at_most_once_and_every_new_highest(
    counters: list[int],
) -> None:
    window = ra.ReplayWindow()
    seen: set[int] = set()
    for c in counters:
        ok = window.fresh(c)
        highest = max(seen, default=-1)
        if c in seen or c <= highest - W:
            assert not ok
        else:
            assert ok, (c, highest)
        if ok:
            window.accept(c)
            seen.add(c)


@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_open(data: bytes) -> None:
    opener = ra.Opener(0, NOW)
    assert opener.open(data, KEYS) is None
    assert sum(opener.counts.values()) == 1


@given(st.binary(min_size=1, max_size=3000))
def test_arbitrary_bytes_with_a_known_room_never_open(tail: bytes) -> None:
    data = FRAME[:14] + tail  # the room of a key: the tag is what refuses it
    assert ra.Opener(0, NOW).open(data, KEYS) is None


MUTATIONS = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(1, 10_000), st.just(0)),
    st.tuples(st.just("add"), st.integers(0, 10_000), st.integers(0, 255)),
    st.tuples(st.just("drop"), st.integers(0, 10_000), st.just(0)),
)


@given(st.lists(MUTATIONS, min_size=1, max_size=4), st.binary(min_size=12, max_size=200))
def test_a_mutated_sealed_frame_never_opens(
    mutations: list[tuple[str, int, int]], body: bytes
) -> None:
    packet = bytes([0x80]) + body[1:]
    data = bytearray(ra.Sealer(3, NOW).seal(KEY, rf.rtp(7, 9, 1, packet), 0))
    original = bytes(data)
    for what, at, value in mutations:
        i = at % max(1, len(data))
        if what == "flip" and data:
            data[i] ^= value
        elif what == "cut" and data:
            del data[len(data) - 1 - i :]
        elif what == "add":
            data.insert(i, value)
        elif data:
            del data[i]
    opener = ra.Opener(0, NOW)
    if bytes(data) == original:  # the mutations undid each other: it is the sealed frame
        assert opener.open(bytes(data), KEYS) is not None
        return
    assert opener.open(bytes(data), KEYS) is None
    assert sum(opener.counts.values()) == 1
