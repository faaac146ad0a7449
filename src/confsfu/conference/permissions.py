"""Roles and permissions: one table saying which role may take which action."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Role(StrEnum):
    CHAIR = "chair"
    PARTICIPANT = "participant"
    LISTENER = "listener"  # the audience: receives the stage and the room's audio, does nothing


class Action(StrEnum):
    # chair actions
    MUTE_AUDIO = "mute_audio"
    STOP_VIDEO = "stop_video"
    UNMUTE = "unmute"  # lift a chair's mute
    MUTE_ALL = "mute_all"
    GRANT_FLOOR = "grant_floor"
    REVOKE_FLOOR = "revoke_floor"
    MAKE_PRESENTER = "make_presenter"
    REMOVE_PARTICIPANT = "remove_participant"
    LOCK_ROOM = "lock_room"
    UNLOCK_ROOM = "unlock_room"
    EXTEND_MEETING = "extend_meeting"
    END_MEETING = "end_meeting"
    DOWNLOAD_REPORT = "download_report"
    MODERATE_CHAT = "moderate_chat"  # turn chat off/on for participants, remove a message
    # everyone's actions
    RAISE_HAND = "raise_hand"
    LOWER_HAND = "lower_hand"
    REQUEST_UNMUTE = "request_unmute"
    SHARE_SCREEN = "share_screen"  # conditional for participants, see CONDITIONS
    SET_OWN_MEDIA = "set_own_media"
    SEND_CHAT = "send_chat"  # participants only while the chair has chat on (chat.py decides)
    PUBLISH = "publish"  # send a camera and microphone (or a screen: SHARE_SCREEN too)


CHAIR_ACTIONS: frozenset[Action] = frozenset(
    {
        Action.MUTE_AUDIO,
        Action.STOP_VIDEO,
        Action.UNMUTE,
        Action.MUTE_ALL,
        Action.GRANT_FLOOR,
        Action.REVOKE_FLOOR,
        Action.MAKE_PRESENTER,
        Action.REMOVE_PARTICIPANT,
        Action.LOCK_ROOM,
        Action.UNLOCK_ROOM,
        Action.EXTEND_MEETING,
        Action.END_MEETING,
        Action.DOWNLOAD_REPORT,
        Action.MODERATE_CHAT,
    }
)
EVERYONE_ACTIONS: frozenset[Action] = frozenset(
    {
        Action.RAISE_HAND,
        Action.LOWER_HAND,
        Action.REQUEST_UNMUTE,
        Action.SHARE_SCREEN,
        Action.SET_OWN_MEDIA,
        Action.SEND_CHAT,
        Action.PUBLISH,
    }
)

PERMISSIONS: Mapping[Role, frozenset[Action]] = MappingProxyType(
    {
        Role.CHAIR: CHAIR_ACTIONS | EVERYONE_ACTIONS,
        Role.PARTICIPANT: EVERYONE_ACTIONS,
        Role.LISTENER: frozenset(),  # watches and listens: every request is refused
    }
)


@dataclass(frozen=True, slots=True)
class Standing:
    """What a participant currently holds in the room, for conditional permissions."""

    presenter: bool = False
    floor_holder: bool = False


@dataclass(frozen=True, slots=True)
class Condition:
    """An extra requirement on an action the role table allows, and how to explain a refusal."""

    test: Callable[[Standing], bool]
    requirement: str


def _presenter_or_holder(standing: Standing) -> bool:
    return standing.presenter or standing.floor_holder


# Second table: (role, action) pairs that PERMISSIONS allows only under a condition.
CONDITIONS: Mapping[tuple[Role, Action], Condition] = MappingProxyType(
    {
        (Role.PARTICIPANT, Action.SHARE_SCREEN): Condition(
            _presenter_or_holder, "the presenter or the floor holder"
        ),
    }
)


class PermissionDenied(Exception):
    """The role may not take the action (or not in its current standing)."""

    def __init__(self, action: Action, role: Role, requirement: str | None = None) -> None:
        self.action = action
        self.role = role
        self.requirement = requirement
        if requirement is None:
            message = f"a {role} may not {action.replace('_', ' ')}"
        else:
            message = f"a {role} may {action.replace('_', ' ')} only as {requirement}"
        super().__init__(message)


def allowed(role: Role, action: Action, standing: Standing | None = None) -> bool:
    """True if `role` in `standing` may take `action`."""
    if action not in PERMISSIONS[role]:
        return False
    condition = CONDITIONS.get((role, action))
    return condition is None or condition.test(standing or Standing())


def check(role: Role, action: Action, standing: Standing | None = None) -> None:
    """Raise PermissionDenied unless `role` in `standing` may take `action`."""
    if action not in PERMISSIONS[role]:
        raise PermissionDenied(action, role)
    condition = CONDITIONS.get((role, action))
    if condition is not None and not condition.test(standing or Standing()):
        raise PermissionDenied(action, role, condition.requirement)
