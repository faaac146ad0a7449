// Telling the participant things: short-lived toasts and a yes/no confirmation dialog. The toasts
// sit at the top of the meeting's main column (style.css), newest first, over no control: what
// does not fit there drops its oldest toasts.

import { t } from "./i18n.js";

const TOAST_MS = { info: 6000, notice: 8000, error: 10000 };
const MAX_TOASTS = 5;

const toasts = document.getElementById("toasts");
const dialog = document.getElementById("confirm-dialog");
const dialogText = document.getElementById("confirm-text");
const dialogOk = document.getElementById("confirm-ok");
const dialogCancel = document.getElementById("confirm-cancel");

/**
 * Shows `text` for a few seconds. kind: info | notice | error; `code` (the server's notice or error
 * code) goes into data-code. The same text shown twice restarts its timer instead of repeating.
 */
export function toast(text, { kind = "info", code = "" } = {}) {
  if (!text) return null;
  let item = [...toasts.children].find((t) => t.dataset.text === text);
  if (!item) {
    item = document.createElement("div");
    item.className = `toast toast-${kind}`;
    item.dataset.text = text;
    item.dataset.code = code;
    item.setAttribute("role", kind === "error" ? "alert" : "status");
    const p = document.createElement("p");
    p.textContent = text;
    const close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", t("toast.dismiss"));
    close.textContent = "×";
    close.addEventListener("click", () => item.remove());
    item.append(p, close);
    toasts.prepend(item);
    while (toasts.children.length > MAX_TOASTS) toasts.lastElementChild.remove();
    // The area has a maximum height: the newest toasts stay whole, the oldest go.
    while (toasts.children.length > 1 && toasts.scrollHeight > toasts.clientHeight + 1) {
      toasts.lastElementChild.remove();
    }
  }
  clearTimeout(item.confsfuTimer);
  item.confsfuTimer = setTimeout(() => item.remove(), TOAST_MS[kind] ?? TOAST_MS.info);
  return item;
}

export function clearToasts() {
  toasts.replaceChildren();
}

/** Asks a yes/no question in a modal dialog; resolves true when `okLabel` was chosen. */
export function confirmAction(text, okLabel = t("confirm.ok")) {
  if (dialog.open) dialog.close("cancel");
  dialogText.textContent = text;
  dialogCancel.textContent = t("confirm.cancel");
  dialogOk.textContent = okLabel;
  dialog.returnValue = "cancel";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    dialogCancel.focus(); // the safe answer by default
  });
}
