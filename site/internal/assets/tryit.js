// Try-it: turns each .try-it placeholder (a curl command without JavaScript)
// into a live panel that calls the sandbox and follows a job the way a good
// client does: the 202 shown exactly, a countdown honouring Retry-After,
// each poll a row of the timeline, the 303 followed to the result, a
// failure linked to the error catalog, a cancel button, live events (SSE
// read from a fetch stream, since EventSource cannot send Authorization),
// and for imports a webhook inbox whose deliveries appear beside the
// request. The state the job is in lights up in the lifecycle diagram, or
// in the strip of states the build puts in a panel on a page without one.
// "Copy as" gives the exact request sent, or the whole client that follows
// the job (data-flow: the build's templates, filled in here).
//
// CSP: no inline script or style, no style attributes; only classes,
// hidden and <progress>. The build minifies this file with esbuild.
(() => {
  "use strict";
  const d = document;
  const meta = (n) => (d.querySelector(`meta[name="${n}"]`) || {}).content || "";
  const API = (meta("accepted-sandbox") || location.origin).replace(/\/+$/, "");
  const BASE = meta("accepted-base") || "/";
  const KEY = "accepted.key";
  const TERMINAL = ["succeeded", "failed", "canceled"];
  const REASON = { 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 303: "See Other", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 409: "Conflict", 410: "Gone", 422: "Unprocessable Content", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable" };
  const store = {
    get: (k) => { try { return sessionStorage.getItem(k); } catch { return null; } },
    set: (k, v) => { try { sessionStorage.setItem(k, v); } catch { /* private mode */ } },
    del: (k) => { try { sessionStorage.removeItem(k); } catch { /* private mode */ } },
  };
  let uid = 0;
  const fill = (el, ...kids) => el.replaceChildren(...kids.flat().filter((k) => k != null && k !== false && k !== ""));

  // h builds an element: h("p", {class: "x", text: "…", onclick: f}, kids…).
  function h(tag, props, ...kids) {
    const e = d.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v == null || v === false) continue;
      if (k === "text") e.textContent = v;
      else if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "value" || k === "checked" || k === "hidden") e[k] = v;
      else e.setAttribute(k, v === true ? "" : v);
    }
    e.append(...kids.flat().filter((k) => k != null && k !== false));
    return e;
  }
  const sleep = (ms, signal) => new Promise((ok, fail) => {
    if (signal && signal.aborted) return fail(signal.reason);
    const t = setTimeout(ok, ms);
    if (signal) signal.addEventListener("abort", () => { clearTimeout(t); fail(signal.reason); }, { once: true });
  });
  const abs = (u) => /^https?:/.test(u) ? u : API + u;
  const rel = (u) => u.startsWith(API) ? u.slice(API.length) : u;
  const statusText = (r) => r.status + " " + (r.statusText || REASON[r.status] || "");
  const pretty = (t) => { try { return JSON.stringify(JSON.parse(t), null, 2); } catch { return t; } };
  const parse = (t) => { try { return JSON.parse(t); } catch { return null; } };
  const catalog = (code) => h("a", { href: BASE + "errors/#" + encodeURIComponent(code), text: code + " in the error catalog" });
  const remember = (o) => {
    for (const v of [o && o.id, o && o.job_id]) {
      if (typeof v === "string" && /^[a-z]+_[a-z0-9]+$/.test(v)) store.set("accepted.last." + v.split("_")[0], v);
    }
    d.dispatchEvent(new Event("accepted:last"));
  };

  // apiKey obtains a sandbox key on first use and keeps it for the session.
  let keyReq = null;
  function apiKey(renew) {
    const k = !renew && store.get(KEY);
    if (k) return Promise.resolve(k);
    keyReq = keyReq || fetch(API + "/v1/sandbox/keys", { method: "POST" })
      .then(async (r) => {
        if (!r.ok) throw new Error("could not get a sandbox key: " + statusText(r));
        const j = await r.json();
        store.set(KEY, j.key);
        return j.key;
      })
      .finally(() => { keyReq = null; });
    return keyReq;
  }

  // light marks the state a job is in on every lifecycle diagram of the page.
  function light(status) {
    d.querySelectorAll(".lifecycle [data-state]").forEach((e) => e.classList.toggle("lit", e.dataset.state === status));
  }

  // Copy as: the exact request last sent, in four languages.
  const q1 = (s) => "'" + s.replace(/'/g, "'\\''") + "'";
  const js = (s) => JSON.stringify(s);
  const COPY = {
    curl: (r) => ["curl -i -X " + r.method + " " + q1(r.url)].concat(
      Object.entries(r.headers).map(([k, v]) => "  -H " + q1(k + ": " + v)),
      r.body != null ? ["  --data-raw " + q1(r.body)] : []).join(" \\\n"),
    JavaScript: (r) => `const res = await fetch(${js(r.url)}, {\n  method: ${js(r.method)},\n  headers: ${JSON.stringify(r.headers, null, 2).replace(/\n/g, "\n  ")},\n` +
      (r.body != null ? `  body: ${js(r.body)},\n` : "") +
      `});\nconsole.log(res.status, res.headers.get("Location"), res.headers.get("Retry-After"));\nconsole.log(await res.text());\n`,
    Python: (r) => `import urllib.request\n\nreq = urllib.request.Request(\n    ${js(r.url)},\n    method=${js(r.method)},\n    headers=${JSON.stringify(r.headers)},\n` +
      (r.body != null ? `    data=${js(r.body)}.encode(),\n` : "") +
      `)\nwith urllib.request.urlopen(req) as res:\n    print(res.status, res.headers.get("Location"), res.headers.get("Retry-After"))\n    print(res.read().decode())\n`,
    Go: (r) => `package main\n\nimport (\n\t"fmt"\n\t"io"\n\t"net/http"\n` + (r.body != null ? `\t"strings"\n` : "") +
      `)\n\nfunc main() {\n\treq, err := http.NewRequest(${js(r.method)}, ${js(r.url)}, ` +
      (r.body != null ? `strings.NewReader(${js(r.body)}))` : "nil)") + `\n\tif err != nil {\n\t\tpanic(err)\n\t}\n` +
      Object.entries(r.headers).map(([k, v]) => `\treq.Header.Set(${js(k)}, ${js(v)})\n`).join("") +
      `\t// Do not follow redirects, so a 303 from the status monitor shows.\n\tclient := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}\n\tres, err := client.Do(req)\n\tif err != nil {\n\t\tpanic(err)\n\t}\n\tdefer res.Body.Close()\n\tbody, _ := io.ReadAll(res.Body)\n\tfmt.Println(res.Status, res.Header.Get("Location"), res.Header.Get("Retry-After"))\n\tfmt.Println(string(body))\n}\n`,
  };

  // flowOf fills a follow-the-job template of the build (data-flow, by
  // language) with the request last sent: each quoted token ("@@URL@@",
  // '@@URL@@' in shell) becomes the value quoted for that language. JSON's
  // string syntax is also JavaScript's, Python's and Go's.
  const LANG = { curl: "curl", JavaScript: "javascript", Python: "python", Go: "go" };
  function flowOf(tpl, lang, r, key) {
    const q = lang === "curl" ? q1 : js;
    const tok = (n) => lang === "curl" ? "'@@" + n + "@@'" : '"@@' + n + '@@"';
    return tpl.split(tok("URL")).join(q(r.url)).split(tok("BODY")).join(q(r.body || "")).split(tok("KEY")).join(q(key || ""));
  }

  // A box that may scroll is reachable by keyboard and says what it holds.
  const scrollBox = (cls, label, props, ...kids) => h("pre", Object.assign({ class: cls, tabindex: "0", role: "group", "aria-label": label }, props), ...kids);

  // sse reads a server-sent-events stream from a fetch response, calling
  // onEvent with {id, event, data} for each event (WHATWG parsing rules).
  async function sse(res, onEvent) {
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    let ev = { data: [] };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let m;
      while ((m = /\r\n|\r(?!$)|\n/.exec(buf))) {
        const line = buf.slice(0, m.index);
        buf = buf.slice(m.index + m[0].length);
        if (line === "") {
          if (ev.data.length) onEvent({ id: ev.id, event: ev.event || "message", data: ev.data.join("\n") });
          ev = { data: [], id: ev.id };
          continue;
        }
        if (line[0] === ":") continue;
        const c = line.indexOf(":");
        const f = c < 0 ? line : line.slice(0, c);
        let v = c < 0 ? "" : line.slice(c + 1);
        if (v[0] === " ") v = v.slice(1);
        if (f === "data") ev.data.push(v);
        else if (f === "event") ev.event = v;
        else if (f === "id") ev.id = v;
      }
    }
  }

  function setup(root) {
    const ds = root.dataset;
    const fig = root.querySelector("figure.lifecycle"); // the build's copy of the guide's diagram
    const id = "tryit" + ++uid;
    const method = ds.method;
    const examples = parse(ds.examples || "[]") || [];
    const flows = parse(ds.flow || "null");
    // Headings of the output go one level below the heading the panel
    // follows, so the page's outline stays in order.
    const before = [...d.querySelectorAll("h1, h2, h3, h4, h5")].filter((x) => x.compareDocumentPosition(root) & Node.DOCUMENT_POSITION_FOLLOWING).pop();
    const H = "h" + Math.min(6, (before ? +before.tagName[1] : 1) + 1);
    const H2 = "h" + Math.min(6, +H[1] + 1);
    const params = parse(ds.params || "[]") || [];
    const hasBody = examples.length > 0 || ds.body != null;
    const auth = ds.auth === "bearer";
    let run = null; // the job being followed: {ctl, loc, job, done, t0}
    let last = null; // the request last sent, for Copy as

    // The form.
    const scenario = examples.length > 1 && h("select", { id: id + "-scenario" },
      examples.map((e) => h("option", { value: e.n, text: e.s ? e.s + " (" + e.n + ")" : e.n })));
    const body = hasBody && h("textarea", { id: id + "-body", rows: 9, spellcheck: "false", autocomplete: "off", class: "tryit-body" });
    const pick = (name) => {
      const e = examples.find((x) => x.n === name) || examples[0];
      if (body && e) body.value = e.v;
    };
    if (scenario) {
      scenario.value = examples.some((e) => e.n === ds.scenario) ? ds.scenario : examples[0].n;
      scenario.addEventListener("change", () => pick(scenario.value));
    }
    if (body) {
      if (ds.body) body.value = pretty(ds.body);
      else pick(ds.scenario);
    }
    // A path parameter follows the last id of its kind this session has
    // seen (job_…, rpt_…) until the reader types in it, so a job started in
    // one panel can be read in the next.
    const lastOf = (ex) => store.get("accepted.last." + (ex || "").split("_")[0]) || "";
    const inputs = params.map(([name, ex]) => {
      const i = h("input", { id: id + "-p-" + name, name, type: "text", required: true, autocomplete: "off", spellcheck: "false", value: lastOf(ex), placeholder: ex || "" });
      i.dataset.ex = ex || "";
      const follow = () => { if (!i.dataset.typed) i.value = lastOf(ex); };
      i.addEventListener("input", () => { i.dataset.typed = i.value.trim() ? "1" : ""; });
      i.addEventListener("focus", follow);
      d.addEventListener("accepted:last", follow);
      return i;
    });
    const modeName = id + "-mode";
    const modes = ds.async != null && h("fieldset", { class: "tryit-mode" }, h("legend", { text: "Follow the job by" }),
      [["poll", "Polling the status monitor"], ["sse", "Live events (SSE)"]].map(([v, label]) =>
        h("label", {}, h("input", { type: "radio", name: modeName, value: v, checked: v === "poll" }), " " + label)));
    const inboxOn = ds.callback != null && h("input", { type: "checkbox", id: id + "-inbox", checked: true });
    const failCount = ds.callback != null && h("input", { type: "number", id: id + "-fail", min: 0, max: 10, value: "2", class: "tryit-num" });
    const failStatus = ds.callback != null && h("select", { id: id + "-failstatus" }, ["503", "429", "500", "410"].map((s) => h("option", { value: s, text: s })));
    const send = h("button", { type: "submit", class: "tryit-primary", text: "Send request" });
    const cancel = h("button", { type: "button", class: "tryit-danger", hidden: true, text: "Cancel job", onclick: () => cancelJob() });
    // Sends the last request again with its Idempotency-Key: the server
    // replays the first answer (Idempotent-Replayed: true) instead of
    // starting a second job, or refuses a changed body with 422.
    let idemKey = null;
    const replay = h("button", { type: "button", class: "tryit-replay", hidden: true, text: "Send again, same Idempotency-Key", onclick: () => go(idemKey) });
    const status = h("p", { class: "tryit-status", role: "status" });
    const form = h("form", { class: "tryit-form", novalidate: true },
      scenario && h("p", {}, h("label", { for: scenario.id, text: "Scenario" }), scenario),
      inputs.map((i) => h("p", {}, h("label", { for: i.id }, "Path parameter ", h("code", { text: i.name })), i)),
      body && h("p", {}, h("label", { for: body.id, text: "Request body (JSON)" }), body),
      modes,
      inboxOn && h("p", { class: "tryit-check" }, inboxOn, " ", h("label", { for: inboxOn.id, text: "Send the webhook to a built-in inbox (its URL becomes callback_url)" })),
      h("p", { class: "tryit-buttons" }, send, replay, cancel),
    );

    // The output.
    // Groups, not sections: several panels on one page would repeat the
    // names of their landmarks.
    const resp = h("div", { class: "tryit-response", hidden: true, role: "group", "aria-label": "Response" });
    const wait = h("p", { class: "tryit-wait", hidden: true });
    const bar = h("progress", { id: id + "-bar", max: 100, value: 0 });
    const barBox = h("p", { class: "tryit-bar", hidden: true }, h("label", { for: bar.id, text: "Job progress" }), bar);
    const tbody = h("tbody");
    const timeline = h("table", { class: "tryit-timeline", hidden: true },
      h("caption", { text: "Timeline" }),
      h("thead", {}, h("tr", {}, ["Time", "Request", "Answer", "Job status", "Progress"].map((t) => h("th", { scope: "col", text: t })))),
      tbody);
    const result = h("div", { class: "tryit-result", hidden: true, tabindex: "-1", role: "group", "aria-label": "Result" });
    const inbox = ds.callback != null && h("div", { class: "tryit-inbox", hidden: true, role: "group", "aria-label": "Webhook inbox" });
    const copyOut = scrollBox("tryit-copy-out", "Copied code", { hidden: true });
    const copy = h("div", { class: "tryit-copy", hidden: true },
      h("p", { class: "tryit-copy-row" }, h("span", { class: "tryit-copy-label", id: id + "-copy1", text: "Copy the request as" }),
        Object.keys(COPY).map((lang) => h("button", { type: "button", text: lang, "aria-describedby": id + "-copy1", onclick: () => copyAs(lang, false) }))),
      flows && h("p", { class: "tryit-copy-row" }, h("span", { class: "tryit-copy-label", id: id + "-copy2", text: "Copy the whole flow as" }),
        Object.keys(COPY).filter((lang) => flows[LANG[lang]]).map((lang) => h("button", { type: "button", class: "tryit-flow", text: lang, "aria-describedby": id + "-copy2", onclick: () => copyAs(lang, true) }))));

    fill(root,
      h("p", { class: "tryit-title" }, h("strong", { text: "Try it" }), " ", h("code", { text: method + " " + ds.path }),
        " against the sandbox at ", h("code", { text: API })),
      form, status, resp, barBox, wait, fig, timeline, result, inbox, copy, copyOut);
    root.classList.add("tryit-live");

    const say = (t) => { status.textContent = t; };
    const mode = () => (form.querySelector(`input[name="${modeName}"]:checked`) || {}).value || "poll";

    // row adds a line to the timeline; each cell carries its column's name,
    // which a narrow panel shows when it stacks the cells (tryit.css).
    function row(req, answer, job) {
      timeline.hidden = false;
      const t = ((performance.now() - run.t0) / 1000).toFixed(2);
      const cells = [["Time", "+" + t + " s"], ["Request", h("code", { text: req })], ["Answer", answer],
        ["Job status", job && job.status ? job.status : ""], ["Progress", job && job.percent_complete != null ? job.percent_complete + "%" : ""]];
      tbody.append(h("tr", {}, cells.map(([label, v]) => h("td", { "data-label": label, class: v === "" ? "tryit-empty" : null }, v))));
    }

    function showResponse(res, text) {
      const heads = [...res.headers].map(([k, v]) => {
        const key = /^(location|retry-after|ratelimit.*|content-location|idempotent-replayed)$/.test(k);
        return h("span", { class: key ? "tryit-key" : null, text: k + ": " + v + "\n" });
      });
      resp.replaceChildren(h(H, { text: "Response" }),
        scrollBox("tryit-http", "Response status and headers", {}, h("strong", { text: "HTTP " + statusText(res) + "\n" }), heads),
        text ? scrollBox("tryit-json", "Response body", { text: pretty(text) }) : "");
      resp.hidden = false;
    }

    function update(job) {
      run.job = job;
      remember(job);
      barBox.hidden = false;
      bar.value = job.percent_complete || 0;
      light(job.status);
      cancel.hidden = !!run.done || TERMINAL.includes(job.status);
      if (job.status !== run.said) {
        run.said = job.status;
        say("Job " + job.status + (job.percent_complete != null ? ", " + job.percent_complete + "% complete" : "") + (job.message ? ": " + job.message : ""));
      }
    }

    async function call(m, url, opts = {}) {
      const headers = Object.assign({}, opts.headers);
      if (auth) headers.Authorization = "Bearer " + await apiKey(opts.renew);
      const res = await fetch(abs(url), { method: m, headers, body: opts.body, redirect: "follow", signal: opts.signal, cache: "no-store" });
      if (res.status === 401 && auth && !opts.renew) {
        store.del(KEY);
        return call(m, url, Object.assign({}, opts, { renew: true }));
      }
      return res;
    }

    function problem(p) {
      const code = p.code || String(p.type || "").split("#")[1] || "";
      return h("div", { class: "tryit-problem" },
        h("p", {}, h("strong", { text: p.title || "Failed" }), p.status ? " (" + p.status + ")" : ""),
        p.detail && h("p", { text: p.detail }),
        code && h("p", {}, "See ", catalog(code), " for what it means and what to do."));
    }

    function finish(kind, ...content) {
      if (run.done) return;
      run.done = true;
      run.ctl.abort();
      wait.hidden = true;
      const hadFocus = d.activeElement === cancel;
      cancel.hidden = true;
      fill(result, content);
      result.className = "tryit-result tryit-" + kind;
      result.hidden = false;
      if (hadFocus) result.focus();
    }

    // download offers a file result as a blob link, checked against the
    // SHA-256 the export records (read from the job's resource link when
    // the 303 led straight to the file).
    async function download(res, meta) {
      const blob = await res.blob();
      const res_ = run.job && run.job.links && run.job.links.resource;
      if (!meta && res_) {
        const r = await call("GET", res_);
        row("GET " + rel(res_), statusText(r));
        meta = (parse(await r.text()) || {}).file;
      }
      const cd = /filename="?([^";]+)/.exec(res.headers.get("Content-Disposition") || "");
      const f = Object.assign({ name: cd ? cd[1] : rel(res.url).split("/").filter(Boolean).pop() || "download", bytes: blob.size, content_type: blob.type }, meta);
      let check = "";
      if (crypto.subtle && f.sha256) {
        const sum = [...new Uint8Array(await crypto.subtle.digest("SHA-256", await blob.arrayBuffer()))].map((b) => b.toString(16).padStart(2, "0")).join("");
        check = sum === f.sha256 ? "SHA-256 matches the export's record." : "SHA-256 does not match the export's record!";
      }
      const link = h("a", { href: URL.createObjectURL(blob), download: f.name, class: "tryit-download", text: "Download " + f.name });
      say("File ready: " + f.name);
      return finish("succeeded", h(H, { text: "File ready" }),
        h("p", {}, link, " (" + (f.rows != null ? f.rows + " rows, " : "") + (f.bytes / 1024).toFixed(1) + " KB, " + f.content_type + ")"),
        check && h("p", { text: check }));
    }

    async function showResult(res) {
      if (res.ok && !/json/.test(res.headers.get("Content-Type") || "")) return download(res);
      const text = await res.text();
      const o = parse(text);
      remember(o);
      const raw = h("details", {}, h("summary", { text: "The result as JSON" }), scrollBox("tryit-json", "The result as JSON", { text: pretty(text) }));
      if (!res.ok) return finish("failed", h(H, { text: "The result could not be read" }), o ? problem(o) : "", raw);
      if (o && o.file && o.file.url) {
        const fr = await call("GET", o.file.url);
        row("GET " + rel(o.file.url), statusText(fr));
        return download(fr, o.file);
      }
      if (o && Array.isArray(o.days)) {
        const cols = ["date", "orders", "revenue_cents", "refunds"];
        const tr = (r, th) => h("tr", {}, cols.map((c) => h(th ? "th" : "td", { scope: th ? "row" : null, text: r[c] == null ? "" : String(r[c]) })));
        say("Report ready: " + o.title);
        return finish("succeeded", h(H, { text: "Report: " + o.title }),
          h("p", { text: o.from + " to " + o.to + (o.regions ? " · regions: " + o.regions.join(", ") : "") }),
          h("div", { class: "tryit-scroll", tabindex: "0", role: "group", "aria-label": "Report totals and the first days" }, h("table", { class: "tryit-report" }, h("caption", { text: "Totals and the first days" }),
            h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col", text: c })))),
            h("tbody", {}, tr(Object.assign({ date: "total" }, o.totals), true), o.days.slice(0, 7).map((r) => tr(r))))), raw);
      }
      if (o && o.outcome) {
        say("Import finished: " + o.outcome);
        return finish("succeeded", h(H, { text: "Import: " + o.outcome }),
          h("p", { text: o.imported + " of " + o.total_rows + " rows imported." }),
          o.rejected && o.rejected.length > 0 && h("ul", {}, o.rejected.map((r) => h("li", { text: "Row " + r.row + " (" + r.sku + "): " + r.reason }))), raw);
      }
      say("Result received");
      return finish("succeeded", h(H, { text: "Result" }), raw);
    }

    // end handles a terminal job: follow the monitor's 303 to the result,
    // or show the failure with its catalog entry.
    async function end(job) {
      if (run.done) return;
      if (job.status === "succeeded") {
        const res = await call("GET", run.loc, { signal: run.ctl.signal });
        if (res.redirected) {
          row("GET " + rel(run.loc), "303 See Other → " + rel(res.url), job);
          row("GET " + rel(res.url), statusText(res));
        } else row("GET " + rel(run.loc), statusText(res), job);
        return showResult(res);
      }
      if (job.status === "failed") {
        say("Job failed: " + (job.error && job.error.code || "unknown error"));
        return finish("failed", h(H, { text: "The job failed" }), job.error ? problem(job.error) : "");
      }
      say("Job canceled");
      finish("canceled", h(H, { text: "The job was canceled" }), h("p", { text: "Nothing more will happen: a canceled job never produces a result." }));
    }

    async function poll(retryAfter) {
      let wait_ = retryAfter;
      for (;;) {
        wait.hidden = false;
        for (let s = wait_; s > 0; s--) {
          wait.textContent = "Next poll in " + s + " s (Retry-After: " + wait_ + ")";
          await sleep(1000, run.ctl.signal);
        }
        wait.textContent = "Polling…";
        const res = await call("GET", run.loc, { signal: run.ctl.signal });
        if (res.redirected) {
          update(Object.assign({}, run.job, { status: "succeeded", percent_complete: 100 }));
          row("GET " + rel(run.loc), "303 See Other → " + rel(res.url), run.job);
          row("GET " + rel(res.url), statusText(res));
          return showResult(res);
        }
        const text = await res.text();
        const job = parse(text);
        if (!res.ok || !job) {
          row("GET " + rel(run.loc), statusText(res));
          say("Polling failed: " + statusText(res));
          return finish("failed", h(H, { text: "The status monitor answered " + statusText(res) }), job ? problem(job) : h("pre", { text }));
        }
        row("GET " + rel(run.loc), statusText(res), job);
        update(job);
        if (TERMINAL.includes(job.status)) return end(job);
        wait_ = Math.max(1, parseInt(res.headers.get("Retry-After"), 10) || 1);
      }
    }

    async function stream() {
      const url = (run.job.links && run.job.links.events) || run.loc.replace(/\/$/, "") + "/events";
      let lastId = "";
      let terminal = null;
      while (!run.done && !terminal) {
        wait.hidden = false;
        wait.textContent = "Listening to live events…";
        const res = await call("GET", url, { headers: Object.assign({ Accept: "text/event-stream" }, lastId ? { "Last-Event-ID": lastId } : {}), signal: run.ctl.signal });
        row("GET " + rel(url), statusText(res) + " " + (res.headers.get("Content-Type") || ""));
        if (res.status === 204) break;
        if (!res.ok || !res.body) {
          say("Event stream failed: " + statusText(res));
          return finish("failed", h(H, { text: "The event stream answered " + statusText(res) }));
        }
        await sse(res, (ev) => {
          lastId = ev.id || lastId;
          const job = parse(ev.data);
          if (!job) return;
          row("event: " + ev.event + (ev.id ? " · id: " + ev.id : ""), "SSE", job);
          update(job);
          if (TERMINAL.includes(job.status)) terminal = job;
        });
      }
      wait.hidden = true;
      return end(terminal || run.job);
    }

    async function cancelJob() {
      if (!run || run.done) return;
      if (run.loc == null) return run.ctl.abort(); // "Stop" on a plain event stream
      const url = (run.job.links && run.job.links.cancel) || run.loc;
      say("Canceling…");
      const res = await call("DELETE", url);
      const job = parse(await res.text());
      row("DELETE " + rel(url), statusText(res), job);
      if (job && job.status) {
        update(job);
        if (TERMINAL.includes(job.status)) return end(job);
      }
      if (!res.ok) say("Cancel refused: " + statusText(res) + (job && job.detail ? ". " + job.detail : ""));
    }

    // The built-in inbox for imports: created once per session and key.
    let box = null;
    let seen = new Set();
    let watching = null;
    async function ensureInbox() {
      const saved = parse(store.get("accepted.inbox") || "null");
      if (saved && saved.key === store.get(KEY)) {
        const r = await call("GET", "/v1/sandbox/inboxes/" + saved.id);
        if (r.ok) return saved;
      }
      const r = await call("POST", "/v1/sandbox/inboxes");
      if (!r.ok) throw new Error("could not create an inbox: " + statusText(r));
      const j = await r.json();
      j.key = store.get(KEY);
      store.set("accepted.inbox", JSON.stringify(j));
      return j;
    }
    function showDelivery(dl) {
      if (seen.has(dl.id)) return;
      seen.add(dl.id);
      const v = dl.verification || {};
      const rep = v.report || {};
      const type = (parse(dl.body) || {}).type || "delivery";
      const steps = (rep.steps || []).map((s) => h("li", { class: s.ok ? "tryit-ok" : "tryit-bad" },
        h("span", { class: "tryit-mark", text: s.ok ? "✓ " : "✗ " }), h("strong", { text: s.name }), s.detail ? ": " + s.detail : ""));
      // Newest first, each numbered in the order it arrived: the number is
      // set on the item, as a reversed list that grows at the top would
      // count from a stale start.
      const list = inbox.querySelector(".tryit-deliveries");
      list.prepend(h("li", { value: seen.size }, h("details", {},
        h("summary", {}, h("strong", { text: type }), " · answered " + dl.answered + " · signature " + (v.valid ? "valid ✓" : "invalid ✗") + " · " + new Date(dl.received_at).toLocaleTimeString()),
        h(H2, { text: "Headers" }),
        scrollBox("tryit-http", "Delivery headers", { text: Object.entries(dl.headers || {}).map(([k, vs]) => k + ": " + [].concat(vs).join(", ")).join("\n") }),
        h(H2, { text: "Body" }), scrollBox("tryit-json", "Delivery body", { text: pretty(dl.body) }),
        h(H2, { text: "Signature check, step by step" }), h("ol", { class: "tryit-steps" }, steps),
        v.error && h("p", { text: v.error }))));
      say("Webhook " + type + " delivered to the inbox; the inbox answered " + dl.answered + "; signature " + (v.valid ? "valid" : "invalid"));
    }
    async function refreshDeliveries() {
      const r = await call("GET", box.deliveries_url || "/v1/sandbox/inboxes/" + box.id + "/deliveries");
      if (!r.ok) return;
      const j = await r.json();
      (j.deliveries || []).slice().reverse().forEach(showDelivery);
    }
    async function watchInbox() {
      if (watching) watching.abort();
      const ctl = watching = new AbortController();
      try {
        const res = await call("GET", "/v1/sandbox/inboxes/" + box.id + "/events", { headers: { Accept: "text/event-stream" }, signal: ctl.signal });
        if (res.ok && res.body) {
          await refreshDeliveries();
          await sse(res, (ev) => {
            const dl = ev.event === "delivery" && parse(ev.data);
            if (dl && dl.id) showDelivery(dl);
          });
          return;
        }
      } catch (e) {
        if (ctl.signal.aborted) return;
      }
      // No event stream: poll the deliveries for a few minutes.
      for (let i = 0; i < 180 && !ctl.signal.aborted; i++) {
        await refreshDeliveries().catch(() => {});
        await sleep(1000, ctl.signal).catch(() => {});
      }
    }
    function showInbox() {
      seen = new Set();
      const apply = h("button", { type: "button", text: "Apply", onclick: async () => {
        const r = await call("PUT", box.behaviour_url || "/v1/sandbox/inboxes/" + box.id + "/behaviour", {
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ status: +failStatus.value, count: +failCount.value }),
        });
        say(r.ok ? "The inbox will answer " + failStatus.value + " to the next " + failCount.value + " deliveries" : "Could not change the inbox: " + statusText(r));
      } });
      inbox.replaceChildren(h(H, { text: "Webhook inbox" }),
        h("p", {}, "Deliveries to ", h("code", { text: box.url }), " appear here, newest first, signed with ", h("code", { text: box.secret }), "."),
        h("p", { class: "tryit-fail" }, h("label", { for: failStatus.id, text: "Answer" }), " ", failStatus, " ",
          h("label", { for: failCount.id, text: "to the next" }), " ", failCount, " deliveries ", apply),
        h("ol", { class: "tryit-deliveries", reversed: true }));
      inbox.hidden = false;
    }

    async function copyAs(lang, whole) {
      if (!last) return;
      const code = whole ? flowOf(flows[LANG[lang]], LANG[lang], last, auth ? store.get(KEY) : "") : COPY[lang](last);
      const what = whole ? "the whole flow" : "the request";
      copyOut.textContent = code;
      copyOut.hidden = false;
      try {
        // A browser may never settle the promise (no permission prompt in
        // headless mode, say): after a second, fall back.
        await Promise.race([navigator.clipboard.writeText(code), sleep(1000).then(() => { throw new Error("timeout"); })]);
        say("Copied " + what + " as " + lang + "; it is also shown below.");
      } catch {
        const r = d.createRange();
        r.selectNodeContents(copyOut);
        const s = getSelection();
        s.removeAllRanges();
        s.addRange(r);
        copyOut.focus();
        say("The clipboard is not available: " + what + " as " + lang + " is shown and selected below; press Ctrl+C to copy it.");
      }
    }

    async function go(sameKey) {
      if (run && !run.done) run.ctl.abort();
      run = { ctl: new AbortController(), t0: performance.now(), done: false };
      const mine = run;
      tbody.replaceChildren();
      for (const e of [resp, timeline, result, wait, barBox]) e.hidden = true;
      cancel.hidden = true;
      light("");
      let path = ds.path;
      for (const i of inputs) {
        if (!i.dataset.typed) i.value = lastOf(i.dataset.ex);
        if (!i.value.trim()) { say("Fill in the path parameter " + i.name); i.focus(); return; }
        path = path.replace("{" + i.name + "}", encodeURIComponent(i.value.trim()));
      }
      const headers = {};
      let text = null;
      try {
        say("Sending…");
        if (body) {
          text = body.value;
          if (inboxOn && inboxOn.checked) {
            box = await ensureInbox();
            const o = parse(text);
            if (o && typeof o === "object") {
              o.callback_url = box.url;
              text = JSON.stringify(o, null, 2);
              body.value = text;
            }
            showInbox();
            watchInbox();
          }
          headers["Content-Type"] = "application/json";
        }
        if (method === "POST" && auth && ds.async != null) {
          idemKey = sameKey || (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random());
          headers["Idempotency-Key"] = idemKey;
          replay.hidden = false;
        }
        const res = await call(method, path, { headers, body: text, signal: run.ctl.signal });
        last = { method, url: abs(path), headers: Object.assign({ Authorization: "Bearer " + store.get(KEY) }, headers), body: text };
        if (!auth) delete last.headers.Authorization;
        copy.hidden = false;
        if ((res.headers.get("Content-Type") || "").startsWith("text/event-stream") && res.body) {
          showResponse(res, "");
          const pre = scrollBox("tryit-json", "Events received");
          resp.append(pre);
          cancel.textContent = "Stop";
          cancel.hidden = false;
          say("Receiving events");
          run.loc = null;
          await sse(res, (ev) => { pre.textContent += (ev.id ? "id: " + ev.id + "\n" : "") + "event: " + ev.event + "\ndata: " + ev.data + "\n\n"; });
          say("The event stream ended");
          cancel.hidden = true;
          return;
        }
        const rtext = await res.text();
        showResponse(res, rtext);
        const job = parse(rtext);
        remember(job);
        row(method + " " + path, statusText(res), res.status === 202 ? job : null);
        if (res.status !== 202) {
          say(statusText(res) + (job && job.code ? ": " + job.code : ""));
          if (!res.ok && job && job.type) {
            result.replaceChildren(h(H, { text: "The request was refused" }), problem(job));
            result.className = "tryit-result tryit-failed";
            result.hidden = false;
          }
          return;
        }
        run.loc = res.headers.get("Location") || (job && job.status_url);
        const ra = Math.max(0, parseInt(res.headers.get("Retry-After"), 10) || 1);
        const replayed = res.headers.get("Idempotent-Replayed") === "true";
        say((replayed ? "Replayed: the same Idempotency-Key gave back the first answer, job " + (job && job.id) + "; no second job was started. " : "") +
          "202 Accepted: job " + (job && job.status) + ". Location " + run.loc + ", Retry-After " + ra + " s");
        run.said = job && job.status; // announced above with the 202
        update(job || {});
        if (mode() === "sse") await stream();
        else await poll(ra);
      } catch (e) {
        if (mine.ctl.signal.aborted || e.name === "AbortError") return;
        say("Request failed: " + e.message + ". Is the sandbox at " + API + " running, and does it allow this origin (CORS)?");
      } finally {
        if (mine === run) cancel.textContent = "Cancel job";
      }
    }

    form.addEventListener("submit", (e) => { e.preventDefault(); go(); });
  }

  // One panel per task: a reference page holds many, and building them all
  // in one task blocks the main thread long enough to delay a first click.
  const panels = [...d.querySelectorAll(".try-it[data-method]")];
  const next = () => {
    const p = panels.shift();
    if (!p) return;
    setup(p);
    if (panels.length) setTimeout(next, 0);
  };
  next();
})();
