// events.mjs follows a job on the Accepted sandbox live, with server-sent
// events instead of polling, and resumes where it left off (Last-Event-ID)
// when the connection drops.
//
// Node 20 has no EventSource, and a browser's EventSource cannot send an
// Authorization header, so this reads the stream with fetch: the same code
// runs in Node 20+ and in browsers.
//
// Node:        node examples/js/events.mjs
// In a browser: import { followEvents } from './events.mjs'
//
// Environment (Node):
//   ACCEPTED_URL        the sandbox (default http://localhost:8080)
//   ACCEPTED_KEY        your API key; when empty, a new sandbox key is made and printed
//   ACCEPTED_JOB        a job id to follow; when empty, a new report is started
//   ACCEPTED_SIMULATE   the new report's sandbox scenario as JSON, e.g. {"duration_seconds":20}
//   ACCEPTED_DROP_ONCE  1: drop the connection once after the first event, to see the resume
//
// Exit status: 0 the job succeeded, 1 error, 3 the job failed, 130 interrupted.

const TERMINAL = new Set(['succeeded', 'failed', 'canceled']);

// An answer that reconnecting cannot fix (401, 404, 410…).
class FatalError extends Error {}

// region resume
// followEvents reads the job's event stream at url until its terminal event
// and resolves to the job. When the connection drops it waits the server's
// retry hint (doubling while reconnects keep failing) and reconnects with
// Last-Event-ID, so the server sends only what changed since the last event
// we have. onEvent(event, job) sees every event; dropOnce is for demos.
export async function followEvents(url, { key, signal, onEvent = () => {}, onReconnect = () => {}, dropOnce = false }) {
  const state = { lastEventId: '', retry: 2000, job: undefined };
  let wait = state.retry;
  for (;;) {
    const seen = state.lastEventId;
    const conn = new AbortController(); // lets us drop this one connection
    const both = signal ? AbortSignal.any([signal, conn.signal]) : conn.signal;
    let reason;
    try {
      const done = await connect(url, key, both, state, (event, job) => {
        onEvent(event, job);
        if (dropOnce && !TERMINAL.has(event.type)) {
          dropOnce = false;
          conn.abort(new Error(`dropped on purpose after event ${event.id}`));
        }
      });
      if (done) return state.job;
      reason = new Error('the stream ended');
    } catch (err) {
      if (signal?.aborted || err instanceof FatalError) throw err;
      reason = conn.signal.aborted ? conn.signal.reason : err;
    }
    if (state.lastEventId !== seen) wait = state.retry; // events arrived: the connection was good
    onReconnect(state.lastEventId, wait, reason);
    await new Promise((resolve) => setTimeout(resolve, wait));
    wait = Math.min(2 * wait, 30_000);
  }
}
// endregion resume

// connect opens the stream once and reads it; true when the terminal event came.
async function connect(url, key, signal, state, onEvent) {
  const headers = { Authorization: `Bearer ${key}`, Accept: 'text/event-stream' };
  if (state.lastEventId) headers['Last-Event-ID'] = state.lastEventId;
  const res = await fetch(url, { headers, signal });
  if (res.status === 204) return true; // finished, and we already have its last event
  if (res.status === 429 || res.status >= 500) throw new Error(`${res.status} ${res.statusText}`);
  if (res.status !== 200) throw new FatalError(`GET ${url}: ${res.status} ${await res.text()}`);
  for await (const event of readEvents(res.body)) {
    if (event.retry !== undefined) state.retry = event.retry;
    if (event.data === undefined) continue; // only a retry hint
    state.lastEventId = event.id;
    state.job = JSON.parse(event.data);
    onEvent(event, state.job);
    if (TERMINAL.has(event.type)) return true;
  }
  return false;
}

// readEvents parses text/event-stream (WHATWG HTML §9.2): yields
// { id, type, data, retry } per event. Comments (": keep-alive") are skipped.
async function* readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let id = '';
  let type = '';
  let data = [];
  let retry;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    for (let m; (m = /\r\n|\r|\n/.exec(buf));) {
      if (m[0] === '\r' && m.index === buf.length - 1) break; // a "\n" may follow
      const line = buf.slice(0, m.index);
      buf = buf.slice(m.index + m[0].length);
      if (line === '') { // a blank line dispatches the event
        if (data.length > 0 || retry !== undefined) {
          yield { id, type: type || 'message', data: data.length > 0 ? data.join('\n') : undefined, retry };
        }
        [type, data, retry] = ['', [], undefined]; // the id carries over, as the spec says
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const v = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') type = v;
      else if (field === 'data') data.push(v);
      else if (field === 'id' && !v.includes('\0')) id = v;
      else if (field === 'retry' && /^\d+$/.test(v)) retry = Number(v);
    }
  }
}

async function main() {
  const env = process.env;
  const base = env.ACCEPTED_URL || 'http://localhost:8080';
  let key = env.ACCEPTED_KEY;
  const post = async (path, body, want) => {
    const res = await fetch(new URL(path, base), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(key && { Authorization: `Bearer ${key}` }) },
      body: body && JSON.stringify(body),
    });
    if (res.status !== want) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  if (!key) {
    key = (await post('/v1/sandbox/keys', undefined, 201)).key;
    console.error(`using a new sandbox key ${key} (set ACCEPTED_KEY to reuse it)`);
  }
  let jobId = env.ACCEPTED_JOB;
  if (!jobId) {
    const body = { title: 'Live', from: '2026-01-01', to: '2026-01-31' };
    if (env.ACCEPTED_SIMULATE) body.simulate = JSON.parse(env.ACCEPTED_SIMULATE);
    jobId = (await post('/v1/reports', body, 202)).id;
    console.log(`started ${jobId}`);
  }

  const interrupted = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => interrupted.abort());
  let job;
  try {
    job = await followEvents(new URL(`/v1/jobs/${jobId}/events`, base), {
      key,
      signal: interrupted.signal,
      dropOnce: env.ACCEPTED_DROP_ONCE === '1',
      onEvent: (ev, j) => console.log(`event ${ev.id} ${ev.type}: ${j.status} ${j.percent_complete}%  ${j.message ?? ''}`),
      onReconnect: (id, wait, why) => console.log(`connection lost (${why?.message}); reconnecting in ${(wait / 1000).toFixed(1)}s with Last-Event-ID: ${id}`),
    });
  } catch (err) {
    if (!interrupted.signal.aborted) throw err;
    console.error(`interrupted; the job goes on (DELETE /v1/jobs/${jobId} cancels it)`);
    return 130;
  }
  if (job.status === 'succeeded') {
    console.log(`done: the result is at ${job.result_url}`);
    return 0;
  }
  if (job.status === 'failed') {
    console.error(`job ${job.id} failed: ${job.error?.code}: ${job.error?.title}`);
    return 3;
  }
  console.log(`job ${job.id} ended ${job.status}`);
  return 1;
}

if (typeof process !== 'undefined' && process.argv?.[1]) {
  const { pathToFileURL } = await import('node:url');
  if (import.meta.url === pathToFileURL(process.argv[1]).href) {
    main().then((code) => process.exit(code), (err) => {
      console.error(err.message);
      process.exit(1);
    });
  }
}
