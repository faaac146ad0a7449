// The catalogue on the page: the static text of index.html (data-i18n attributes), <html lang>
// and the language picker in the header. A choice is kept (localStorage) and applied at once.

import { lang, languages, onLanguageChange, setLanguage, t } from "./i18n.js";

/** Attributes worded from the catalogue: data-i18n-aria-label="key" sets aria-label, and so on. */
const ATTRIBUTES = ["aria-label", "title", "placeholder"];

/** Words every element under `root` that names a catalogue key, and sets <html lang>. */
export function applyTranslations(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const name of ATTRIBUTES) {
    for (const el of root.querySelectorAll(`[data-i18n-${name}]`)) {
      el.setAttribute(name, t(el.getAttribute(`data-i18n-${name}`)));
    }
  }
  document.documentElement.lang = lang();
}

/** Fills the header's language picker and words the page; call once. */
export function initLanguagePicker() {
  const picker = document.getElementById("language");
  picker.replaceChildren(...languages().map(([code, name]) => {
    const option = new Option(name, code, false, code === lang());
    option.lang = code;
    return option;
  }));
  picker.addEventListener("change", () => setLanguage(picker.value, { save: true }));
  applyTranslations();
}

// Registered first (ui.js imports this before its own modules word anything): the static text is
// worded before the modules word what they show over it.
onLanguageChange(() => {
  const picker = document.getElementById("language");
  if (picker) picker.value = lang();
  applyTranslations();
});
