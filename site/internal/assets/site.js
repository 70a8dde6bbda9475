// Progressive enhancement only: every page reads fine without this file.
// Theme toggle, the phone menu as a button, the sidebar scrolled to the
// current page, the "On this page" column following the reader, copy
// buttons, and code tabs. Controls are already in the HTML at their final
// size (see package components), so nothing here moves the layout.
(() => {
  "use strict";
  const d = document;
  const root = d.documentElement;
  const store = {
    get: (k) => { try { return localStorage.getItem(k); } catch { return null; } },
    set: (k, v) => { try { localStorage.setItem(k, v); } catch { /* private mode */ } },
  };
  const live = d.getElementById("live");
  // say announces a message in the page's live region (set anew so that a
  // repeated message is read again).
  const say = (msg) => {
    if (!live) return;
    live.textContent = "";
    setTimeout(() => { live.textContent = msg; }, 60);
  };

  // Theme toggle: pressed means dark.
  const toggle = d.getElementById("theme-toggle");
  if (toggle) {
    const dark = () => {
      const t = root.dataset.theme;
      if (t) return t === "dark";
      return matchMedia("(prefers-color-scheme: dark)").matches;
    };
    const sync = () => toggle.setAttribute("aria-pressed", String(dark()));
    sync();
    toggle.addEventListener("click", () => {
      const next = dark() ? "light" : "dark";
      root.dataset.theme = next;
      store.set("accepted.theme", next);
      sync();
    });
  }

  // The phone menu: without JavaScript the header's link opens the sidebar
  // by :target; here it becomes a button that toggles it, closes on Escape,
  // and hands focus back.
  const link = d.getElementById("menu-button");
  const menu = d.getElementById("site-menu");
  if (link && menu) {
    const btn = d.createElement("button");
    btn.type = "button";
    btn.id = link.id;
    btn.className = link.className;
    btn.setAttribute("aria-controls", menu.id);
    btn.setAttribute("aria-expanded", "false");
    btn.append(...link.childNodes);
    link.replaceWith(btn);
    const open = () => menu.classList.contains("open");
    const set = (on, focusButton) => {
      menu.classList.toggle("open", on);
      d.body.classList.toggle("menu-open", on);
      btn.setAttribute("aria-expanded", String(on));
      if (on) (menu.querySelector("[aria-current=page]") || menu.querySelector("a")).focus();
      else if (focusButton) btn.focus();
    };
    btn.addEventListener("click", () => set(!open(), false));
    menu.addEventListener("click", (e) => {
      const a = e.target.closest("a");
      if (!a || !open()) return;
      if (a.classList.contains("menu-close")) e.preventDefault();
      set(false, a.classList.contains("menu-close"));
    });
    d.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && open()) set(false, true);
    });
    menu.addEventListener("focusout", (e) => {
      if (open() && e.relatedTarget && !menu.contains(e.relatedTarget) && e.relatedTarget !== btn) set(false, false);
    });
    matchMedia("(min-width: 52rem)").addEventListener("change", (e) => { if (e.matches && open()) set(false, false); });
    if (location.hash === "#" + menu.id) history.replaceState(null, "", location.pathname + location.search);
  }

  // The sidebar scrolls itself (not the page) to the current page's entry.
  if (menu) {
    const cur = menu.querySelector(".sidebar-list [aria-current=page]");
    if (cur && menu.scrollHeight > menu.clientHeight) {
      const off = cur.getBoundingClientRect().top - menu.getBoundingClientRect().top + menu.scrollTop;
      menu.scrollTop = Math.max(0, off - menu.clientHeight / 3);
    }
  }

  // "On this page": the entry of the heading being read gets aria-current.
  // The current heading is the last one above a line a third down the
  // window, or the last of all once the page is scrolled to its end. It is
  // worked out at most once a frame while the page scrolls.
  const toc = d.querySelector("[data-toc]");
  if (toc) {
    const links = [...toc.querySelectorAll('a[href^="#"]')].filter((a) => a.hash.length > 1 && a.hash !== "#top");
    const heads = links.map((a) => d.getElementById(decodeURIComponent(a.hash.slice(1))));
    let last = -1, queued = false;
    const mark = () => {
      queued = false;
      if (!toc.offsetParent) return; // the column is not shown at this width
      const line = innerHeight / 3;
      let i = -1;
      heads.forEach((h, j) => { if (h && h.getBoundingClientRect().top <= line) i = j; });
      if (innerHeight + scrollY >= root.scrollHeight - 2) i = heads.length - 1;
      if (i === last) return;
      last = i;
      links.forEach((a, j) => { if (j === i) a.setAttribute("aria-current", "true"); else a.removeAttribute("aria-current"); });
      const a = links[i];
      if (a && toc.scrollHeight > toc.clientHeight) {
        const r = a.getBoundingClientRect(), t = toc.getBoundingClientRect();
        if (r.top < t.top || r.bottom > t.bottom) toc.scrollTop += r.top - t.top - toc.clientHeight / 2;
      }
    };
    const later = () => { if (!queued) { queued = true; requestAnimationFrame(mark); } };
    addEventListener("scroll", later, { passive: true });
    addEventListener("resize", later, { passive: true });
    mark();
  }

  // The markup of components.CopyButtonHTML, for blocks the build left bare.
  const COPY_BUTTON = '<button type="button" class="copy" data-copy><svg aria-hidden="true" viewBox="0 0 16 16" width="16" height="16"><path d="M5.5 1.5h7a1 1 0 0 1 1 1v8M3 4.5h6.5a1 1 0 0 1 1 1v8a1 1 0 0 1-1 1H3a1 1 0 0 1-1-1v-8a1 1 0 0 1 1-1z" fill="none" stroke="currentColor" stroke-width="1.4"></path></svg><span class="copy-text">Copy</span></button>';

  // Copy buttons: the text of the <pre> next to the button, without the
  // prompts of a console session and without the final newline (which would
  // run a pasted command at once).
  async function copy(text) {
    if (navigator.clipboard) {
      try {
        await Promise.race([navigator.clipboard.writeText(text), new Promise((_, no) => setTimeout(() => no(new Error("timeout")), 1000))]);
        return true;
      } catch { /* fall back to the selection */ }
    }
    const ta = d.createElement("textarea");
    ta.value = text;
    ta.setAttribute("readonly", "");
    ta.className = "visually-hidden";
    d.body.append(ta);
    ta.select();
    let ok = false;
    try { ok = d.execCommand("copy"); } catch { ok = false; }
    ta.remove();
    return ok;
  }
  // Code the build did not give a copy button (it is not drawn by the
  // guides' Markdown) gets one here, laid over the block's top right corner
  // so that nothing moves. Try-it panels have their own "Copy as".
  d.querySelectorAll("main pre").forEach((pre) => {
    if (pre.closest(".try-it, .code, [data-copy-scope]") || !pre.textContent.trim()) return;
    const wrap = d.createElement("div");
    wrap.className = "copy-over";
    wrap.dataset.copyScope = "";
    pre.replaceWith(wrap);
    wrap.append(pre);
    wrap.insertAdjacentHTML("afterbegin", COPY_BUTTON);
  });
  d.addEventListener("click", async (e) => {
    const b = e.target.closest("button[data-copy]");
    if (!b) return;
    const scope = b.closest(".code, [data-copy-scope]");
    const pre = scope && scope.querySelector("pre");
    if (!pre) return;
    let text = pre.textContent.replace(/\n$/, "");
    if (/\blanguage-(console|shell-session)\b/.test(pre.className)) text = text.replace(/^[$#] /gm, "");
    const label = b.querySelector(".copy-text") || b;
    const ok = await copy(text);
    if (ok) {
      b.classList.add("copied");
      label.textContent = "Copied";
      say("Copied");
      clearTimeout(b._t);
      b._t = setTimeout(() => { b.classList.remove("copied"); label.textContent = "Copy"; }, 2000);
    } else {
      const r = d.createRange();
      r.selectNodeContents(pre);
      getSelection().removeAllRanges();
      getSelection().addRange(r);
      say("The clipboard is not available: the code is selected; press Ctrl+C to copy it.");
    }
  });

  // Tabs: the tab lists are in the HTML (CSS shows the first panel of each
  // group, or the saved language, until a group is marked .tabs-ready), so
  // wiring them up moves nothing. The language chosen in a group of code
  // tabs (data-tabs="lang") is shared by every such group on every page
  // (localStorage "accepted.lang"); other groups choose on their own.
  const groups = [];
  function show(g, label, focus) {
    if (!g.tabs.some((b) => b.dataset.tab === label)) return;
    g.tabs.forEach((b, i) => {
      const on = b.dataset.tab === label;
      b.setAttribute("aria-selected", String(on));
      b.tabIndex = on ? 0 : -1;
      if (g.panels[i]) g.panels[i].hidden = !on;
      if (on && focus === b) b.focus();
    });
  }
  function choose(g, b) {
    if (!g.lang) { show(g, b.dataset.tab, b); return; }
    store.set("accepted.lang", b.dataset.tab);
    groups.forEach((h) => { if (h.lang) show(h, b.dataset.tab, h === g ? b : null); });
  }
  d.querySelectorAll("[data-tabs]").forEach((group) => {
    const list = group.querySelector(":scope > .tab-list");
    if (!list) return;
    const tabs = [...list.querySelectorAll("[role=tab]")];
    const panels = tabs.map((b) => d.getElementById(b.getAttribute("aria-controls")));
    panels.forEach((p, i) => {
      if (!p) return;
      p.setAttribute("role", "tabpanel");
      p.setAttribute("aria-labelledby", tabs[i].id);
    });
    const g = { tabs, panels, lang: group.dataset.tabs === "lang" };
    groups.push(g);
    show(g, tabs[0].dataset.tab);
    group.classList.add("tabs-ready");
    list.addEventListener("click", (e) => {
      const b = e.target.closest("[role=tab]");
      if (b) choose(g, b);
    });
    list.addEventListener("keydown", (e) => {
      const i = tabs.indexOf(d.activeElement);
      if (i < 0) return;
      const j = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
      if (j === undefined) return;
      e.preventDefault();
      choose(g, tabs[(j + tabs.length) % tabs.length]);
    });
  });
  const saved = store.get("accepted.lang");
  if (saved) groups.forEach((g) => { if (g.lang) show(g, saved); });
})();
