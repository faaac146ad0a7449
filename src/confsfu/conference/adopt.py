"""A relay member's follower meeting becomes the room's meeting (its authority's node died;
scale/takeover.py says when): the meeting restored from the authority's last snapshot, merged
with what this worker knows better, put in place of the follower's state in the same Meeting
object (the room's media plane and sessions hold it). No IO, no clock.

Merged: every participant connected here is in the meeting and not away, with its own media
switches and the chair's mutes as this worker last applied them (the authority's word, newer
than a snapshot up to a second old); one that joined after the snapshot joins now. The
snapshot's others (the dead node's participants) are away for the reconnect grace and come back
`resumed`. Floor, hands, chat, lock, bans, schedule and report come from the snapshot; this
worker's audience stays (its listeners are connected here), and so does its speaker detector
(it heard every microphone of the room: who is heard and the dominant speaker carry on without
a pause), its speaking times counted from the snapshot's."""

from __future__ import annotations

from dataclasses import dataclass

from confsfu.conference.meeting import MEDIA_KINDS, Meeting, MeetingError
from confsfu.conference.permissions import Role
from confsfu.conference.speakers import SpeakerDetector


@dataclass(frozen=True, slots=True)
class Here:
    """A participant connected to this worker, as its follower meeting has it."""

    pid: str
    name: str
    role: str
    token_id: str
    audio: bool
    video: bool
    chair_muted: frozenset[str]


def connected_here(follower: Meeting, pids: set[str]) -> list[Here]:
    """The follower meeting's record of the participants connected here (`pids`)."""
    mod = follower.moderation
    moderated = set(mod.participants)
    out = []
    for pid, p in follower.room.participants.items():
        if pid not in pids:
            continue
        state = mod.state(pid) if pid in moderated else None
        muted = frozenset(k for k in MEDIA_KINDS if state is not None and state.chair_muted(k))
        token = follower._tokens.get(pid, f"pid:{pid}")
        out.append(Here(pid, p.name, p.role, token, p.audio, p.video, muted))
    return out


def adopt(follower: Meeting, restored: Meeting | None, here: list[Here], now_ms: int) -> list[str]:
    """Make `follower` the meeting: `restored` (from the snapshot; None: there was none, the
    follower's own state is kept) merged with `here`. Returns the pids connected here that the
    meeting refuses (removed, or a full or locked room before they joined it): their pages go."""
    if restored is None:
        restored = follower
    else:
        restored.audience = follower.audience  # listeners connected here
        restored.audience.peak = max(restored.audience.peak, restored.report.audience_peak)
        restored.speakers = _speakers(follower, restored)
    refused = []
    for h in here:
        if h.pid in restored.room.participants:
            restored.presence.back(h.pid)
            restored.room.set_media(h.pid, h.audio, h.video)
            restored.moderation.set_own(h.pid, h.audio, h.video)
        else:
            try:
                role = Role.CHAIR if h.role == "chair" else Role.PARTICIPANT
                restored.join(now_ms, h.pid, h.name, role, h.token_id)
            except MeetingError:
                refused.append(h.pid)
                continue
        state = restored.moderation.state(h.pid)
        for kind in MEDIA_KINDS:
            if kind in h.chair_muted and not state.chair_muted(kind):
                restored.moderation.chair_mute(now_ms, h.pid, kind)
            elif kind not in h.chair_muted and state.chair_muted(kind):
                restored.moderation.chair_unmute(now_ms, h.pid, kind)
    if restored is not follower:
        vars(follower).clear()
        vars(follower).update(vars(restored))
    return refused


def _speakers(follower: Meeting, restored: Meeting) -> SpeakerDetector:
    """The follower's detector (the levels of the last seconds), with the snapshot's speaking
    times: what it counted itself before now is in those already (up to the snapshot's age)."""
    speakers = follower.speakers
    for talker in speakers._talkers.values():
        talker.speaking_ms = 0
    speakers._spoken_before_ms = dict(restored.speakers._spoken_before_ms)
    return speakers
