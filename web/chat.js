// The chat panel: messages as text (links built with DOM APIs, never innerHTML), an unread count
// on its button, a box to write in, and the chair's switch and Remove buttons.

import { CHAT_MAX_CHARS } from "./chatlog.js";
import { onLanguageChange, t } from "./i18n.js";
import { describeServerError, formatClock, splitLinks } from "./words.js";

const $ = (id) => document.getElementById(id);

const view = {
  toggle: $("chat-toggle"),
  unread: $("chat-unread"),
  panel: $("chat-panel"),
  close: $("chat-close"),
  chairBar: $("chat-chair"),
  enabled: $("chat-enabled"),
  state: $("chat-state"),
  list: $("chat-messages"),
  empty: $("chat-empty"),
  live: $("chat-live"),
  form: $("chat-form"),
  input: $("chat-input"),
  send: $("chat-send"),
  error: $("chat-error"),
};

/** ui.js's store (store.js): the meeting's state. */
let store = null;
/** The meeting's state now, or null before initChat. */
const meeting = () => store?.get() ?? null;

/** The chat as this page shows it; reset for each meeting. */
const chat = {
  messages: [],
  open: false,
  lastReadId: 0, // the newest message shown while the panel was open
  pending: "", // the text last sent, to put back if the server refuses it
};

function client() {
  return meeting()?.client ?? null;
}

function isChair() {
  return meeting()?.self?.role === "chair";
}

// ---- rendering -------------------------------------------------------------------------------

/** Brings the panel, its button and its box up to date (chat state, role, connection). */
export function renderChat() {
  if (!store) return;
  const chair = isChair();
  const enabled = meeting().room?.chat_enabled !== false;
  const connected = Boolean(meeting().self);
  view.chairBar.hidden = !chair;
  view.enabled.textContent = enabled ? t("chat.turnOff") : t("chat.turnOn");
  view.enabled.setAttribute("aria-pressed", String(!enabled));
  let state = "";
  if (!enabled) {
    state = chair
      ? t("chat.offChair")
      : t("chat.offParticipant");
  }
  view.state.textContent = state;
  view.state.hidden = !state;
  const mayWrite = connected && (chair || enabled);
  view.input.disabled = !mayWrite;
  view.send.disabled = !mayWrite;
  view.input.placeholder = mayWrite ? t("chat.placeholder") : t("chat.placeholderOff");
  for (const b of view.list.querySelectorAll(".chat-remove")) b.hidden = !chair;
  renderUnread();
}

function renderUnread() {
  const me = meeting()?.self?.id;
  const unread = chat.open ? 0 : chat.messages.filter(
    (m) => m.id > chat.lastReadId && m.sender !== me,
  ).length;
  view.unread.textContent = unread > 99 ? "99+" : String(unread);
  view.unread.hidden = unread === 0;
  view.toggle.dataset.unread = String(unread);
  view.toggle.setAttribute("aria-label", unread ? t("chat.unread", { count: unread }) : t("chat.title"));
  view.toggle.setAttribute("aria-expanded", String(chat.open));
}

/** One message: name, local time, the text as text nodes and safe links, and Remove (chairs). */
function messageItem(m) {
  const li = document.createElement("li");
  li.className = "chat-message";
  li.dataset.messageId = String(m.id);
  li.classList.toggle("mine", m.sender === meeting().self?.id);
  const meta = document.createElement("div");
  meta.className = "chat-meta";
  const name = document.createElement("span");
  name.className = "chat-name";
  name.textContent = m.sender === meeting().self?.id ? t("chat.you", { name: m.name }) : m.name;
  meta.append(name);
  if (m.role === "chair") {
    const badge = document.createElement("span");
    badge.className = "badge chair";
    badge.textContent = t("role.chair");
    meta.append(badge);
  }
  const time = document.createElement("time");
  time.className = "chat-time";
  if (m.sent_ms > 0) {
    time.dateTime = new Date(m.sent_ms).toISOString();
    time.textContent = formatClock(m.sent_ms);
  }
  meta.append(time);
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "chat-remove";
  remove.textContent = t("chat.remove");
  remove.setAttribute("aria-label", t("chat.removeLabel", { name: m.name }));
  remove.hidden = !isChair();
  meta.append(remove);
  const text = document.createElement("p");
  text.className = "chat-text";
  text.dir = "auto";
  for (const part of splitLinks(m.text)) {
    if (part.href) {
      const a = document.createElement("a");
      a.href = part.href;
      a.textContent = part.text;
      a.title = part.href;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      text.append(a);
    } else {
      text.append(document.createTextNode(part.text));
    }
  }
  li.append(meta, text);
  return li;
}

