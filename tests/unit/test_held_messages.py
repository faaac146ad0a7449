"""A page held for a takeover (its room's authority went without a bye) keeps asking the
meeting: its meeting messages are queued on its authority link (bounded: count and bytes;
beyond, the page gets a `busy` error) and handled, in order, by the meeting promoted on its
worker (server/session.py, server/authority_link.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, cast

import pytest

from confsfu.scale.takeover import HELD_MESSAGES
from confsfu.server.authority_link import AuthorityLink, _adopted
from confsfu.server.session import Session
from confsfu.signalling.connection import (
    ConnectionPhase,
    Phase,
    SignallingError,
    parse_client_message,
)


def held_session(link: AuthorityLink) -> Session:
    """A member's session past its join, linked: only what routing a message uses."""
    session = Session.__new__(Session)
    session.link = link
    return session


def message(text: str) -> Any:
    return parse_client_message(json.dumps({"type": "chat_send", "text": text}))


async def test_a_held_page_s_meeting_messages_are_queued_then_refused() -> None:
    link = AuthorityLink("/nonexistent.sock")
    link.ended = True
    session = held_session(link)
    for i in range(HELD_MESSAGES):
        await session._handle(message(f"m{i}"))
    assert len(link.held) == HELD_MESSAGES
    with pytest.raises(SignallingError) as refused:
        await session._handle(message("one too many"))
    assert refused.value.code == "busy" and link.held.refused == 1
    await link.close()


async def test_a_message_the_dead_authority_could_not_take_is_queued() -> None:
    link = AuthorityLink("/nonexistent.sock")  # never opened: the send fails
    session = held_session(link)
    await session._handle(message("just as it died"))
    assert [json.loads(t)["text"] for t in link.held.take()] == ["just as it died"]
    await link.close()


async def test_the_promoted_meeting_handles_the_held_messages_in_order() -> None:
    link = AuthorityLink("/nonexistent.sock")
    link.ended = True
    for i in range(3):
        assert link.held.offer(json.dumps({"type": "chat_send", "text": f"m{i}"}))
    handled: list[str] = []
    phase = ConnectionPhase()

    async def dispatch(text: str) -> None:
        handled.append(json.loads(text)["text"])
        if len(handled) == 2:
            phase.move(Phase.CLOSED)  # (the page went meanwhile: the rest is dropped)

    log = SimpleNamespace(info=lambda *a: None)
    session = SimpleNamespace(link=link, log=log, phase=phase, dispatch=dispatch)
    await _adopted(cast(Session, session), link)
    assert session.link is None and handled == ["m0", "m1"] and len(link.held) == 0
