// Search over a prebuilt index (titles, headings, text). The index is
// fetched on first focus, so pages that are only read never download it.
(function () {
  "use strict";
  var box = document.querySelector("[data-search]");
  var meta = document.querySelector('meta[name="accepted-search"]');
  if (!box || !meta || !window.fetch) return;
  var input = box.querySelector("input");
  var list = document.getElementById("search-results");
  var status = document.getElementById("search-status");
  var index = null, loading = null;
  box.hidden = false;

  function load() {
    if (!loading) {
      loading = fetch(meta.content).then(function (r) { return r.json(); }).then(function (d) { index = d; return d; });
    }
    return loading;
  }
  function score(doc, terms) {
    var s = 0, t = doc.t.toLowerCase(), h = doc.h.join(" ").toLowerCase(), x = doc.x.toLowerCase();
    for (var i = 0; i < terms.length; i++) {
      var q = terms[i], hit = 0;
      if (t.indexOf(q) >= 0) hit += 10;
      if (h.indexOf(q) >= 0) hit += 4;
      if (x.indexOf(q) >= 0) hit += 1;
      if (!hit) return 0;
      s += hit;
    }
    return s;
  }
  function snippet(doc, q) {
    var i = doc.x.toLowerCase().indexOf(q);
    if (i < 0) return doc.d || "";
    var a = Math.max(0, i - 40);
    return (a ? "…" : "") + doc.x.slice(a, i + 80) + "…";
  }
  function render() {
    var q = input.value.trim().toLowerCase();
    list.textContent = "";
    if (!q || !index) { list.hidden = true; status.textContent = ""; return; }
    var terms = q.split(/\s+/);
    var hits = index.map(function (d) { return { d: d, s: score(d, terms) }; })
      .filter(function (h) { return h.s > 0; })
      .sort(function (a, b) { return b.s - a.s; }).slice(0, 10);
    hits.forEach(function (h) {
      var li = document.createElement("li"), a = document.createElement("a"), p = document.createElement("span");
      a.href = h.d.u;
      a.textContent = h.d.t;
      p.textContent = snippet(h.d, terms[0]);
      li.appendChild(a);
      li.appendChild(p);
      list.appendChild(li);
    });
    list.hidden = hits.length === 0;
    status.textContent = hits.length ? hits.length + " results" : "No results";
  }
  input.addEventListener("focus", function () { load().then(render); });
  input.addEventListener("input", function () { load().then(render); });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { input.value = ""; render(); }
    if (e.key === "ArrowDown") { var a = list.querySelector("a"); if (a) { e.preventDefault(); a.focus(); } }
  });
  list.addEventListener("keydown", function (e) {
    var links = Array.prototype.slice.call(list.querySelectorAll("a"));
    var i = links.indexOf(document.activeElement);
    if (e.key === "ArrowDown" && i < links.length - 1) { e.preventDefault(); links[i + 1].focus(); }
    if (e.key === "ArrowUp") { e.preventDefault(); (i > 0 ? links[i - 1] : input).focus(); }
    if (e.key === "Escape") { input.focus(); }
  });
  document.addEventListener("click", function (e) { if (!box.contains(e.target)) list.hidden = true; });
})();
