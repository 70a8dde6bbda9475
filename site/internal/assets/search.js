// Search over the prebuilt index: every page, and every heading of a page as
// a result of its own (its URL ends with the heading's #anchor). The index
// is fetched on first focus, so pages that are only read never download it.
//
// The box is a combobox: typing lists results in a listbox, ArrowUp and
// ArrowDown move through them, Enter opens one, Escape clears; "/" and
// Ctrl-K (Cmd-K on a Mac) focus the box from anywhere but a form field.
//
// Ranking lives here and only here (rank, below). Each query word must
// match somewhere; where it matches decides the score: the title above the
// other names (an operation's path, an error's code) above the description
// above the text, so a page or heading about a thing outranks a page that
// mentions it. TestSearch in e2e/layout_test.go checks the order on the real site.
(() => {
  "use strict";
  const d = document;
  const box = d.querySelector("[data-search]");
  const meta = d.querySelector('meta[name="accepted-search"]');
  if (!box || !meta || !window.fetch) return;
  const input = box.querySelector("input");
  const list = d.getElementById("search-results");
  const status = d.getElementById("search-status");
  const key = box.querySelector(".search-key");
  const mac = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);
  if (key) key.title = "Press / or " + (mac ? "⌘K" : "Ctrl+K") + " to search";
  let index = null, loading = null, hits = [], active = -1;

  function load() {
    if (!loading) {
      loading = fetch(meta.content)
        .then((r) => r.json())
        .then((docs) => {
          index = docs.map((e) => ({ e, t: low(e.t), h: low((e.h || []).join(" ")), names: (e.h || []).map(low), d: low(e.d || ""), p: low(e.p || ""), x: low(e.x || "") }));
          return index;
        })
        .catch(() => { loading = null; status.textContent = "Search is not available right now."; });
    }
    return loading;
  }
  const low = (s) => s.toLowerCase();
  const count = (s, q) => { let n = 0, i = s.indexOf(q); while (i >= 0 && n < 4) { n++; i = s.indexOf(q, i + q.length); } return n; };
  const wordStart = (s, q) => { const i = s.indexOf(q); return i === 0 || (i > 0 && !/[a-z0-9]/.test(s[i - 1])); };

  // Sections in the order of the header's navigation: the tie-break after
  // the score, so that a guide comes before the reference page of the same
  // name.
  const order = [...d.querySelectorAll(".site-nav a")].map((a) => a.textContent.trim());
  const sectionRank = (s) => { const i = order.indexOf(s || ""); return i < 0 ? order.length : i; };

  // rank returns the entries matching every word of the query, best first.
  // A word scores by the best place it matches (a title over another name
  // over the description over the page a heading is on), plus a little for
  // each time the text mentions it; a whole title or name equal to the
  // query scores most. So a page or heading about a thing outranks one that
  // only mentions it, however often.
  function rank(docs, query) {
    const q = low(query).trim().replace(/\s+/g, " ");
    const words = q.split(" ").filter(Boolean);
    if (!words.length) return [];
    const out = [];
    for (const doc of docs) {
      let score = 0;
      for (const w of words) {
        const place = Math.max(
          doc.t.includes(w) ? (wordStart(doc.t, w) ? 12 : 8) : 0,
          doc.h.includes(w) ? (wordStart(doc.h, w) ? 10 : 6) : 0,
          doc.d.includes(w) ? 4 : 0,
          doc.p.includes(w) ? 2 : 0);
        const s = place + Math.min(count(doc.x, w), 3);
        if (!s) { score = 0; break; }
        score += s;
      }
      if (!score) continue;
      if (doc.t === q || doc.names.includes(q)) score += 20;
      else if (words.length > 1 && doc.t.includes(q)) score += 10;
      out.push({ doc, score });
    }
    // Ties: a page before its headings, then by section, then the shorter title.
    return out.sort((a, b) => b.score - a.score || (a.doc.p ? 1 : 0) - (b.doc.p ? 1 : 0) ||
      sectionRank(a.doc.e.s) - sectionRank(b.doc.e.s) || a.doc.t.length - b.doc.t.length);
  }

  // snippet is the text around the first query word, with the words marked.
  function snippet(doc, words) {
    const text = doc.e.x || doc.e.d || "";
    let i = -1;
    for (const w of words) { const j = doc.x.indexOf(w); if (j >= 0 && (i < 0 || j < i)) i = j; }
    const a = Math.max(0, text.lastIndexOf(" ", Math.max(0, i - 40)));
    const piece = (a ? "…" : "") + text.slice(a, a + 160).trim() + (a + 160 < text.length ? "…" : "");
    const span = d.createElement("span");
    span.className = "sr-text";
    const re = new RegExp("(" + words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|") + ")", "gi");
    piece.split(re).forEach((part, k) => {
      if (k % 2) { const m = d.createElement("mark"); m.textContent = part; span.append(m); } else if (part) span.append(part);
    });
    return span;
  }

  function show(open) {
    list.hidden = !open;
    input.setAttribute("aria-expanded", String(open));
  }
  function move(i) {
    const opts = list.querySelectorAll("[role=option]");
    if (!opts.length) return;
    active = (i + opts.length) % opts.length;
    opts.forEach((o, j) => o.setAttribute("aria-selected", String(j === active)));
    input.setAttribute("aria-activedescendant", opts[active].id);
    opts[active].scrollIntoView({ block: "nearest" });
  }
  function render() {
    const q = input.value.trim();
    list.textContent = "";
    active = -1;
    input.removeAttribute("aria-activedescendant");
    if (!q || !index) { show(false); status.textContent = ""; return; }
    const words = low(q).split(/\s+/).filter(Boolean);
    hits = rank(index, q).slice(0, 12);
    hits.forEach((h, i) => {
      const li = d.createElement("li");
      li.id = "search-result-" + i;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", "false");
      const a = d.createElement("a");
      a.href = h.doc.e.u;
      a.tabIndex = -1;
      const t = d.createElement("span");
      t.className = "sr-title";
      t.textContent = h.doc.e.t;
      const where = d.createElement("span");
      where.className = "sr-path";
      where.textContent = [h.doc.e.s, h.doc.e.p].filter(Boolean).join(" › ") || "Home";
      a.append(where, t, snippet(h.doc, words));
      li.append(a);
      list.append(li);
    });
    if (!hits.length) {
      const li = d.createElement("li");
      li.className = "sr-empty";
      li.textContent = "Nothing found for “" + q + "”.";
      list.append(li);
    }
    show(true);
    status.textContent = hits.length ? hits.length + (hits.length === 1 ? " result" : " results") + ", use the arrow keys to choose" : "No results";
  }
  const update = () => load().then(render);
  input.addEventListener("focus", update);
  input.addEventListener("input", update);
  input.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (list.hidden) { update(); return; }
      move(active + (e.key === "ArrowDown" ? 1 : active < 0 ? 0 : -1));
    } else if (e.key === "Enter") {
      const opts = list.querySelectorAll("[role=option] a");
      const a = opts[active >= 0 ? active : 0];
      if (a && !list.hidden) { e.preventDefault(); location.href = a.href; }
    } else if (e.key === "Escape") {
      if (input.value) { input.value = ""; render(); } else input.blur();
    }
  });
  d.addEventListener("keydown", (e) => {
    const t = e.target;
    if (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName)) return;
    const k = (e.key || "").toLowerCase();
    if ((k === "/" && !e.ctrlKey && !e.metaKey && !e.altKey) || (k === "k" && (mac ? e.metaKey : e.ctrlKey) && !e.altKey && !e.shiftKey)) {
      e.preventDefault();
      input.focus();
      input.select();
    }
  });
  d.addEventListener("click", (e) => { if (!box.contains(e.target)) show(false); });
  box.addEventListener("focusout", (e) => { if (e.relatedTarget && !box.contains(e.relatedTarget)) show(false); });
  // Tests reach the one ranking through this.
  window.acceptedSearchRank = (query) => load().then((docs) => rank(docs || [], query).map((h) => h.doc.e.u));
})();
