"""notices_for(): each meeting event as what the room tells whom, as table rows."""

from __future__ import annotations

import pytest

from confsfu.conference import floor, moderation
from confsfu.conference.meeting import ParticipantRemoved
from confsfu.conference.presence import ParticipantAway, ParticipantTimedOut
from confsfu.conference.speakers import DominantSpeakerChanged
from confsfu.signalling.messages import Notice
from confsfu.signalling.notices import (
    CloseAll,
    Gone,
    Remove,
    Tell,
    TellChairs,
    TellEveryone,
    notices_for,
)

NAMES = {"p1": "Seoul"}

ROWS = [
    (moderation.ChairMuted("p1", "audio"),
     [Tell("p1", Notice(code="chair_muted", text="The chair muted your microphone.",
                             params={"kind": "audio"}))]),
    (moderation.ChairMuted("p1", "video"),
     [Tell("p1", Notice(code="chair_muted", text="The chair stopped your camera.",
                             params={"kind": "video"}))]),
    (moderation.ChairUnmuted("p1", "video"),
     [Tell("p1", Notice(code="chair_unmuted", text="The chair allowed your camera again.",
                             params={"kind": "video"}))]),
    (moderation.UnmuteRequested("p1", "audio"),
     [TellChairs(Notice(code="unmute_requested",
                        text="Seoul asks to turn their microphone back on.",
                        params={"kind": "audio", "participant_id": "p1", "name": "Seoul"}))]),
    (floor.FloorGranted("p1", None), [Tell("p1", Notice(code="floor_granted",
                                                         text="You have the floor."))]),
    (floor.FloorExpired("p1"), [Tell("p1", Notice(code="floor_ended",
                                                  text="Your turn to speak ended."))]),
    (moderation.MeetingEndingSoon(0, 5 * 60_000),
     [TellEveryone(Notice(code="ending_soon",
                          text="The meeting is scheduled to end in 5 minutes.",
                          params={"minutes": 5}))]),
    (moderation.MeetingEnded(0), [CloseAll("the chair ended the meeting")]),
    (ParticipantRemoved("p1"), [Remove("p1")]),
    (ParticipantTimedOut("p1"), [Gone("p1", "connection lost")]),
    (ParticipantAway("p1"), []),
    (DominantSpeakerChanged("p1"), []),
]  # fmt: skip


@pytest.mark.parametrize(("event", "expected"), ROWS, ids=[type(r[0]).__name__ for r in ROWS])
def test_each_event_tells_whom_it_concerns(event: object, expected: list[object]) -> None:
    assert notices_for(event, NAMES) == expected  # type: ignore[arg-type]


def test_a_participant_without_a_name_is_named_by_id() -> None:
    [out] = notices_for(moderation.UnmuteRequested("p9", "video"), {})
    assert isinstance(out, TellChairs) and out.notice.text.startswith("p9 asks")
