"""The permissions table, every action x role, and the conditional screen-share permission."""

from __future__ import annotations

import pytest

from confsfu.conference.permissions import (
    CHAIR_ACTIONS,
    EVERYONE_ACTIONS,
    PERMISSIONS,
    Action,
    PermissionDenied,
    Role,
    Standing,
    allowed,
    check,
)

A = Action
CHAIR_ONLY = [
    A.MUTE_AUDIO,
    A.STOP_VIDEO,
    A.UNMUTE,
    A.MUTE_ALL,
    A.GRANT_FLOOR,
    A.REVOKE_FLOOR,
    A.MAKE_PRESENTER,
    A.REMOVE_PARTICIPANT,
    A.LOCK_ROOM,
    A.UNLOCK_ROOM,
    A.EXTEND_MEETING,
    A.END_MEETING,
    A.DOWNLOAD_REPORT,
    A.MODERATE_CHAT,
]
UNCONDITIONAL_FOR_ALL = [
    A.RAISE_HAND,
    A.LOWER_HAND,
    A.REQUEST_UNMUTE,
    A.SET_OWN_MEDIA,
    A.SEND_CHAT,
    A.PUBLISH,
]

# (role, action, allowed with no standing); written out so a table change shows in review
ROWS = (
    [(Role.CHAIR, a, True) for a in CHAIR_ONLY]
    + [(Role.PARTICIPANT, a, False) for a in CHAIR_ONLY]
    + [(Role.CHAIR, a, True) for a in UNCONDITIONAL_FOR_ALL]
    + [(Role.PARTICIPANT, a, True) for a in UNCONDITIONAL_FOR_ALL]
    + [(Role.CHAIR, A.SHARE_SCREEN, True), (Role.PARTICIPANT, A.SHARE_SCREEN, False)]
    # the audience watches and listens: nothing is theirs to do
    + [(Role.LISTENER, a, False) for a in Action]
)


def test_rows_cover_every_role_and_action() -> None:
    assert {(r, a) for r, a, _ in ROWS} == {(r, a) for r in Role for a in Action}
    assert len(ROWS) == len(Role) * len(Action)


def test_table_is_the_union_of_its_parts() -> None:
    assert PERMISSIONS[Role.CHAIR] == frozenset(Action)
    assert PERMISSIONS[Role.PARTICIPANT] == EVERYONE_ACTIONS
    assert CHAIR_ACTIONS.isdisjoint(EVERYONE_ACTIONS)
    assert set(CHAIR_ONLY) == CHAIR_ACTIONS


@pytest.mark.parametrize(("role", "action", "expected"), ROWS)
def test_check(role: Role, action: Action, expected: bool) -> None:
    assert allowed(role, action) is expected
    if expected:
        check(role, action)
    else:
        with pytest.raises(PermissionDenied) as info:
            check(role, action)
        assert info.value.action is action
        assert info.value.role is role
        assert str(role) in str(info.value)
        assert action.replace("_", " ") in str(info.value)


@pytest.mark.parametrize(
    ("role", "standing", "expected"),
    [
        (Role.PARTICIPANT, Standing(), False),
        (Role.PARTICIPANT, Standing(presenter=True), True),
        (Role.PARTICIPANT, Standing(floor_holder=True), True),
        (Role.PARTICIPANT, Standing(presenter=True, floor_holder=True), True),
        (Role.CHAIR, Standing(), True),
        (Role.CHAIR, Standing(presenter=True), True),
        (Role.LISTENER, Standing(), False),
        (Role.LISTENER, Standing(presenter=True, floor_holder=True), False),
    ],
)
def test_share_screen_is_conditional(role: Role, standing: Standing, expected: bool) -> None:
    assert allowed(role, A.SHARE_SCREEN, standing) is expected
    if expected:
        check(role, A.SHARE_SCREEN, standing)
    else:
        with pytest.raises(PermissionDenied, match=r"may (not|share screen only as the presenter)"):
            check(role, A.SHARE_SCREEN, standing)


def test_standing_does_not_widen_the_table() -> None:
    holder = Standing(presenter=True, floor_holder=True)
    for action in CHAIR_ONLY:
        assert not allowed(Role.PARTICIPANT, action, holder)


def test_messages() -> None:
    with pytest.raises(PermissionDenied, match=r"^a participant may not mute all$"):
        check(Role.PARTICIPANT, A.MUTE_ALL)
    denied = PermissionDenied(A.SHARE_SCREEN, Role.PARTICIPANT, "the presenter")
    assert str(denied) == "a participant may share screen only as the presenter"
    assert denied.requirement == "the presenter"
    with pytest.raises(PermissionDenied, match=r"^a listener may not publish$"):
        check(Role.LISTENER, A.PUBLISH)
