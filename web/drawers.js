// Drawers on small screens: the participant list and the chair panel open from the bottom control
// bar over the meeting (on a wide screen the sidebar shows them and their buttons are hidden), and
// only one drawer (these two, chat, devices) is open at a time. Escape or Close shuts a drawer and
// gives the focus back to its button.

import { closeChat, isChatOpen } from "./chat.js";
import { setDevicePanel } from "./deviceui.js";
import { onLanguageChange, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);

/** The width up to which style.css lays the page out for a phone (keep the two equal). */
export const NARROW = window.matchMedia("(max-width: 800px)");

/** Drawers this module opens and closes itself (the `open` class). */
const own = {
  participants: {
    toggle: $("participants-toggle"),
    panel: $("participant-list"),
    close: $("participants-close"),
    text: "bar.people",
    label: "bar.peopleLabel",
    closeLabel: "bar.closePeople",
  },
  chair: {
    toggle: $("chair-toggle"),
    panel: $("chair-panel"),
    close: $("chair-close"),
    text: "bar.chair",
    label: "bar.chairLabel",
    closeLabel: "bar.closeChair",
  },
};

/** Every drawer: its button, whether it is open, and how to close it (chat and devices: theirs). */
const drawers = [];

function isOpenOwn(d) {
  return d.panel.classList.contains("open");
}

function setOwn(d, open) {
  d.panel.classList.toggle("open", open);
  d.toggle.setAttribute("aria-expanded", String(open));
  if (open) {
    d.panel.scrollTop = 0;
    d.close.focus(); // not the first button: in the chair panel that is "Mute all"
  }
}

/** Closes every drawer but `keep` (a toggle button); only on a narrow screen, where they overlap. */
function closeOthers(keep) {
  if (!NARROW.matches) return;
  for (const d of drawers) if (d.toggle !== keep && d.isOpen()) d.close();
}

/**
 * Registers a drawer another module opens and closes (chat, devices): `isOpen()` and `close()`.
 * Call once per drawer.
 */
export function addDrawer(toggle, isOpen, close) {
  drawers.push({ toggle, isOpen, close });
  // Capture: the others close before the drawer's own handler opens it and moves the focus.
  toggle.addEventListener("click", () => {
    if (!isOpen()) closeOthers(toggle);
  }, { capture: true });
}

/** Shows the chair's button or the participants' one (the chair panel lists everyone). */
export function setDrawerRole(isChair) {
  own.chair.toggle.hidden = !isChair;
  own.participants.toggle.hidden = isChair;
  if (isChair && isOpenOwn(own.participants)) setOwn(own.participants, false);
  if (!isChair && isOpenOwn(own.chair)) setOwn(own.chair, false);
}

/** Closes the participant list and the chair panel (a new meeting starts with them shut). */
export function closeOwnDrawers() {
  for (const d of Object.values(own)) setOwn(d, false);
}

/** The drawers' buttons in the page's language (the keys are in `own`). */
function wordButtons() {
  for (const d of Object.values(own)) {
    d.toggle.textContent = t(d.text);
    d.toggle.setAttribute("aria-label", t(d.label));
    d.close.textContent = t("bar.close");
    d.close.setAttribute("aria-label", t(d.closeLabel));
  }
}
wordButtons();
onLanguageChange(wordButtons);

for (const d of Object.values(own)) {
  addDrawer(d.toggle, () => isOpenOwn(d), () => setOwn(d, false));
  d.toggle.addEventListener("click", () => setOwn(d, !isOpenOwn(d)));
  d.close.addEventListener("click", () => {
    setOwn(d, false);
    d.toggle.focus();
  });
  d.panel.addEventListener("keydown", (event) => {
    // A row's menu takes its own Escape first (it stops the event).
    if (event.key !== "Escape" || !NARROW.matches || !isOpenOwn(d)) return;
    setOwn(d, false);
    d.toggle.focus();
  });
}

// Growing the window past the phone layout leaves the sidebar showing everything.
NARROW.addEventListener("change", () => {
  if (!NARROW.matches) closeOwnDrawers();
});

// Chat and devices open and close themselves; on a phone they are drawers like the others.
addDrawer($("chat-toggle"), isChatOpen, closeChat);
addDrawer($("devices-toggle"), () => !$("devices-panel").hidden, () => setDevicePanel(false));
