"""A relay member's gate for its listeners (scale/member_gate.py, server/relay_decisions.py):
a listener joining on a member is refused as on the home once the meeting ended or the chair
removed its token; the member hears it from the authority; the message stays bounded."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.conference import moderation
from confsfu.scale import relay_frame as rf
from confsfu.scale.member_gate import (
    ENDED_REASON,
    MAX_BANS,
    GateError,
    MemberGate,
    gate_from_json,
    gate_json,
    gate_of,
)
from confsfu.signalling.notices import CloseAll, notices_for

from .relay_workers import Worker, deliver


@pytest.mark.parametrize(
    ("ended", "banned", "token", "refused"),
    [
        (False, [], None, None),
        (False, [], "t1", None),
        (False, ["t1"], "t1", "removed"),
        (False, ["t1"], "t2", None),
        (False, ["t1"], None, None),
        (True, [], None, "meeting_ended"),
        (True, ["t1"], "t1", "meeting_ended"),
    ],
)
def test_a_member_refuses_a_listener_as_the_home_would(
    ended: bool, banned: list[str], token: str | None, refused: str | None
) -> None:
    gate = gate_from_json(json.loads(json.dumps(gate_json(gate_of(ended, banned)))))
    answer = gate.refusal(token)
    assert (answer and answer[0]) == refused


def test_only_the_latest_removals_are_relayed_and_the_frame_stays_bounded() -> None:
    tokens = [f"invite:{'x' * 200}{i}" for i in range(MAX_BANS + 300)]
    gate = gate_of(False, tokens)
    assert gate.refusal(tokens[-1]) is not None and gate.refusal(tokens[0]) is None
    payload = json.dumps({"gate": gate_json(gate)}, separators=(",", ":")).encode()
    assert len(payload) <= rf.MAX_ROOM_BYTES


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"ended": 1, "banned": []},
        {"ended": False},
        {"ended": False, "banned": "x"},
        {"ended": False, "banned": [1]},
        {"ended": False, "banned": ["short"]},
        {"ended": False, "banned": ["0" * 16] * (MAX_BANS + 1)},
    ],
)
def test_a_malformed_gate_is_refused(data: object) -> None:
    with pytest.raises(GateError):
        gate_from_json(data)


@given(st.recursive(st.none() | st.booleans() | st.text(max_size=20), st.lists, max_leaves=30))
def test_any_json_raises_only_a_gate_error(data: object) -> None:
    with contextlib.suppress(GateError):
        gate_from_json({"ended": False, "banned": data})


def test_the_authority_tells_its_members_of_an_end_and_a_removal() -> None:
    home, member = Worker(-1), Worker(0)
    workers = {0: home, 1: member}
    home.meeting.join(0, "c", "Chair", "chair", "tc")
    home.meeting.join(0, "p", "Kyiv", "participant", "tp")
    home.decisions.tick(0, frozenset({1}), set())
    deliver(0, home, workers, 0)
    assert member.live.authority_gate == MemberGate()

    home.meeting.chair(100, "c", "remove", target="p")
    home.decisions.tick(100, frozenset({1}), set())
    deliver(0, home, workers, 100)
    assert member.live.authority_gate.refusal("tp") == (
        "removed",
        "the chair removed you from this meeting",
    )
    assert member.live.authority_gate.refusal("tc") is None

    home.decisions.tick(200, frozenset({1}), set())  # unchanged: not sent again before 1 s
    assert home.frames(b'{"gate"') == []
    home.decisions.tick(1100, frozenset({1}), set())
    assert len(home.frames(b'{"gate"')) == 1

    home.meeting.chair(1200, "c", "end")
    home.decisions.tick(1200, frozenset({1}), set())
    deliver(0, home, workers, 1200)
    assert member.live.authority_gate.ended


def test_a_gate_from_a_stranger_or_malformed_is_dropped() -> None:
    member = Worker(0)
    member.decisions.on_room(5, b'{"gate":{"ended":true,"banned":[]}}', 0)
    member.decisions.on_room(0, b'{"gate":{"ended":"yes","banned":[]}}', 0)
    member.decisions.on_room(0, b'{"gate":[]}', 0)
    assert member.live.authority_gate == MemberGate()


def test_an_end_is_sent_at_once_not_at_the_next_tick() -> None:
    """The home forgets an ended room as soon as its pages are gone (its relay with it): the
    members hear of the end when the pages are closed, not a tick later."""
    home, member = Worker(-1), Worker(0)
    home.meeting.join(0, "c", "Chair", "chair", "tc")
    home.decisions.tick(0, frozenset({1}), set())
    home.out.clear()
    home.meeting.chair(100, "c", "end")
    home.live.ended_to_members()
    deliver(0, home, {1: member}, 100)
    assert member.live.authority_gate.ended


def test_the_end_s_bye_says_what_the_home_s_says() -> None:
    home_closes = notices_for(moderation.MeetingEnded(0), {})
    assert home_closes == [CloseAll(ENDED_REASON)]
