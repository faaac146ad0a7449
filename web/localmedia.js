// This participant's microphone and camera: the local stream, whether each is switched on, and
// what the others are told (nothing there is, or a chair's mute, counts as off). No DOM.

/** @typedef {"audio" | "video"} Kind */

export class LocalMedia {
  constructor() {
    /** @type {MediaStream|null} what the camera's publish connection sends (null: receive only) */
    this.stream = null;
    this._on = { audio: true, video: true };
  }

  /**
   * Switches `kind` on or off (its tracks enabled or not). Returns false, changing nothing, when
   * switching on what a chair has muted (`self`: this participant as the server sees it).
   * @param {Kind} kind
   */
  set(kind, on, self = null) {
    if (on && self?.[`chair_muted_${kind}`]) return false;
    this._on[kind] = Boolean(on);
    for (const track of this._tracks(kind)) track.enabled = this._on[kind];
    return true;
  }

  /** What the others are told: each kind on while there is a track, it is on, no chair muted it. */
  state(self = null) {
    return {
      audio: this._tracks("audio").length > 0 && this._on.audio && !self?.chair_muted_audio,
      video: this._tracks("video").length > 0 && this._on.video && !self?.chair_muted_video,
    };
  }

  _tracks(kind) {
    return (kind === "audio" ? this.stream?.getAudioTracks() : this.stream?.getVideoTracks()) ?? [];
  }
}
