// The server's messages checked before the client believes them: a frame that is a message, and
// the fields of `error`, `audience` and `report` with the types the page relies on. No DOM.

/**
 * A WebSocket frame's text as a message: {msg} (an object with a string `type`), else {problem}
 * saying what is wrong with it (for the console; the frame is ignored).
 * @returns {{msg: object, problem?: undefined} | {problem: string, msg?: undefined}}
 */
export function parseFrame(data) {
  let msg;
  try {
    msg = JSON.parse(data);
  } catch {
    return { problem: "a frame that is not JSON" };
  }
  if (msg === null || typeof msg !== "object" || typeof msg.type !== "string") {
    return { problem: "a frame without a type" };
  }
  return { msg };
}

/** An `error` message as the client's `error` event tells it. */
export function errorFrom(msg) {
  return {
    code: msg.code ?? "unknown",
    message: msg.message ?? "",
    field: msg.field ?? null,
    in_reply_to: msg.in_reply_to ?? null,
    fatal: Boolean(msg.fatal),
    reason: typeof msg.reason === "string" ? msg.reason : null,
  };
}

/** An `audience` message: how many listen, and how many may (counts, never negative). */
export function audienceFrom(msg) {
  return {
    listeners: Math.max(0, Number(msg.listeners) || 0),
    max_listeners: Math.max(0, Number(msg.max_listeners) || 0),
  };
}

/** A `report` message: {format, filename, content}, all strings. */
export function reportFrom(msg) {
  return {
    format: String(msg.format ?? ""),
    filename: String(msg.filename ?? "report"),
    content: String(msg.content ?? ""),
  };
}

/** Whether a participant_joined/updated names a participant (an object with a string id). */
export function isParticipant(p) {
  return Boolean(p) && typeof p.id === "string";
}
