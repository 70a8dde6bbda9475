// poll.mjs starts a job on the Accepted sandbox and follows it to the end:
// it polls the status monitor as Retry-After says, follows the 303 See Other
// to the result, reports a failed job by its error-catalog code, and cancels
// the job if you press Ctrl-C.
//
// Node 20+ with no packages:   node examples/js/poll.mjs
// In a browser:                import { startJob, followJob } from './poll.mjs'
// (the command-line part below runs only when Node executes this file).
//
// Environment (Node):
//   ACCEPTED_URL       the sandbox (default http://localhost:8080)
//   ACCEPTED_KEY       your API key; when empty, a new sandbox key is made and printed
//   ACCEPTED_KIND      report (default) or export
//   ACCEPTED_SIMULATE  a sandbox scenario as JSON, e.g. {"outcome":"fail","fail_code":"upstream_unavailable"}
//   ACCEPTED_TIMEOUT   seconds to wait for the job in all (default 300)
//   ACCEPTED_OUT       directory an export is saved in (default .)
//
// Exit status: 0 done, 1 error or timeout, 3 the job failed, 130 cancelled by a signal.

// region start
// startJob sends the POST that creates the job. The Idempotency-Key makes a
// retry safe: if the first POST reached the server but its answer was lost,
// the retry replays that answer instead of starting a second job. Resolves
// to the job, its status monitor's URL, and the wait before the first poll.
export async function startJob(baseUrl, kind, body, { key, signal }) {
  const init = {
    method: 'POST',
    signal,
    headers: {
      Authorization: `Bearer ${key}`,
      'Content-Type': 'application/json',
      'Idempotency-Key': crypto.randomUUID(),
    },
    body: JSON.stringify(body),
  };
  const url = new URL(`/v1/${kind}s`, baseUrl);
  let res;
  try {
    res = await fetch(url, init);
  } catch (err) {
    if (signal?.aborted) throw err;
    console.error(`POST failed (${err.message}); retrying once with the same Idempotency-Key`);
    res = await fetch(url, init); // fetch throws a TypeError on network errors
  }
  if (res.status !== 202) throw await problemError(res); // a 4xx problem: nothing was created
  return {
    job: await res.json(),
    statusUrl: new URL(res.headers.get('Location'), url).href, // equal to status_url
    wait: retryAfter(res) ?? 1000,
  };
}
// endregion start

// region poll
// followJob reads the status monitor at url until the job is over, first after
// `wait` ms (the 202's Retry-After). A running job answers 200 with Retry-After:
// we obey it. Without it, and on 429 or 503, we back off (capped, with jitter so
// that clients do not poll in step). Resolves to { job, resultUrl }, resultUrl
// being the 303's Location once the job succeeded. Abort signal to stop.
export async function followJob(url, { key, signal, onUpdate = () => {}, wait = 0 }) {
  const headers = { Authorization: `Bearer ${key}` };
  let job;
  for (let attempt = 0; ; attempt++) {
    await sleep(wait, signal);
    wait = backoff(attempt); // unless the server says otherwise
    let res;
    try {
      res = await fetch(url, { headers, signal, redirect: 'manual' });
    } catch (err) {
      if (signal?.aborted) throw err;
      console.error(`poll failed (${err.message}); retrying`); // a GET is safe to repeat
    }
    if (res?.status === 303) { // done: the result is at Location
      return { job: await res.json(), resultUrl: new URL(res.headers.get('Location'), url).href };
    } else if (res?.type === 'opaqueredirect') { // browsers hide a redirect: let fetch follow it
      const result = await fetch(url, { headers, signal });
      await result.body?.cancel();
      // Only a job that succeeded answers 303, but the browser hid its body:
      // the last state we read stands in, marked as it now is.
      return { job: { ...job, status: 'succeeded' }, resultUrl: result.url };
    } else if (res?.status === 200) {
      job = await res.json();
      if (job.status === 'failed' || job.status === 'canceled') return { job };
      const after = retryAfter(res);
      if (after !== undefined) [wait, attempt] = [after, -1]; // the server knows best
    } else if (res?.status === 429 || res?.status === 503) {
      wait = Math.max(wait, retryAfter(res) ?? 0);
      await res.body?.cancel();
    } else if (res) {
      throw await problemError(res); // 401, 404, 410: polling again will not help
    }
    onUpdate(job, wait, res?.status);
  }
}
// endregion poll

