// statusMonitor finds, for every 202 response under paths, the status
// monitor it points at, and checks it.
//
// check: exists     report a 202 whose monitor cannot be found (or whose
//                   Location example or link leads nowhere).
// check: responses  report a monitor that does not declare each status in
//                   functionOptions.responses (default 200, 303 and 410).
//
// How the monitor is found, first match wins:
//   1. links: the 202's OpenAPI links (operationId or a local
//      operationRef) that name a GET operation;
//   2. URLs: the Location header's examples, then status URL fields in the
//      202 body's examples and schema examples (status_url, statusUrl,
//      monitor_url, href, links.self, links.status …), matched against the
//      GET paths ({param} matches one segment; a URL may carry a base path
//      in front, such as /api from the server URL); the most literal
//      template wins;
//   3. the GET operations that declare a 303 response (a monitor's
//      answer on success), those sharing the longest path prefix with
//      the 202's path;
//   4. the GET operations whose path looks like a monitor: /jobs/{id},
//      /operations/{id}, /tasks/{id}, /runs/{id}, …/{id}/status, again
//      those sharing the longest path prefix with the 202's path.
// When 1 or 2 has links or URLs but none leads to a GET operation, that is
// reported as it is (a broken pointer), without falling back to 3 and 4.
// Given: the document root.
import { createRulesetFunction } from '@stoplight/spectral-core';
import { examplesOf, header, isObject, jsonMedia, label, notAJob, operations } from './lib/oas.js';

const URL_FIELDS = ['status_url', 'statusUrl', 'statusURL', 'status_uri', 'monitor_url', 'monitorUrl', 'href', 'location', 'Location'];
const LINK_KEYS = ['self', 'status', 'monitor'];
const MONITORISH = /^(jobs?|operations?|tasks?|runs?|monitors?|actions?|requests?|queue|status(es)?|long-?running-?operations?)$/i;

const WHY = {
  200: 'while the job runs it answers 200 with the job and Retry-After',
  303: 'once the job succeeded it answers 303 See Other with Location of the result (RFC 9110 §15.4.4; not 302, not 200 with a link)',
  410: 'once a finished job has passed its retention window it answers 410 Gone',
};

