"""The rules of a room's media across nodes (confsfu.scale.node_spans): relay indices, what is
read back from Redis (bounded, junk left out), the merge of the nodes' spans, the member key."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.scale import node_spans as ns


def test_relay_indices_are_unique_per_node_and_bounded() -> None:
    assert ns.relay_index(1, 0) == 64 and ns.relay_index(2, 3) == 131
    assert ns.relay_index(1, 63) < ns.relay_index(2, 0)
    for ordinal, worker in ((0, 0), (1, 64), (1, -1), (ns.MAX_ORDINAL + 1, 0)):
        with pytest.raises(ValueError):
            ns.relay_index(ordinal, worker)


@pytest.mark.parametrize(
    ("local", "others", "authority", "expected"),
    [
        ([64, 65], {"b": [128]}, "a", [64, 65, 128]),  # the authority here: its home first
        ([128], {"b": [64, 65]}, "b", [64, 65, 128]),  # another's: its span first
        ([64], {"c": [192], "b": [128]}, "c", [192, 64, 128]),
        ([64], {"b": [128, 64]}, None, [64, 128]),  # no claim read: this node first, deduped
        ([64], {}, "b", [64]),  # the authority published nothing (yet)
    ],
)
def test_merge_puts_the_authority_s_home_first(
    local: list[int], others: dict[str, list[int]], authority: str | None, expected: list[int]
) -> None:
    assert ns.merge(local, others, authority, "a") == expected


def test_peers_and_spans_read_back_bounded() -> None:
    good = json.dumps({"64": "10.0.0.1:4000", "65": "[::1]:4001"}).encode()
    assert ns.parse_peers(good, 1) == {64: "10.0.0.1:4000", 65: "[::1]:4001"}
    assert ns.parse_peers(good, 2) == {}  # not that node's indices
    junk = json.dumps({"x": "a:1", "66": "no port", "67": 5, "68": "h:99999"}).encode()
    assert ns.parse_peers(junk) == {}
    assert ns.parse_peers(b"[" * 5000) == {} and ns.parse_peers(None) == {}
    assert ns.parse_span(b'[64, 64, 3, "x", 65, true]') == [64, 65]
    assert len(ns.parse_span(json.dumps(list(range(64, 400))).encode())) == ns.MAX_SPAN
    assert ns.parse_span(b"x" * (ns.MAX_JSON_BYTES + 1)) == []


@given(st.binary(max_size=200))
def test_arbitrary_replies_never_raise(reply: bytes) -> None:
    assert isinstance(ns.parse_peers(reply), dict)
    assert isinstance(ns.parse_span(reply), list)


def test_member_key_is_the_deployment_s() -> None:
    secret = b"s" * 32
    key = ns.member_key(secret)
    assert ns.member_key_ok(secret, key)
    assert not ns.member_key_ok(secret, "") and not ns.member_key_ok(b"t" * 32, key)
    assert key != ns.member_key(b"t" * 32)
