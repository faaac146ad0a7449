// This participant as the server sees it: who joined, and the moderation state the server keeps
// for it (a chair's mutes, the raised hand, an unmute asked for, the connection's quality). No DOM;
// protocol.js keeps the object and acts on what changed (a chair's mute turns the track off).

/** The moderation fields a participant_updated about this participant may change. */
export const MODERATION_FIELDS = Object.freeze([
  "chair_muted_audio", "chair_muted_video", "hand_raised", "unmute_requested", "quality",
]);

/** This participant from a `joined` message (the microphone and camera are added by the client). */
export function selfFrom(joined) {
  const you = joined.you ?? {};
  return {
    id: joined.participant_id,
    participant_id: joined.participant_id,
    room: joined.room,
    name: joined.name,
    role: joined.role,
    chair_muted_audio: Boolean(you.chair_muted_audio),
    chair_muted_video: Boolean(you.chair_muted_video),
    hand_raised: Boolean(you.hand_raised),
    unmute_requested: Boolean(you.unmute_requested),
    quality: "unknown",
    resumed: Boolean(joined.resumed),
  };
}

/**
 * Takes the server's view `info` (a ParticipantInfo of this participant) into `self`, in place.
 * Returns what the client must act on: the kinds a chair has just muted (their tracks go off),
 * and whether a chair's mute of either kind changed at all (the others are told again).
 */
export function applySelfInfo(self, info) {
  const was = { audio: self.chair_muted_audio, video: self.chair_muted_video };
  for (const key of MODERATION_FIELDS) {
    if (key in info) self[key] = info[key];
  }
  return {
    newlyMuted: {
      audio: Boolean(self.chair_muted_audio && !was.audio),
      video: Boolean(self.chair_muted_video && !was.video),
    },
    mutesChanged: was.audio !== self.chair_muted_audio || was.video !== self.chair_muted_video,
  };
}

/** Whether the server would take a screen share from `self` now: chairs, the presenter, the floor holder. */
export function mayShareScreen(self, room) {
  const id = self?.id;
  if (!id) return false;
  return self.role === "chair" || room?.presenter === id || room?.floor_holder === id;
}

/** Whether `self` may post in the chat now (chairs always; others while it is on). */
export function mayChat(self, room) {
  return self?.role === "chair" || room?.chat_enabled !== false;
}

/** Whether `self`'s hand is in the room's queue. */
export function handRaised(self, room) {
  return Boolean(self && (room?.hands ?? []).includes(self.id));
}
