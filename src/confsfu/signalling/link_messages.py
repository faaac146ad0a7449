"""Messages only an authority link carries (server/authority_link.py), never a page's WebSocket,
sans-IO: a relay member asks the room authority whether its participant may share a screen
and says when the share ended, and tells it the participant's connection quality (measured
where its media is); the authority answers the screen request. A page cannot send them: the
member parses a page's messages with the page's parser (messages.ClientMessage), which knows
no `member_*` type, and passes on only what it parsed."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter, ValidationError

from confsfu.bandwidth.quality import Quality
from confsfu.signalling.messages import Message

PREFIX = '{"type":"member_'  # how every link message's JSON starts (pydantic writes `type` first)
MAX_LINK_MESSAGE_BYTES = 1024


class MemberScreen(Message):
    """Member to authority: the participant starts (asks) or stopped sharing a screen."""

    type: Literal["member_screen"] = "member_screen"
    on: bool


class MemberScreenDecision(Message):
    """Authority to member: the answer to `MemberScreen(on=True)`; refused with the error a
    page on the authority's worker would have got."""

    type: Literal["member_screen_decision"] = "member_screen_decision"
    allowed: bool
    code: str | None = Field(default=None, max_length=64)
    message: str | None = Field(default=None, max_length=512)
    reason: str | None = Field(default=None, max_length=128)


class MemberQuality(Message):
    """Member to authority: the participant's connection quality changed (its receiver
    reports are read where its media is)."""

    type: Literal["member_quality"] = "member_quality"
    quality: Quality


LinkMessage = Annotated[
    MemberScreen | MemberScreenDecision | MemberQuality, Field(discriminator="type")
]
_LINK = TypeAdapter(LinkMessage)


def is_link_message(text: str) -> bool:
    return text.startswith(PREFIX)


def parse_link_message(text: str) -> MemberScreen | MemberScreenDecision | MemberQuality:
    """Raises ValueError for anything but a well-formed link message."""
    if len(text) > MAX_LINK_MESSAGE_BYTES or not is_link_message(text):
        raise ValueError("not a link message")
    try:
        return _LINK.validate_json(text)
    except ValidationError as exc:
        raise ValueError(str(exc)) from exc
