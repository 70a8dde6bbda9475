// run.mjs drives the JavaScript examples the way a web page would: it
// imports them as ES modules and calls their exported functions against a
// sandbox on another origin. Each result is written into the page as JSON
// for the Go test to read; document.body.dataset.done marks the end.
import { startJob, followJob, ProblemError } from '/examples/js/poll.mjs';
import { followEvents } from '/examples/js/events.mjs';

const sandbox = new URL(location.href).searchParams.get('sandbox');
const show = (id, value) => { document.getElementById(id).textContent = JSON.stringify(value); };
const report = { title: 'Browser', from: '2026-01-01', to: '2026-01-31' };

async function run() {
  const res = await fetch(new URL('/v1/sandbox/keys', sandbox), { method: 'POST' });
  const { key } = await res.json();
  const signal = AbortSignal.timeout(30_000);

  // A report followed by polling, long enough to be seen running: the
  // browser hides the final 303 from fetch.
  const ok = await startJob(sandbox, 'report', { ...report, simulate: { duration_seconds: 40 } }, { key, signal });
  const updates = [];
  const done = await followJob(ok.statusUrl, { key, signal, wait: ok.wait, onUpdate: (job, wait, status) => updates.push(status) });
  const result = await fetch(done.resultUrl, { headers: { Authorization: `Bearer ${key}` }, signal });
  show('report', { id: ok.job.id, statusUrl: ok.statusUrl, status: done.job.status, resultUrl: done.resultUrl, resultStatus: result.status, resultTitle: (await result.json()).title, updates });

  // A report the sandbox fails on purpose: the job's problem names the catalog code.
  const bad = await startJob(sandbox, 'report', { ...report, simulate: { outcome: 'fail', fail_code: 'upstream_unavailable' } }, { key, signal });
  const failed = await followJob(bad.statusUrl, { key, signal, wait: bad.wait });
  show('failed', { status: failed.job.status, code: failed.job.error?.code });

  // A request the API refuses: a ProblemError with the RFC 9457 problem.
  try {
    await startJob(sandbox, 'report', { title: 'Backwards', from: '2026-02-01', to: '2026-01-01' }, { key, signal });
    show('bad', { thrown: false });
  } catch (err) {
    show('bad', { thrown: err instanceof ProblemError, status: err.status, code: err.problem?.code });
  }

  // The same job followed live, dropping the stream once to resume with Last-Event-ID.
  const live = await startJob(sandbox, 'report', { ...report, simulate: { duration_seconds: 40 } }, { key, signal });
  const events = [];
  const resumedAfter = [];
  const last = await followEvents(new URL(live.job.links.self + '/events', sandbox).href, {
    key, signal, dropOnce: true,
    onEvent: (event) => events.push(event.type),
    onReconnect: (lastId) => resumedAfter.push(lastId),
  });
  show('events', { status: last.status, events, resumedAfter });
}

run().catch((err) => show('error', String(err?.stack ?? err))).finally(() => { document.body.dataset.done = '1'; });
