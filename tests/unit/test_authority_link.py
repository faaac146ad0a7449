"""A relay member applies the authority's word on its own participants (server/authority_link.py):
a chair's mutes in a participant update gate its intake; anything else, or anyone not linked
here, changes nothing; no message the link brings raises."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.conference.moderation import Moderation
from confsfu.server.authority_link import _object, _type, apply_orders
from confsfu.server.live_room import LiveRoom


def member_room(*linked: str) -> tuple[LiveRoom, list[int]]:
    moderation = Moderation()
    for pid in ("kyiv", "lima", "osaka"):
        moderation.join(0, pid)
    gates: list[int] = []
    live = SimpleNamespace(
        meeting=SimpleNamespace(moderation=moderation),
        linked=set(linked),
        media=SimpleNamespace(refresh_gates=lambda: gates.append(1)),
    )
    return cast(LiveRoom, live), gates


def muted(live: LiveRoom, pid: str) -> tuple[bool, bool]:
    state = live.meeting.moderation.state(pid)
    return state.chair_muted_audio, state.chair_muted_video


@pytest.mark.parametrize(
    ("update", "expected"),
    [
        ({"id": "kyiv", "chair_muted_audio": True}, (True, False)),
        ({"id": "kyiv", "chair_muted_audio": True, "chair_muted_video": True}, (True, True)),
        ({"id": "kyiv", "chair_muted_audio": 1}, (False, False)),  # not a boolean: no word
        ({"id": "kyiv"}, (False, False)),
        ({"id": "lima", "chair_muted_audio": True}, (False, False)),  # not linked here
        ({"id": "nobody", "chair_muted_audio": True}, (False, False)),
        ({"id": ["kyiv"], "chair_muted_audio": True}, (False, False)),
    ],
)
def test_a_chair_s_mute_is_applied_to_a_linked_participant_only(
    update: dict[str, Any], expected: tuple[bool, bool]
) -> None:
    live, _gates = member_room("kyiv")
    apply_orders(live, update)
    assert muted(live, "kyiv") == expected
    assert muted(live, "lima") == (False, False)


def test_an_unmute_lifts_the_gate() -> None:
    live, gates = member_room("kyiv")
    apply_orders(live, {"id": "kyiv", "chair_muted_audio": True, "chair_muted_video": True})
    apply_orders(live, {"id": "kyiv", "chair_muted_audio": False, "chair_muted_video": True})
    assert muted(live, "kyiv") == (False, True)
    assert not live.meeting.moderation.may_forward("kyiv", "video")
    assert gates, "the intake's gates are refreshed"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@given(
    st.dictionaries(
        st.sampled_from(["id", "chair_muted_audio", "chair_muted_video", "x"]),
        json_values | st.sampled_from(["kyiv", "lima"]),
    )
)
def test_no_update_raises(update: dict[str, Any]) -> None:
    live, _gates = member_room("kyiv")
    apply_orders(live, update)
    assert muted(live, "lima") == (False, False)


@given(st.text(max_size=200) | st.sampled_from(['{"type":"bye"}', "[]", '{"type":1}', "{" * 5000]))
def test_a_link_message_s_type_never_raises(text: str) -> None:
    kind = _type(text)
    assert kind is None or isinstance(kind, str)
    assert isinstance(_object(text), dict)
