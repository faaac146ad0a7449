"""The room directory's rules (confsfu.scale.directory): where a join goes, a claim's outcome,
each second's renewals and releases, a lapsed confirmation."""

from __future__ import annotations

import pytest

from confsfu.scale.directory import Claim, Directory, Local, Remote, Wait, valid_address

LEASE_MS = 4_000


def directory() -> Directory:
    return Directory("node-b", ["east", "west"], LEASE_MS)


@pytest.mark.parametrize(
    ("authority", "address", "hop", "held", "expected"),
    [
        (None, None, False, False, Claim()),  # unclaimed: claim it
        (None, None, True, False, Claim()),  # even for a piped join: no live authority
        ("node-a", "10.0.0.1:8080", False, False, Remote("node-a", "10.0.0.1:8080")),
        ("node-a", "10.0.0.1:8080", True, False, Wait("")),  # never piped on
        ("node-a", None, False, False, Claim()),  # its lease lapsed: the room is free
        ("node-a", "no port", False, False, Wait("")),
        ("node-b", None, False, True, Local(fresh=False)),
        ("node-b", None, False, False, Claim()),  # ours from a former life: taken up again
        ("node-b", None, True, True, Local(fresh=False)),  # a piped join, and we hold it
    ],
)
def test_a_join_is_routed_by_the_claim_and_the_lease(
    authority: str | None, address: str | None, hop: bool, held: bool, expected: object
) -> None:
    d = directory()
    if held:
        d.claimed("east", True, 0)
    got = d.route("east", authority, address, hop=hop)
    if isinstance(expected, Wait):
        assert isinstance(got, Wait) and got.reason
    else:
        assert got == expected


def test_an_unconfigured_room_is_never_claimed() -> None:
    d = directory()
    assert isinstance(d.route("south", None, None, hop=False), Wait)
    assert d.claimed("south", True, 0) == Claim()
    assert d.held() == []


def test_a_claim_won_is_fresh_once_and_a_claim_lost_reads_again() -> None:
    d = directory()
    assert d.claimed("east", False, 0) == Claim()
    assert not d.holds("east")
    assert d.claimed("east", True, 10) == Local(fresh=True)
    assert d.claimed("east", True, 20) == Local(fresh=False)
    assert d.route("east", "node-b", None, hop=False) == Local(fresh=False)


def test_renewals_keep_rooms_in_use_and_release_the_others() -> None:
    d = directory()
    d.claimed("east", True, 0)
    d.claimed("west", True, 0)
    assert d.renewals(["east", "south"]) == (["east"], ["west"])
    d.released("west")
    assert d.held() == ["east"]
    assert d.renewed("east", True, 1_000)
    assert d.unconfirmed(1_000 + LEASE_MS - 1) == []
    assert d.renewed("west", False, 1_000)  # not held: nothing to lose


def test_a_claim_taken_by_another_node_is_lost() -> None:
    d = directory()
    d.claimed("east", True, 0)
    assert not d.renewed("east", False, 1_000)
    assert d.held() == []
    assert d.route("east", "node-a", "10.0.0.1:8080", hop=False) == Remote(
        "node-a", "10.0.0.1:8080"
    )


def test_claims_unconfirmed_for_a_lease_are_dropped_and_all_released_at_a_stop() -> None:
    d = directory()
    d.claimed("east", True, 0)
    d.claimed("west", True, 3_000)
    assert d.unconfirmed(LEASE_MS) == ["east"]
    assert d.held() == ["west"]
    assert d.release_all() == ["west"]
    assert d.held() == []


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("10.1.2.3:8080", True),
        ("node-a.example.org:443", True),
        ("[fd00::1]:8080", True),
        ("10.1.2.3", False),
        ("10.1.2.3:0", False),
        ("10.1.2.3:70000", False),
        ("a b:80", False),
        ("x" * 400 + ":80", False),
        ("host:80/ws", False),
    ],
)
def test_an_advertised_address_is_host_and_port(text: str, ok: bool) -> None:
    assert valid_address(text) is ok


def test_a_node_id_is_checked() -> None:
    with pytest.raises(ValueError):
        Directory("a b", ["east"], LEASE_MS)


@pytest.mark.parametrize(
    ("given", "refused"),
    [
        ({}, None),  # not a node
        ({"node_id": "a", "node_address": "10.0.0.1:8080"}, "redis_url"),
        ({"node_id": "a", "redis_url": "redis://127.0.0.1:6379/0"}, "node_address"),
        (
            {"node_id": "a", "redis_url": "redis://r:6379/0", "node_address": "10.0.0.1"},
            "node_address",
        ),
        ({"node_id": "a", "redis_url": "redis://r:6379/0", "node_address": "10.0.0.1:80"}, None),
    ],
)
def test_a_node_needs_redis_and_an_address(given: dict[str, str], refused: str | None) -> None:
    from confsfu.server.run import _node_refusal
    from confsfu.settings import Settings

    reason = _node_refusal(Settings(**given))  # type: ignore[arg-type]
    assert (reason is None) if refused is None else (reason is not None and refused in reason)
