"""The room's listeners across workers (server/relay_decisions.py): what the authority tells its
listeners (room states, the audience's notices) reaches the members' listeners, a room state
once per change though it is said again each second; a member's own meeting tells its
listeners nothing; a stranger's or a malformed message is dropped."""

from __future__ import annotations

from confsfu.scale import relay_frame as rf
from confsfu.server.relay_decisions import for_listeners
from confsfu.signalling.messages import Notice, RoomState

from .relay_workers import Worker, state


def test_the_authority_s_room_state_and_notices_reach_the_member_s_listeners() -> None:
    home, member = Worker(-1), Worker(0)
    assert home.live.to_members is not None and member.live.audience_from_authority
    assert member.live.to_members is None

    # Unchanged since the span began: its state as it is now.
    home.decisions.tick(0, frozenset({1}), set())
    for payload in home.listener_frames():
        member.decisions.on_room(0, payload, 0)
    assert [s for _, s in member.live.told] == [True]

    home.live.to_members(state("kyiv"))
    home.live.to_members(Notice(code="ending_soon", text="soon").model_dump_json())
    home.decisions.tick(100, frozenset({1}), set())
    for payload in home.listener_frames():
        member.decisions.on_room(0, payload, 100)
    told = member.live.told[1:]
    assert [json_type(t) for t, _ in told] == ["notice", "room_state"]
    assert RoomState.model_validate_json(told[1][0]).floor_holder == "kyiv"

    # Said again a second later (a datagram may be lost): the listeners are not told twice.
    home.decisions.tick(1100, frozenset({1}), set())
    frames = home.listener_frames()
    assert len(frames) == 1
    member.decisions.on_room(0, frames[0], 1100)
    assert len(member.live.told) == 3

    # The span ended: the member's own meeting speaks to its listeners again.
    member.decisions.close()
    assert not member.live.audience_from_authority
    home.decisions.close()
    assert home.live.to_members is None


def test_a_stranger_s_or_a_malformed_listeners_message_is_dropped() -> None:
    member = Worker(0)
    member.decisions.on_room(5, b'{"listeners":1,"state":' + state("x").encode() + b"}", 0)
    member.decisions.on_room(0, b'{"listeners":"1","state":' + state("x").encode() + b"}", 0)
    member.decisions.on_room(0, b'{"listeners":1,"state":{"type":"room_state"}}', 0)
    member.decisions.on_room(0, b'{"listeners":2}', 0)
    member.decisions.on_room(0, b'{"notice":{"type":"notice","code":1}}', 0)
    assert member.live.told == []


def json_type(text: str) -> str:
    return str(RoomState.model_validate_json(text).type) if "room_state" in text else "notice"


def test_a_room_state_too_large_for_a_frame_reaches_the_listeners_without_its_hands() -> None:
    """About 1,100 hands make a room state over 16 KB: the members' listeners get it without
    the hands (no listener's page shows them), the stage as it is; a small one is untouched."""
    home, member = Worker(-1), Worker(0)
    hands = [f"{i:012x}" for i in range(1100)]
    big = state("kyiv", hands)
    assert len(big) > rf.MAX_ROOM_BYTES
    assert for_listeners(state("kyiv", hands[:5])) == state("kyiv", hands[:5])
    home.live.to_members(big)
    home.decisions.tick(0, frozenset({1}), set())
    frames = home.listener_frames()
    assert len(frames) == 1
    member.decisions.on_room(0, frames[0], 0)
    told = RoomState.model_validate_json(member.live.told[-1][0])
    assert (told.floor_holder, told.stage, told.hands) == ("kyiv", "kyiv", [])