function atBottom() {
  const l = view.list;
  return l.scrollHeight - l.scrollTop - l.clientHeight < 24;
}

function scrollToEnd() {
  view.list.scrollTop = view.list.scrollHeight;
}

/** The client's `chat` event: the whole list, and what changed. */
export function onChat({ messages, change }) {
  const follow = atBottom();
  chat.messages = messages;
  if (change.kind === "posted") {
    const m = change.message;
    view.list.append(messageItem(m));
    if (m.sender === meeting().self?.id) {
      chat.pending = "";
      scrollToEnd();
    } else {
      if (follow) scrollToEnd();
      announce(`${m.name}: ${m.text}`); // the live region is outside the panel: heard when shut too
    }
    trimList();
  } else if (change.kind === "removed") {
    view.list.querySelector(`[data-message-id="${Number(change.message_id)}"]`)?.remove();
  } else {
    view.list.replaceChildren(...messages.map(messageItem));
    scrollToEnd();
  }
  if (chat.open) markRead();
  view.empty.hidden = chat.messages.length > 0;
  renderChat();
}

function trimList() {
  const keep = new Set(chat.messages.map((m) => String(m.id)));
  for (const li of [...view.list.children]) {
    if (!keep.has(li.dataset.messageId)) li.remove();
  }
}

/** Says a new message aloud to screen readers (the list itself is not a live region; the panel may be shut). */
function announce(text) {
  const p = document.createElement("p");
  p.textContent = text;
  view.live.replaceChildren(p);
}

function markRead() {
  chat.lastReadId = chat.messages.reduce((max, m) => Math.max(max, m.id), chat.lastReadId);
}

function showError(text) {
  view.error.textContent = text;
  view.error.hidden = !text;
}

/** A refused chat_send: said in the panel (not as a toast); the text goes back in the box. */
export function onChatRefused(error, namesById) {
  showError(describeServerError(error, namesById));
  if (chat.pending && !view.input.value) view.input.value = chat.pending;
  chat.pending = "";
  if (!chat.open) setOpen(true);
}

function setOpen(open) {
  chat.open = open;
  view.panel.hidden = !open;
  if (open) {
    markRead();
    scrollToEnd();
  }
  renderUnread();
}

/** Whether the chat panel is open (drawers.js closes it when another drawer opens on a phone). */
export function isChatOpen() {
  return chat.open;
}

export function closeChat() {
  setOpen(false);
}

/** Forgets the previous meeting's chat (a new meeting, or rejoining after leaving). */
export function resetChat() {
  chat.messages = [];
  chat.lastReadId = 0;
  chat.pending = "";
  view.list.replaceChildren();
  view.live.replaceChildren();
  view.empty.hidden = false;
  showError("");
  renderChat();
}

// ---- actions -----------------------------------------------------------------------------------

function send() {
  const c = client();
  const text = view.input.value.trim();
  if (!c || !text) return;
  if (text.length > CHAT_MAX_CHARS) {
    showError(t("chat.tooLong", { max: CHAT_MAX_CHARS, count: text.length }));
    return;
  }
  if (!c.sendChat(text)) {
    showError(t("chat.notConnected"));
    return;
  }
  chat.pending = text;
  showError("");
  view.input.value = "";
  view.input.focus();
}

/** Connects the panel to ui.js's `meetingStore`; call once. */
export function initChat(meetingStore) {
  store = meetingStore;
  view.input.maxLength = CHAT_MAX_CHARS;
  view.toggle.addEventListener("click", () => {
    setOpen(!chat.open);
    if (chat.open && !view.input.disabled) view.input.focus();
  });
  view.close.addEventListener("click", () => {
    setOpen(false);
    view.toggle.focus();
  });
  view.panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      setOpen(false);
      view.toggle.focus();
    }
  });
  view.form.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  view.input.addEventListener("keydown", (event) => {
    // Enter sends; Shift+Enter starts a new line; an input method composing keeps its Enter.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  view.input.addEventListener("input", () => showError(""));
  view.enabled.addEventListener("click", () => {
    client()?.chair(meeting().room?.chat_enabled === false ? "chat_on" : "chat_off");
  });
  view.list.addEventListener("click", (event) => {
    const b = event.target.closest("button.chat-remove");
    if (!b || !isChair()) return;
    const id = Number(b.closest("[data-message-id]")?.dataset.messageId);
    if (Number.isSafeInteger(id)) client()?.chair("remove_chat", { message_id: id });
  });
  onLanguageChange(() => {
    const top = view.list.scrollTop;
    view.list.replaceChildren(...chat.messages.map(messageItem)); // "(you)", Remove, times
    view.list.scrollTop = top;
    renderChat();
  });
  resetChat();
}