// backoff is 1 s doubling per attempt, capped at 30 s, with "equal jitter":
// a random wait between half and all of it. In milliseconds.
function backoff(attempt) {
  const ms = Math.min(1000 * 2 ** Math.min(attempt, 5), 30_000);
  return ms / 2 + Math.random() * (ms / 2);
}

// retryAfter reads Retry-After as delay-seconds, in milliseconds.
function retryAfter(res) {
  const v = res.headers.get('Retry-After');
  return v !== null && /^\d+$/.test(v) ? Number(v) * 1000 : undefined;
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => { signal?.removeEventListener('abort', stop); resolve(); }, ms);
    const stop = () => { clearTimeout(timer); reject(signal.reason); };
    signal?.addEventListener('abort', stop, { once: true });
  });
}

// ProblemError carries an RFC 9457 problem; problem.code is the catalog entry.
export class ProblemError extends Error {
  constructor(res, problem) {
    super(`${res.status} ${problem.code ?? ''}: ${problem.title ?? res.statusText} ${problem.detail ?? ''}`.trim());
    this.status = res.status;
    this.problem = problem;
  }
}

async function problemError(res) {
  const isProblem = (res.headers.get('Content-Type') ?? '').startsWith('application/problem+json');
  return new ProblemError(res, isProblem ? await res.json() : { title: await res.text() });
}

// region cancel
// cancelJob is DELETE on the status monitor: the work stops on the server,
// so nobody pays for a result no one will read. A 409 means the job had
// already finished; its result stays readable.
export async function cancelJob(url, { key }) {
  const res = await fetch(url, {
    method: 'DELETE',
    headers: { Authorization: `Bearer ${key}` },
    signal: AbortSignal.timeout(5000), // the CLI's own signal has already fired
  });
  if (res.status === 200) return (await res.json()).status; // "canceled"
  if (res.status === 409) return 'already finished';
  throw await problemError(res);
}
// endregion cancel

// The command line. Everything Node-only is loaded here, so browsers can
// import this module.
async function main() {
  const env = process.env;
  const base = env.ACCEPTED_URL || 'http://localhost:8080';
  const kind = env.ACCEPTED_KIND || 'report';
  const timeout = Number(env.ACCEPTED_TIMEOUT || 300) * 1000;
  let key = env.ACCEPTED_KEY;
  if (!key) {
    const res = await fetch(new URL('/v1/sandbox/keys', base), { method: 'POST' });
    if (res.status !== 201) throw await problemError(res);
    key = (await res.json()).key;
    console.error(`using a new sandbox key ${key} (set ACCEPTED_KEY to reuse it)`);
  }

  // Ctrl-C and SIGTERM abort `interrupted`; the deadline aborts only `signal`.
  const interrupted = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => interrupted.abort());
  const signal = AbortSignal.any([interrupted.signal, AbortSignal.timeout(timeout)]);

  const body = kind === 'export'
    ? { format: 'csv', from: '2026-01-01', to: '2026-01-31' }
    : { title: 'January', from: '2026-01-01', to: '2026-01-31' };
  if (env.ACCEPTED_SIMULATE) body.simulate = JSON.parse(env.ACCEPTED_SIMULATE);

  const { job: started, statusUrl, wait } = await startJob(base, kind, body, { key, signal });
  console.log(`started ${started.id} (${started.kind}): ${started.status}; status at ${statusUrl}`);
  let outcome;
  try {
    outcome = await followJob(statusUrl, {
      key, signal, wait,
      onUpdate: (job, wait, status) => console.log(status === 200
        ? `${job.id}: ${job.status} ${job.percent_complete}%; next poll in ${(wait / 1000).toFixed(1)}s  ${job.message ?? ''}`
        : `${started.id}: ${status ?? 'network error'}; next poll in ${(wait / 1000).toFixed(1)}s`),
    });
  } catch (err) {
    if (interrupted.signal.aborted) {
      console.error(`interrupted: canceling ${started.id}`);
      console.error(`${started.id}: ${await cancelJob(statusUrl, { key })}`);
      return 130;
    }
    if (signal.aborted) {
      console.error(`gave up after ${timeout / 1000}s; the job goes on: ${statusUrl}`);
      return 1;
    }
    throw err;
  }
  const { job, resultUrl } = outcome;
  if (job.status === 'failed') return failure(job);
  if (job.status === 'canceled') {
    console.log(`${job.id} was canceled`);
    return 1;
  }
  if (kind === 'export') await saveExport(resultUrl, new URL(job.links.resource, base), { key, signal, dir: env.ACCEPTED_OUT || '.' });
  else await printReport(resultUrl, { key, signal });
  return 0;
}

