"""admit(): what a join message admits its sender as, or why it is refused, as table rows."""

from __future__ import annotations

import pytest

from confsfu.conference.permissions import Role
from confsfu.signalling.admission import Admission, admit
from confsfu.signalling.connection import SignallingError
from confsfu.signalling.messages import Join
from confsfu.tokens import TokenClaims, TokenError

ROOMS = {"demo": True, "council": False, "hall": False}  # name -> open to guests
WATCH_LINK = {"hall", "demo"}  # rooms whose watch link admits listeners


def verify(token: str) -> TokenClaims:
    if token == "forged":
        raise TokenError("the token's signature is not valid")
    room, name, role = token.split(":")
    return TokenClaims(room, name, Role(role), 10**10, f"id-{name}")


def join(**fields: str | bool) -> Join:
    return Join(**fields)  # type: ignore[arg-type]


ADMITTED = [
    ("a chair's token", join(token="council:Seoul:chair"),
     Admission("council", "Seoul", Role.CHAIR, "id-Seoul", None, True)),
    ("a token naming its own room", join(token="council:Lima:participant", room="council"),
     Admission("council", "Lima", Role.PARTICIPANT, "id-Lima", None, True)),
    ("a guest in an open room", join(room="demo", name="Milan"),
     Admission("demo", "Milan", Role.PARTICIPANT, None, None, False)),
    ("a guest coming back with its key", join(room="demo", name="Milan", resume="key-0001"),
     Admission("demo", "Milan", Role.PARTICIPANT, "guest:key-0001", "key-0001", False)),
    ("a listener's token", join(token="council:Accra:listener"),
     Admission("council", "Accra", Role.LISTENER, "id-Accra", None, True)),
    ("a participant's token asking only to watch", join(token="council:Lima:participant",
     watch=True), Admission("council", "Lima", Role.LISTENER, "id-Lima", None, True)),
    ("a chair's token asking only to watch", join(token="council:Seoul:chair", watch=True),
     Admission("council", "Seoul", Role.LISTENER, "id-Seoul", None, True)),
    ("the watch link of an invitation-only room", join(room="hall", watch=True),
     Admission("hall", "listener", Role.LISTENER, None, None, False)),
    ("the watch link with a name", join(room="demo", name="Ana", watch=True),
     Admission("demo", "Ana", Role.LISTENER, None, None, False)),
    ("the watch link ignores a resume key", join(room="demo", watch=True, resume="key-0001"),
     Admission("demo", "listener", Role.LISTENER, None, None, False)),
]  # fmt: skip

REFUSED = [
    ("a forged token", join(token="forged"), "bad_token", True),
    ("a token for another room", join(token="council:Seoul:chair", room="demo"), "wrong_room",
     True),
    ("a token for a room that is gone", join(token="old:Seoul:chair"), "no_such_room", True),
    ("a guest in an invitation-only room", join(room="council", name="X"), "no_such_room", True),
    ("a guest in no room", join(room="nowhere", name="X"), "no_such_room", True),
    ("no token and no name", join(room="demo"), "bad_message", False),
    ("a watch link where the room has none", join(room="council", watch=True), "no_watch_link",
     True),
    ("a watch link to no room", join(room="nowhere", watch=True), "no_such_room", True),
    ("watching with neither token nor room", join(watch=True), "bad_message", False),
    ("a listener's token for another room", join(token="council:Accra:listener", room="hall"),
     "wrong_room", True),
]  # fmt: skip


@pytest.mark.parametrize(("message", "expected"), [r[1:] for r in ADMITTED],
                         ids=[r[0] for r in ADMITTED])  # fmt: skip
def test_admitted(message: Join, expected: Admission) -> None:
    got = admit(message, verify=verify, room_is_open=ROOMS.get, watch_link=WATCH_LINK.__contains__)
    assert got == expected


@pytest.mark.parametrize(("message", "code", "fatal"), [r[1:] for r in REFUSED],
                         ids=[r[0] for r in REFUSED])  # fmt: skip
def test_refused(message: Join, code: str, fatal: bool) -> None:
    with pytest.raises(SignallingError) as refused:
        admit(message, verify=verify, room_is_open=ROOMS.get, watch_link=WATCH_LINK.__contains__)
    assert (refused.value.code, refused.value.fatal) == (code, fatal)
