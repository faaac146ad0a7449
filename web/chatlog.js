// The room's chat as this page keeps it: the server's messages checked, oldest first, at most
// CHAT_KEEP. No DOM; protocol.js keeps the log, chat.js shows it.

export const CHAT_MAX_CHARS = 1000; // the server's limit on a message's text, after cleaning
export const CHAT_KEEP = 500; // messages this page keeps (the server's history holds 200)

/**
 * @typedef {object} ChatEntry
 * @property {number} id
 * @property {string} sender
 * @property {string} name
 * @property {string} role  "chair" or "participant"
 * @property {number} sent_ms
 * @property {string} text  plain text, never markup
 */

/** A chat message from the server with the fields the page relies on, or null. */
export function chatEntry(m) {
  if (!m || !Number.isSafeInteger(m.id)) return null;
  return {
    id: m.id,
    sender: String(m.sender ?? ""),
    name: String(m.name ?? ""),
    role: m.role === "chair" ? "chair" : "participant",
    sent_ms: Number(m.sent_ms) || 0,
    text: String(m.text ?? ""),
  };
}

/** The log from a `chat_history` message's list (the last CHAT_KEEP of its valid entries). */
export function chatHistory(messages) {
  return (Array.isArray(messages) ? messages : []).map(chatEntry).filter(Boolean).slice(-CHAT_KEEP);
}

/**
 * The log after a `chat` message: {log, message} (a new array; the oldest dropped beyond
 * CHAT_KEEP), or null for a message that is not valid or already in the log.
 * @param {ChatEntry[]} log
 * @returns {{log: ChatEntry[], message: ChatEntry} | null}
 */
export function chatPosted(log, raw) {
  const message = chatEntry(raw);
  if (!message || log.some((m) => m.id === message.id)) return null;
  return { log: [...log, message].slice(-CHAT_KEEP), message };
}

/** The log without message `id`. */
export function chatRemoved(log, id) {
  return log.filter((m) => m.id !== id);
}

/**
 * The log after one of the server's chat messages (chat_history, chat, chat_removed): {log,
 * change} with the change as the client's `chat` event tells it, or null when nothing changed.
 */
export function chatAfter(log, msg) {
  switch (msg.type) {
    case "chat_history":
      return { log: chatHistory(msg.messages), change: { kind: "history" } };
    case "chat": {
      const posted = chatPosted(log, msg.message);
      return posted && { log: posted.log, change: { kind: "posted", message: { ...posted.message } } };
    }
    case "chat_removed": {
      const id = Number(msg.message_id);
      return { log: chatRemoved(log, id), change: { kind: "removed", message_id: id } };
    }
    default:
      return null;
  }
}
