"""What a relay member needs of the authority's meeting to admit (or keep) a listener: whether
the meeting ended and whose tokens the chairs removed (docs/scale-out.md, "An audience across
workers"). The authority sends it (`{"gate": ...}` in a ROOM frame) when it changes and each
second; the member refuses a listener as the authority would, and closes its listeners once
the meeting ended. No IO, no clock.

The removed tokens travel as short hashes (`token_hash`), the most recent `MAX_BANS` of them:
a frame's size stays bounded whatever the chairs do (a room with more removals than that
checks only the latest on its members)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

MAX_BANS = 500  # the most recent removals relayed (17 bytes each in the frame)
ENDED_REASON = "the chair ended the meeting"  # what a listener's bye says, as on the home


class GateError(ValueError):
    """A malformed gate message."""


def token_hash(token_id: str) -> str:
    """A token's id as relayed: 16 hex digits (no token id on the wire)."""
    return hashlib.blake2b(token_id.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class MemberGate:
    ended: bool = False
    banned: frozenset[str] = frozenset()  # token hashes

    def refusal(self, token_id: str | None) -> tuple[str, str] | None:
        """(code, message) of the error a listener joining here gets, as on the home; None:
        admitted (the member's own checks still apply)."""
        if self.ended:
            return "meeting_ended", "the meeting has ended"
        if token_id is not None and token_hash(token_id) in self.banned:
            return "removed", "the chair removed you from this meeting"
        return None


def gate_of(ended: bool, banned: list[str]) -> MemberGate:
    """The authority's gate: `banned` the removed token ids, oldest first."""
    return MemberGate(ended, frozenset(token_hash(t) for t in banned[-MAX_BANS:]))


def gate_json(gate: MemberGate) -> dict[str, Any]:
    return {"ended": gate.ended, "banned": sorted(gate.banned)}


def gate_from_json(data: Any) -> MemberGate:
    """A gate as the authority sent it; GateError if it is not one (bounded)."""
    if not isinstance(data, dict) or not isinstance(data.get("ended"), bool):
        raise GateError("a gate is an object with a boolean `ended`")
    banned = data.get("banned")
    if not isinstance(banned, list) or len(banned) > MAX_BANS:
        raise GateError(f"a gate's `banned` is a list of at most {MAX_BANS}")
    if not all(isinstance(h, str) and len(h) == 16 for h in banned):
        raise GateError("a gate's `banned` holds token hashes")
    return MemberGate(data["ended"], frozenset(banned))
