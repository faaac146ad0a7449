"""The messages only an authority link carries (signalling/link_messages.py): written and read
back, anything else refused with ValueError, never another exception."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.server.authority_link import AuthorityLink
from confsfu.signalling.connection import SignallingError, parse_client_message
from confsfu.signalling.link_messages import (
    MemberQuality,
    MemberScreen,
    MemberScreenDecision,
    is_link_message,
    parse_link_message,
)

MESSAGES = [
    MemberScreen(on=True),
    MemberScreen(on=False),
    MemberScreenDecision(allowed=True),
    MemberScreenDecision(allowed=False, code="forbidden", message="no", reason=None),
    MemberQuality(quality="poor"),
]


@pytest.mark.parametrize("message", MESSAGES)
def test_written_and_read_back(message: object) -> None:
    text = message.model_dump_json()  # type: ignore[attr-defined]
    assert is_link_message(text)
    assert parse_link_message(text) == message


@pytest.mark.parametrize(
    "text",
    [
        '{"type":"member_screen"}',  # no `on`
        '{"type":"member_screen","on":true,"x":1}',  # an unknown field
        '{"type":"member_quality","quality":"great"}',
        '{"type":"member_nothing"}',
        '{"type": "member_screen", "on": true}',  # not as the member writes it
        '{"type":"raise_hand"}',
        '{"type":"member_screen_decision","allowed":false,"code":"' + "x" * 2000 + '"}',
        "[]",
    ],
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_link_message(text)


@pytest.mark.parametrize("message", MESSAGES)
def test_a_page_cannot_send_one(message: object) -> None:
    """The member passes on only what the page's parser read: no link message is one."""
    with pytest.raises(SignallingError):
        parse_client_message(message.model_dump_json())  # type: ignore[attr-defined]


@given(st.text(max_size=300))
def test_any_text_raises_only_value_error(tail: str) -> None:
    for text in (tail, '{"type":"member_' + tail):
        with contextlib.suppress(ValueError):
            parse_link_message(text)


async def test_a_quality_that_flaps_goes_to_the_authority_as_its_latest_word() -> None:
    """The first change at once; those within the next second as the one word they end on
    (none if they end where the authority was told)."""
    link = AuthorityLink("/nowhere")
    told: list[str] = []

    async def send(text: str) -> None:
        told.append(parse_link_message(text).quality)  # type: ignore[union-attr]

    link.send = send  # type: ignore[method-assign]
    link.tell_quality("poor")
    while not told:
        await asyncio.sleep(0.01)
    for word in ("good", "fair", "poor"):  # back to what the authority knows: nothing sent
        link.tell_quality(word)  # type: ignore[arg-type]
    link.tell_quality("fair")
    link.tell_quality("good")
    while len(told) < 2:
        await asyncio.sleep(0.01)
    await link.close()
    assert told == ["poor", "good"]
