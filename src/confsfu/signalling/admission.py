"""Who a join message makes its sender: the room, name and role it admits them with, and the
identity they come back as (a token's id, or a guest's resume key), or why it is refused.

Listeners (the audience) come in three ways: a token whose role is `listener`; any token with
`watch` (someone invited who only wants to watch); or, in a room whose setting `watch_link` is
on, anyone with the room's watch link (`room` and `watch`, a name optional), open room or not."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from confsfu.conference.permissions import Role
from confsfu.signalling.connection import SignallingError
from confsfu.signalling.messages import Join


class Claims(Protocol):
    """What a verified join token says (confsfu.tokens.TokenClaims)."""

    @property
    def room(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def token_id(self) -> str: ...


LISTENER_NAME = "listener"  # a listener by link who gave no name (only the server's logs say it)


@dataclass(frozen=True, slots=True)
class Admission:
    room: str
    name: str
    role: Role
    token_id: str | None  # who comes back as whom: the token's id, or a guest's key
    resume_key: str | None  # a guest's key to come back with (None: a new one is made)
    invited: bool  # by a token (a guest without a key is someone new)


def admit(
    message: Join,
    *,
    verify: Callable[[str], Claims],
    room_is_open: Callable[[str], bool | None],
    watch_link: Callable[[str], bool] = lambda _room: False,
) -> Admission:
    """The admission `message` asks for. `verify` checks a token (raising ValueError, e.g.
    confsfu.tokens.TokenError, with the reason);
    `room_is_open` says whether a room exists and admits guests (None: there is no such room);
    `watch_link` whether an existing room admits listeners by its link.
    Raises a fatal SignallingError saying what is wrong."""
    if message.token is not None:
        try:
            claims = verify(message.token)
        except ValueError as exc:
            raise fatal("bad_token", str(exc)) from exc
        if message.room is not None and message.room != claims.room:
            raise fatal(
                "wrong_room",
                f"the token is for room {claims.room!r}, not {message.room!r}",
                field="room",
            )
        if room_is_open(claims.room) is None:
            raise fatal("no_such_room", f"there is no room {claims.room!r}")
        role = Role.LISTENER if message.watch else Role(claims.role)
        return Admission(claims.room, claims.name, role, claims.token_id, None, True)
    if message.watch and message.room is not None:
        if room_is_open(message.room) is None:
            raise fatal("no_such_room", f"there is no room {message.room!r}", field="room")
        if not watch_link(message.room):
            raise fatal(
                "no_watch_link",
                f"room {message.room!r} admits listeners only with an invitation token",
                field="watch",
            )
        name = message.name or LISTENER_NAME
        return Admission(message.room, name, Role.LISTENER, None, None, False)
    if message.room is None or message.name is None:
        raise SignallingError(
            "bad_message",
            "join needs a token, or a room and a name",
            field="token",
            in_reply_to="join",
        )
    if not room_is_open(message.room):
        raise fatal(
            "no_such_room",
            f"room {message.room!r} does not exist or needs an invitation token",
            field="room",
        )
    key = message.resume
    token_id = f"guest:{key}" if key else None
    return Admission(message.room, message.name, Role.PARTICIPANT, token_id, key, False)


def fatal(code: str, message: str, *, field: str | None = None) -> SignallingError:
    return SignallingError(code, message, field=field, in_reply_to="join", fatal=True)