// region failure
// failure reports a failed job. The error is an RFC 9457 problem whose code
// names an entry of the error catalog: branch on the code, show the title,
// and quote the job id to support.
function failure(job) {
  const p = job.error ?? { code: 'unknown', title: 'the job failed without an error' };
  console.error(`job ${job.id} failed: ${p.code}: ${p.title}`);
  if (p.detail) console.error(`  ${p.detail}\n  more: ${p.type}`);
  return 3;
}
// endregion failure

// region result
// printReport reads the report the 303 pointed at.
async function printReport(resultUrl, { key, signal }) {
  const res = await fetch(resultUrl, { headers: { Authorization: `Bearer ${key}` }, signal });
  if (res.status !== 200) throw await problemError(res);
  const r = await res.json();
  const revenue = (r.totals.revenue_cents / 100).toFixed(2);
  console.log(`report ${r.id} "${r.title}" ${r.from}..${r.to}: ${r.days.length} days, ` +
    `${r.totals.orders} orders, revenue ${revenue}, ${r.totals.refunds} refunds`);
}
// endregion result

// region export
// saveExport downloads the file the 303 pointed at and checks its SHA-256
// against the one the export resource publishes, before writing it: never a
// corrupt file that looks finished. (The file is held in memory; the Go
// example streams it to disk instead.)
async function saveExport(fileUrl, exportUrl, { key, signal, dir }) {
  const { createHash } = await import('node:crypto');
  const { writeFile } = await import('node:fs/promises');
  const { join, basename } = await import('node:path');
  const headers = { Authorization: `Bearer ${key}` };
  const meta = await fetch(exportUrl, { headers, signal });
  if (meta.status !== 200) throw await problemError(meta);
  const { file } = await meta.json();
  const res = await fetch(fileUrl, { headers, signal });
  if (res.status !== 200) throw await problemError(res);
  const data = Buffer.from(await res.arrayBuffer());
  const sum = createHash('sha256').update(data).digest('hex');
  if (sum !== file.sha256) throw new Error(`${file.name}: sha256 ${sum}, the export says ${file.sha256}`);
  const path = join(dir, basename(file.name));
  await writeFile(path, data);
  console.log(`saved ${path} (${data.length} bytes), sha256 ${sum} verified`);
}
// endregion export

if (typeof process !== 'undefined' && process.argv?.[1]) {
  const { pathToFileURL } = await import('node:url');
  if (import.meta.url === pathToFileURL(process.argv[1]).href) {
    main().then((code) => process.exit(code), (err) => {
      console.error(err.message);
      process.exit(1);
    });
  }
}
