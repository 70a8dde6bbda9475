// Runs in <head> before the first paint: marks <html class="js"> (CSS then
// shows the controls that need scripts, in the room the HTML already keeps for
// them) and applies the reader's saved theme. Without a saved choice (or
// without JavaScript) CSS follows prefers-color-scheme.
//
// It also shows the reader's saved language in every group of code tabs
// from the first paint (CSS shows each group's first tab until site.js takes
// the group over), so that a returning reader sees no switch. The rule goes
// in a constructed style sheet, which a strict Content-Security-Policy allows.
(() => {
  const d = document.documentElement;
  d.classList.add("js");
  let t = null, lang = null;
  try {
    t = localStorage.getItem("accepted.theme");
    lang = localStorage.getItem("accepted.lang");
  } catch (e) { /* storage blocked: follow the system */ }
  if (t === "dark" || t === "light") d.dataset.theme = t;
  if (!lang || !("adoptedStyleSheets" in document) || !window.CSS || !CSS.supports("selector(:has(a))")) return;
  try {
    const q = '"' + CSS.escape(lang) + '"';
    const g = "html.js .tabs[data-tabs=lang]:not(.tabs-ready):has(> .tab-panel[data-tab=" + q + "])";
    const s = new CSSStyleSheet();
    s.replaceSync(
      g + " > .tab-panel { display: none !important; }\n" +
      g + " > .tab-panel[data-tab=" + q + "] { display: block !important; }\n" +
      g + " > .tab-list > [role=tab] { color: var(--muted); border-bottom-color: transparent; font-weight: 500; }\n" +
      g + " > .tab-list > [data-tab=" + q + "] { color: var(--fg); border-bottom-color: var(--accent); font-weight: 600; }\n");
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, s];
  } catch (e) { /* an old browser: site.js shows the choice */ }
})();
