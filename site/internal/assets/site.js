// Progressive enhancement only: the theme toggle and code tabs. Every page
// reads fine without this file.
(function () {
  "use strict";
  var root = document.documentElement;
  var store = {
    get: function (k) { try { return localStorage.getItem(k); } catch (e) { return null; } },
    set: function (k, v) { try { localStorage.setItem(k, v); } catch (e) {} }
  };

  // Theme toggle: pressed means dark.
  var toggle = document.getElementById("theme-toggle");
  if (toggle) {
    var dark = function () {
      var t = root.dataset.theme;
      if (t) return t === "dark";
      return window.matchMedia && matchMedia("(prefers-color-scheme: dark)").matches;
    };
    var sync = function () { toggle.setAttribute("aria-pressed", String(dark())); };
    toggle.hidden = false;
    sync();
    toggle.addEventListener("click", function () {
      var next = dark() ? "light" : "dark";
      root.dataset.theme = next;
      store.set("accepted.theme", next);
      sync();
    });
  }

  // Tabs: each [data-tabs] group gets a tablist; the choice of label is
  // shared by every group on every page (localStorage "accepted.lang").
  var groups = [];
  function select(label, focus) {
    groups.forEach(function (g) {
      var has = g.tabs.some(function (b) { return b.dataset.tab === label; });
      if (!has) return;
      g.tabs.forEach(function (b, i) {
        var on = b.dataset.tab === label;
        b.setAttribute("aria-selected", String(on));
        b.tabIndex = on ? 0 : -1;
        g.panels[i].hidden = !on;
        if (on && focus === b) b.focus();
      });
    });
  }
  document.querySelectorAll("[data-tabs]").forEach(function (group) {
    var panels = Array.prototype.slice.call(group.querySelectorAll(":scope > .tab-panel"));
    if (panels.length < 2) return;
    var list = document.createElement("div");
    list.className = "tab-list";
    list.setAttribute("role", "tablist");
    var tabs = panels.map(function (p) {
      var b = document.createElement("button");
      b.type = "button";
      b.id = p.id + "_tab";
      b.textContent = p.dataset.tab;
      b.dataset.tab = p.dataset.tab;
      b.setAttribute("role", "tab");
      b.setAttribute("aria-controls", p.id);
      p.setAttribute("role", "tabpanel");
      p.setAttribute("aria-labelledby", b.id);
      p.classList.add("js");
      list.appendChild(b);
      return b;
    });
    group.insertBefore(list, group.firstChild);
    var g = { tabs: tabs, panels: panels };
    groups.push(g);
    list.addEventListener("click", function (e) {
      var b = e.target.closest("[role=tab]");
      if (!b) return;
      store.set("accepted.lang", b.dataset.tab);
      select(b.dataset.tab, b);
    });
    list.addEventListener("keydown", function (e) {
      var i = tabs.indexOf(document.activeElement);
      if (i < 0) return;
      var j = e.key === "ArrowRight" ? i + 1 : e.key === "ArrowLeft" ? i - 1 : e.key === "Home" ? 0 : e.key === "End" ? tabs.length - 1 : -2;
      if (j === -2) return;
      e.preventDefault();
      var b = tabs[(j + tabs.length) % tabs.length];
      store.set("accepted.lang", b.dataset.tab);
      select(b.dataset.tab, b);
    });
    select(tabs[0].dataset.tab);
  });
  var saved = store.get("accepted.lang");
  if (saved) select(saved);
})();