const looksLikeURL = s => typeof s === 'string' && (s.startsWith('/') || /^https?:\/\//i.test(s));

function urlPath(s) {
  let p = s;
  if (/^https?:\/\//i.test(s)) {
    try {
      p = new URL(s).pathname;
    } catch {
      return undefined;
    }
  }
  return p.split(/[?#]/)[0];
}

const segments = p => p.split('/').filter(Boolean);

function segmentRegExp(seg) {
  const parts = seg.split(/(\{[^}]*\})/).filter(Boolean);
  const src = parts.map(p => (p.startsWith('{') ? '[^/]+' : p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('');
  return new RegExp(`^${src}$`);
}

// match scores how well a path template matches a URL path: -1 for no
// match; otherwise the number of literal segments, plus 1000 when the
// template covers the whole URL path (no base path in front).
function match(template, path) {
  const t = segments(template);
  const u = segments(path);
  if (u.length < t.length) return -1;
  const off = u.length - t.length;
  let literal = 0;
  for (let i = 0; i < t.length; i++) {
    if (!segmentRegExp(t[i]).test(u[off + i])) return -1;
    if (!t[i].includes('{')) literal++;
  }
  return literal + (off === 0 ? 1000 : 0);
}

function commonPrefix(a, b) {
  const x = segments(a);
  const y = segments(b);
  let n = 0;
  while (n < x.length && n < y.length && (x[n] === y[n] || (x[n].startsWith('{') && y[n].startsWith('{')))) n++;
  return n;
}

const best = (items, score) => {
  let top = -Infinity;
  let out = [];
  for (const it of items) {
    const s = score(it);
    if (s > top) [top, out] = [s, [it]];
    else if (s === top) out.push(it);
  }
  return out;
};

// urlsOf collects the URLs a 202 response gives for its monitor.
function urlsOf(response) {
  const urls = [];
  const add = v => {
    if (looksLikeURL(v)) urls.push(v);
    else if (isObject(v) && looksLikeURL(v.href)) urls.push(v.href);
  };
  const loc = header(response, 'Location');
  if (loc && isObject(loc.header)) {
    examplesOf(loc.header).forEach(add);
    examplesOf(loc.header.schema).forEach(add);
  }
  const json = jsonMedia(response.content);
  if (!json || !isObject(json.media)) return urls;
  const fromBody = body => {
    if (!isObject(body)) return;
    URL_FIELDS.forEach(f => add(body[f]));
    for (const l of ['links', '_links']) {
      if (isObject(body[l])) LINK_KEYS.forEach(k => add(body[l][k]));
    }
  };
  examplesOf(json.media).forEach(fromBody);
  const schema = json.media.schema;
  if (isObject(schema)) {
    examplesOf(schema).forEach(fromBody);
    const props = isObject(schema.properties) ? schema.properties : {};
    URL_FIELDS.forEach(f => examplesOf(props[f]).forEach(add));
    for (const l of ['links', '_links']) {
      const lp = isObject(props[l]) && isObject(props[l].properties) ? props[l].properties : {};
      LINK_KEYS.forEach(k => examplesOf(lp[k]).forEach(add));
    }
  }
  return urls;
}

function decodePointer(ref) {
  if (typeof ref !== 'string' || !ref.startsWith('#/')) return undefined;
  return ref
    .slice(2)
    .split('/')
    .map(s => decodeURIComponent(s).replace(/~1/g, '/').replace(/~0/g, '~'));
}

// monitorOf returns {monitors, via} or {error}.
function monitorOf(gets, from, response) {
  if (isObject(response.links) && Object.keys(response.links).length > 0) {
    const names = [];
    const found = [];
    for (const link of Object.values(response.links)) {
      if (!isObject(link)) continue;
      if (typeof link.operationId === 'string') {
        names.push(`operationId ${link.operationId}`);
        found.push(...gets.filter(g => g.op.operationId === link.operationId));
      } else if (typeof link.operationRef === 'string') {
        names.push(`operationRef ${link.operationRef}`);
        const p = decodePointer(link.operationRef);
        if (p && p.length === 3 && p[0] === 'paths' && p[2] === 'get') found.push(...gets.filter(g => g.path === p[1]));
      }
    }
    if (found.length) return { monitors: [...new Set(found)], via: 'its links' };
    if (names.length) {
      return { error: `its links (${names.join(', ')}) name no GET operation of this document; link to the status monitor's GET operation` };
    }
  }
  const urls = urlsOf(response);
  if (urls.length) {
    const scored = [];
    for (const u of urls) {
      const p = urlPath(u);
      if (p === undefined) continue;
      for (const g of gets) {
        const s = match(g.path, p);
        if (s >= 0) scored.push({ g, s });
      }
    }
    if (scored.length) {
      const top = best(scored, x => x.s).map(x => x.g);
      return { monitors: [...new Set(top)], via: 'the URL in its examples' };
    }
    return {
      error: `no GET operation's path matches the URL it points at (${urls[0]}); declare the status monitor there as a GET operation`,
    };
  }
  const with303 = gets.filter(g => isObject(g.op.responses) && '303' in g.op.responses);
  if (with303.length) return { monitors: best(with303, g => commonPrefix(g.path, from.path)), via: 'its 303 response' };
  const shaped = gets.filter(g => {
    const s = segments(g.path);
    const last = s[s.length - 1] || '';
    const prev = s[s.length - 2] || '';
    return (last.startsWith('{') && MONITORISH.test(prev)) || /^status$/i.test(last);
  });
  if (shaped.length) return { monitors: best(shaped, g => commonPrefix(g.path, from.path)), via: 'its path' };
  return {
    error:
      'no status monitor was found: give the Location header an example URL (or add a links entry) and declare that URL as a GET operation',
  };
}

export default createRulesetFunction(
  {
    input: null,
    options: {
      type: 'object',
      additionalProperties: false,
      required: ['check'],
      properties: {
        check: { enum: ['exists', 'responses'] },
        responses: { type: 'array', items: { type: 'string', pattern: '^[1-5][0-9][0-9]$' }, minItems: 1 },
      },
    },
  },
  (doc, opts) => {
    if (!isObject(doc)) return [];
    const ops = operations(doc);
    const gets = ops.filter(o => o.method === 'get');
    const results = [];
    const reported = new Set();
    for (const from of ops) {
      const responses = isObject(from.op.responses) ? from.op.responses : {};
      const response = responses['202'];
      if (!isObject(response) || notAJob(from.op)) continue;
      const found = monitorOf(gets, from, response);
      if (opts.check === 'exists') {
        if (found.error) {
          results.push({
            message: `${label(from.method, from.path)} answers 202, but ${found.error}, answering 200 while the job runs, 303 when it is done and 410 once it expired.`,
            path: [...from.at, 'responses', '202'],
          });
        }
        continue;
      }
      for (const m of found.monitors || []) {
        for (const status of opts.responses || ['200', '303', '410']) {
          const have = isObject(m.op.responses) ? m.op.responses : {};
          if (status in have || (status.startsWith('2') && '2XX' in have)) continue;
          const key = `${m.path} ${status}`;
          if (reported.has(key)) continue;
          reported.add(key);
          results.push({
            message: `${label('get', m.path)} is the status monitor of ${label(from.method, from.path)} (found by ${found.via}), but it declares no ${status} response; add it: ${WHY[status] || 'the monitor answers it'}.`,
            path: [...m.at, 'responses'],
          });
        }
      }
    }
    return results;
  },
);
