// The meeting's own controls, floor banner, room flags and participant list, drawn from a
// snapshot of the meeting's state (ui.js's store): each function reads `s` and writes only `view`.

import { t } from "./i18n.js";
import { markSpeaking, mediaIcons } from "./stageui.js";
import { layoutGrid, setMarkers } from "./tiles.js";
import { formatDuration } from "./words.js";

/** The name of `pid`, or "" if nobody of that id is known. */
export function nameOf(s, pid) {
  if (pid && pid === s.self?.id) return s.self.name;
  return s.participants[pid]?.name ?? "";
}

export function renderControls(view, s) {
  const { media, client, stream, room, screen } = s;
  const { audio, video } = media;
  const self = s.self ?? {};
  const hasAudio = (stream?.getAudioTracks().length ?? 0) > 0;
  const hasVideo = (stream?.getVideoTracks().length ?? 0) > 0;

  if (self.chair_muted_audio) {
    view.mic.textContent = self.unmute_requested ? t("controls.askedUnmute") : t("controls.askUnmute");
    view.mic.disabled = Boolean(self.unmute_requested) || !hasAudio;
    view.mic.title = t("controls.chairMutedTitle");
    view.mic.setAttribute("aria-pressed", "true");
  } else {
    view.mic.textContent = audio ? t("controls.mute") : t("controls.unmute");
    view.mic.disabled = !hasAudio;
    view.mic.title = hasAudio ? "" : t("controls.noMicrophone");
    view.mic.setAttribute("aria-pressed", String(!audio));
  }
  view.mic.classList.toggle("chair-muted", Boolean(self.chair_muted_audio));

  if (self.chair_muted_video) {
    view.cam.textContent = self.unmute_requested ? t("controls.askedCamera") : t("controls.askCamera");
    view.cam.disabled = Boolean(self.unmute_requested) || !hasVideo;
    view.cam.title = t("controls.chairStoppedTitle");
    view.cam.setAttribute("aria-pressed", "true");
  } else {
    view.cam.textContent = video ? t("controls.stopCamera") : t("controls.startCamera");
    view.cam.disabled = !hasVideo;
    view.cam.title = hasVideo ? "" : t("controls.noCamera");
    view.cam.setAttribute("aria-pressed", String(!video));
  }
  view.cam.classList.toggle("chair-muted", Boolean(self.chair_muted_video));

  const raised = Boolean(client?.handRaised);
  const holding = Boolean(self.id && room?.floor_holder === self.id);
  view.hand.textContent = raised ? t("controls.lowerHand") : t("controls.raiseHand");
  view.hand.setAttribute("aria-pressed", String(raised));
  view.hand.disabled = !room || holding;
  view.hand.title = holding ? t("floor.yours") : raised ? t("controls.lowerHandTitle") : t("controls.raiseHandTitle");

  const canShare = Boolean(navigator.mediaDevices?.getDisplayMedia);
  const sharing = screen.active || screen.starting;
  view.screen.hidden = !canShare || !(sharing || client?.mayShareScreen);
  view.screen.textContent = screen.starting ? t("controls.shareStarting") : sharing ? t("controls.shareStop") : t("controls.share");
  view.screen.disabled = screen.starting;
  view.screen.setAttribute("aria-pressed", String(sharing));

  const me = { ...self, id: self.id, audio, video };
  setMarkers(view.selfTile.querySelector(".markers"), me, room);
  view.selfTile.classList.toggle("camera-off", !video);
}

/** Who has the floor and for how long; called on every room_state and every second. */
export function renderFloorBanner(view, s) {
  const room = s.room;
  const holder = room?.floor_holder ?? null;
  view.floorBanner.hidden = !holder;
  if (!holder) {
    delete view.floorBanner.dataset.holderId;
    return;
  }
  const mine = holder === s.self?.id;
  const who = mine ? t("floor.yours") : t("floor.theirs", { name: nameOf(s, holder) || t("floor.someone") });
  let left = "";
  if (room.floor_until_ms != null && s.client) {
    const ms = room.floor_until_ms - s.client.serverNow();
    left = t("floor.left", { time: formatDuration(ms) });
    view.floorBanner.dataset.remainingMs = String(ms);
  } else {
    delete view.floorBanner.dataset.remainingMs;
  }
  view.floorBanner.dataset.holderId = holder;
  view.floorBanner.classList.toggle("mine", mine);
  view.floorBanner.textContent = `${who}${left}`;
}

export function renderRoomFlags(view, s) {
  const flags = [];
  if (s.room?.locked) flags.push(t("room.locked"));
  const presenter = s.room?.presenter;
  if (presenter) flags.push(t("room.presenter", { name: presenter === s.self?.id ? t("names.you") : nameOf(s, presenter) }));
  view.roomFlags.textContent = flags.join(" · ");
  view.roomFlags.hidden = flags.length === 0;
}

export function renderParticipants(view, s) {
  const { self, join, media, participants, room } = s;
  view.participantList.hidden = self?.role === "chair"; // the chair panel lists everyone
  const items = [];
  if (self || join) {
    items.push({
      ...(self ?? {}),
      id: self?.id ?? "self",
      name: t("chat.you", { name: self?.name ?? join?.name ?? t("names.You") }),
      role: self?.role ?? "participant",
      audio: media.audio,
      video: media.video,
      self: true,
    });
  }
  const others = Object.values(participants).sort((a, b) => a.name.localeCompare(b.name));
  items.push(...others);
  view.participants.replaceChildren(...items.map((p) => {
    const li = document.createElement("li");
    li.dataset.id = p.id;
    li.classList.toggle("self", Boolean(p.self));
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = p.name;
    li.append(name);
    if (p.role === "chair") {
      const role = document.createElement("span");
      role.className = "role";
      role.textContent = t("role.chair");
      li.append(role);
    }
    const markers = document.createElement("span");
    markers.className = "media-state markers";
    setMarkers(markers, p, room);
    li.append(mediaIcons(p), markers);
    return li;
  }));
  markSpeaking();
  view.participantCount.textContent = t("count", { count: items.length });
  layoutGrid(s);
}
