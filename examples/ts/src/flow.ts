// flow.ts runs the report flow with openapi-fetch and the types that
// openapi-typescript generates from the sandbox's spec (src/api.d.ts): it
// gets a key, starts a report, polls the status monitor as Retry-After says,
// reads the 303 See Other as "done, the result is at Location", and prints
// the report. A failed job prints its error-catalog code; Ctrl-C cancels
// the job.
//
//   cd examples/ts && npm ci && npm run build && npm start    (Node 20 or later)
//
// Environment:
//   ACCEPTED_URL       the sandbox (default http://localhost:8080)
//   ACCEPTED_KEY       your API key; when empty, a new sandbox key is made and printed
//   ACCEPTED_SIMULATE  a sandbox scenario as JSON, e.g. {"outcome":"fail","fail_code":"upstream_unavailable"}
//   ACCEPTED_TIMEOUT   seconds to wait for the job in all (default 300)
//
// Exit status: 0 done, 1 error or timeout, 3 the job failed, 130 cancelled by a signal.

import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./api.js";

type Job = components["schemas"]["Job"];
type Problem = components["schemas"]["Problem"];
type Simulate = components["schemas"]["Simulate"];

// region client
// newClient makes the generated client send fetch's `redirect: "manual"`.
// The status monitor answers 303 See Other when the job has succeeded, and
// fetch follows a 303 by itself: openapi-fetch would then hand back the
// report as `data`, typed as a Job. Kept as it is (in Node; see the guide
// for browsers), the 303 is not a 2xx, so openapi-fetch puts its body, the
// finished job, in `error`.
export function newClient(baseUrl: string, key: () => string): Client<paths> {
  const client = createClient<paths>({ baseUrl, redirect: "manual" });
  // The spec's bearerAuth: every request but POST /v1/sandbox/keys needs the key.
  client.use({
    onRequest({ request }) {
      if (key()) request.headers.set("Authorization", `Bearer ${key()}`);
      return request;
    },
  });
  return client;
}
// endregion client

// region start
// startJob creates the report (createReport). The Idempotency-Key makes a
// retry safe: if the first POST reached the server but its answer was lost,
// the retry replays that answer instead of starting a second job. Resolves
// to the job and the wait before the first poll, in milliseconds.
export async function startJob(client: Client<paths>, simulate: Simulate | undefined, signal: AbortSignal) {
  const init = {
    params: { header: { "Idempotency-Key": crypto.randomUUID() } },
    body: { title: "January", from: "2026-01-01", to: "2026-01-31", simulate },
    signal,
  };
  let res;
  try {
    res = await client.POST("/v1/reports", init);
  } catch (err) {
    if (signal.aborted) throw err;
    console.error(`POST failed (${(err as Error).message}); retrying once with the same Idempotency-Key`);
    res = await client.POST("/v1/reports", init); // fetch throws a TypeError on network errors
  }
  if (res.data === undefined) throw problemError(res.response, res.error); // nothing was created
  return { job: res.data, wait: retryAfter(res.response) ?? 1000 };
}
// endregion start

// region poll
// followJob reads the status monitor (getJob) until the job is over, first
// after `wait` ms (the 202's Retry-After). A running job answers 200 with
// Retry-After: we obey it. Without it, on 429 and on a 5xx, we back off
// (capped, with jitter). The 303 means the job succeeded: its Location is
// the result.
export async function followJob(client: Client<paths>, job: Job, wait: number, signal: AbortSignal) {
  for (let attempt = 0; ; attempt++) {
    await sleep(wait, signal);
    wait = backoff(attempt); // unless the server says otherwise
    let res;
    try {
      res = await client.GET("/v1/jobs/{id}", { params: { path: { id: job.id } }, signal });
    } catch (err) {
      if (signal.aborted) throw err;
      console.error(`poll failed (${(err as Error).message}); retrying in ${seconds(wait)}`); // a GET is safe to repeat
      continue;
    }
    const { data, error, response } = res;
    if (response.status === 303) {
      // Done: the result is at Location. openapi-fetch put the body in
      // `error` (it is not a 2xx) and types it as a problem; it is the job.
      const location = response.headers.get("Location");
      if (!location) throw new Error("303 without a Location");
      return { job: (error as unknown as Job | undefined) ?? { ...job, status: "succeeded" }, location };
    } else if (data !== undefined) {
      job = data;
      if (job.status === "failed" || job.status === "canceled") return { job };
      const after = retryAfter(response);
      if (after !== undefined) [wait, attempt] = [after, -1]; // the server knows best
      console.log(`${job.id}: ${job.status} ${job.percent_complete}%; next poll in ${seconds(wait)}  ${job.message ?? ""}`);
    } else if (response.status === 429 || response.status >= 500) {
      wait = Math.max(wait, retryAfter(response) ?? 0);
      console.log(`${job.id}: ${response.status}; next poll in ${seconds(wait)}`);
    } else {
      throw problemError(response, error); // 401, 404, 410: polling again will not help
    }
  }
}
// endregion poll

