"""Where a page's message is decided when its room spans workers (docs/scale-out.md, "Who decides
for a room"), sans-IO: the meeting's messages go to the room authority (the home worker's
meeting decides them, for everyone); media negotiation and what one page sees stay with the
worker holding the participant's PeerConnections; the connection's own messages stay too."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Route(StrEnum):
    CONNECTION = "connection"  # the connection itself: join, ping, leave (leave also told on)
    MEDIA = "media"  # the participant's PeerConnections and its own slots: the local worker
    MEETING = "meeting"  # the meeting's decisions: the room authority


ROUTES: Final[dict[str, Route]] = {
    "join": Route.CONNECTION,
    "ping": Route.CONNECTION,
    "leave": Route.CONNECTION,
    "publish_offer": Route.MEDIA,
    "unpublish": Route.MEDIA,
    "subscribe_answer": Route.MEDIA,
    "view_page": Route.MEDIA,  # this page's grid page
    "stage_size": Route.MEDIA,  # this page's stage tile
    "pin": Route.MEDIA,  # this page's own pin
    "slots_shown": Route.MEDIA,  # this page's slot map confirmation
    "media_state": Route.MEETING,  # the participant's own switches, shown to everyone
    "raise_hand": Route.MEETING,
    "lower_hand": Route.MEETING,
    "request_unmute": Route.MEETING,
    "chair": Route.MEETING,  # floor, mutes, kicks, lock, end, chat moderation
    "chat_send": Route.MEETING,
    "get_report": Route.MEETING,  # the report is the authority's meeting's
}


def route(message_type: str) -> Route:
    """A message type's route; a type not in the table is the connection's (it refuses it)."""
    return ROUTES.get(message_type, Route.CONNECTION)


def decided_by_authority(message_type: str) -> bool:
    return route(message_type) is Route.MEETING
