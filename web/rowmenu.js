// A menu button and its menu of buttons, as the WAI-ARIA menu button pattern has it: Enter, Space,
// ArrowDown or a click opens it with the focus on the first item; the arrows, Home and End move
// between items; Escape closes it and gives the focus back to the button; Tab or a click
// elsewhere closes it. One menu is open at a time. Opening and closing dispatch a bubbling
// "menutoggle" event from the button.

let current = null; // the open menu's {button, menu}

let nextId = 0;

/** A menu button labelled `label` showing `text`, and its (empty, closed) menu. */
export function makeMenuButton(label, text = "⋯") {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "menu-button";
  button.textContent = text;
  button.setAttribute("aria-label", label);
  button.setAttribute("aria-haspopup", "menu");
  button.setAttribute("aria-expanded", "false");
  const menu = document.createElement("div");
  menu.className = "menu";
  menu.id = `menu-${++nextId}`;
  menu.setAttribute("role", "menu");
  menu.setAttribute("aria-label", label);
  menu.hidden = true;
  button.setAttribute("aria-controls", menu.id);
  button.addEventListener("click", () => (isOpen(menu) ? closeMenu() : openMenu(button, menu)));
  button.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    event.preventDefault();
    openMenu(button, menu, event.key === "ArrowUp" ? -1 : 0);
  });
  menu.addEventListener("keydown", (event) => onMenuKey(event, button, menu));
  return { button, menu };
}

/** Relabels the button and its menu (the participant's name changed). */
export function relabelMenu(button, menu, label) {
  button.setAttribute("aria-label", label);
  menu.setAttribute("aria-label", label);
}

/** Replaces the menu's items, keeping the focus on the same place in an open menu. */
export function setMenuItems(menu, items) {
  const focused = items.length ? [...menu.children].indexOf(document.activeElement) : -1;
  for (const item of items) {
    item.setAttribute("role", "menuitem");
    item.tabIndex = -1;
  }
  menu.replaceChildren(...items);
  if (focused >= 0) items[Math.min(focused, items.length - 1)].focus();
}

function isOpen(menu) {
  return current?.menu === menu;
}

function openMenu(button, menu, focusAt = 0) {
  closeMenu();
  current = { button, menu };
  menu.hidden = false;
  button.setAttribute("aria-expanded", "true");
  button.dispatchEvent(new CustomEvent("menutoggle", { bubbles: true }));
  menu.scrollIntoView({ block: "nearest" });
  const items = [...menu.children];
  items.at(focusAt)?.focus();
}

/** Closes the open menu; `focusButton` gives the focus back to its button. */
export function closeMenu({ focusButton = false } = {}) {
  if (!current) return;
  const { button, menu } = current;
  current = null;
  menu.hidden = true;
  button.setAttribute("aria-expanded", "false");
  button.dispatchEvent(new CustomEvent("menutoggle", { bubbles: true }));
  if (focusButton && button.isConnected) button.focus();
}

function onMenuKey(event, button, menu) {
  const items = [...menu.children].filter((b) => !b.disabled);
  const at = items.indexOf(document.activeElement);
  const move = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: items.length - 1 }[event.key];
  if (move !== undefined) {
    event.preventDefault();
    items.at(move % items.length)?.focus();
  } else if (event.key === "Escape") {
    event.preventDefault();
    event.stopPropagation(); // a drawer around it stays open
    closeMenu({ focusButton: true });
  } else if (event.key === "Tab") {
    closeMenu();
  }
}

// A click or tap outside the open menu (and its button) closes it.
document.addEventListener("pointerdown", (event) => {
  if (!current) return;
  if (current.menu.contains(event.target) || current.button.contains(event.target)) return;
  closeMenu();
});