// region result
// printReport reads the report the 303 pointed at. openapi-fetch calls
// operations by path and parameters, so the report's id is taken from
// Location (/v1/reports/rpt_…) and passed to getReport.
export async function printReport(client: Client<paths>, location: string, signal: AbortSignal) {
  const id = /\/v1\/reports\/([^/?#]+)$/.exec(new URL(location, "http://x").pathname)?.[1];
  if (!id) throw new Error(`the 303 points at ${location}, not at a report`);
  const { data: rep, error, response } = await client.GET("/v1/reports/{id}", { params: { path: { id } }, signal });
  if (!rep) throw problemError(response, error); // 409 result_not_ready, 410 job_expired…
  const t = rep.totals;
  const revenue = `${Math.trunc(t.revenue_cents / 100)}.${String(t.revenue_cents % 100).padStart(2, "0")}`;
  console.log(`report ${rep.id} ${JSON.stringify(rep.title)} ${rep.from}..${rep.to}: ${rep.days?.length ?? 0} days, ` +
    `${t.orders} orders, revenue ${revenue}, ${t.refunds} refunds`);
}
// endregion result

// region failure
// failure reports a failed job. Its error is an RFC 9457 problem whose code
// names an entry of the error catalog: branch on the code, show the title,
// and quote the job id to support.
function failure(job: Job): number {
  const p: Problem = job.error ?? { code: "unknown", title: "the job failed without an error", status: 0, type: "" };
  console.error(`job ${job.id} failed: ${p.code}: ${p.title}`);
  if (p.detail) console.error(`  ${p.detail}\n  more: ${p.type}`);
  return 3;
}
// endregion failure

// region cancel
// cancelJob (DELETE on the status monitor) stops the work on the server.
// The signal has already fired, so this request gets a timeout of its own.
async function cancelJob(client: Client<paths>, job: Job): Promise<number> {
  console.error(`interrupted: canceling ${job.id}`);
  try {
    const { response, error } = await client.DELETE("/v1/jobs/{id}", {
      params: { path: { id: job.id } },
      signal: AbortSignal.timeout(5000),
    });
    if (response.status === 200) console.error(`${job.id} canceled`);
    else if (response.status === 409) console.error(`${job.id} had already finished`); // its result stays readable
    else console.error(`cancel: ${problemError(response, error).message}`);
  } catch (err) {
    console.error(`cancel failed: ${(err as Error).message}`);
  }
  return 130;
}
// endregion cancel

// problemError names an error answer's catalog code.
function problemError(response: Response, error: unknown): Error {
  const p = error as Partial<Problem> | undefined;
  return new Error(`${response.url}: ${response.status} ${p?.code ?? ""}: ${p?.title ?? response.statusText} ${p?.detail ?? ""}`.trim());
}

// retryAfter reads Retry-After as delay-seconds, in milliseconds.
function retryAfter(res: Response): number | undefined {
  const v = res.headers.get("Retry-After");
  return v !== null && /^\d+$/.test(v) ? Number(v) * 1000 : undefined;
}

// backoff is 1 s doubling per attempt, capped at 30 s, with "equal jitter":
// a random wait between half and all of it. In milliseconds.
function backoff(attempt: number): number {
  const ms = Math.min(1000 * 2 ** Math.min(attempt, 5), 30_000);
  return ms / 2 + Math.random() * (ms / 2);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const stop = () => { clearTimeout(timer); reject(signal.reason); };
    const timer = setTimeout(() => { signal.removeEventListener("abort", stop); resolve(); }, ms);
    signal.addEventListener("abort", stop, { once: true });
  });
}

async function main(): Promise<number> {
  const env = process.env;
  const timeout = Number(env.ACCEPTED_TIMEOUT || 300) * 1000;
  const simulate = env.ACCEPTED_SIMULATE ? (JSON.parse(env.ACCEPTED_SIMULATE) as Simulate) : undefined;
  let key = env.ACCEPTED_KEY ?? "";
  const client = newClient(env.ACCEPTED_URL || "http://localhost:8080", () => key);

  // Ctrl-C and SIGTERM abort `interrupted`; the deadline aborts only `signal`.
  const interrupted = new AbortController();
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => interrupted.abort());
  const signal = AbortSignal.any([interrupted.signal, AbortSignal.timeout(timeout)]);

  if (!key) {
    const { data, error, response } = await client.POST("/v1/sandbox/keys", { signal });
    if (!data) throw problemError(response, error);
    key = data.key;
    console.error(`using a new sandbox key ${key} (set ACCEPTED_KEY to reuse it)`);
  }

  const { job: started, wait } = await startJob(client, simulate, signal);
  console.log(`started ${started.id} (${started.kind}): ${started.status}; status at ${started.status_url}`);
  let outcome: { job: Job; location?: string };
  try {
    outcome = await followJob(client, started, wait, signal);
  } catch (err) {
    if (interrupted.signal.aborted) return cancelJob(client, started);
    if (signal.aborted) {
      console.error(`gave up after ${timeout / 1000}s; the job goes on: ${started.status_url}`);
      return 1;
    }
    throw err;
  }
  const { job, location } = outcome;
  if (job.status === "failed") return failure(job);
  if (job.status === "canceled" || !location) {
    console.log(`${job.id} was canceled`);
    return 1;
  }
  await printReport(client, location, signal);
  return 0;
}

main().then(
  (code) => { process.exitCode = code; },
  (err) => { console.error((err as Error).message); process.exitCode = 1; },
);
