// webhook-receiver.mjs receives the Accepted sandbox's webhooks (an import's
// import.complete, import.partial or import.failed): it verifies each
// Standard Webhooks signature by hand with node:crypto, drops deliveries it
// has already stored, and answers 2xx only once the event is safely on disk.
//
// Node 20+ with no packages:   node examples/js/webhook-receiver.mjs
// then start an import with "callback_url" set to the URL it prints (the
// sandbox must be able to reach it: on your own machine, run the sandbox
// with -allow-private-callbacks). `import { verify } from` this file to use
// the check alone; the server starts only when Node executes this file.
//
// Environment:
//   ACCEPTED_URL             the sandbox (default http://localhost:8080)
//   ACCEPTED_KEY             your API key; its signing secret is read from GET /v1/webhooks/secret.
//                            When empty, a new sandbox key is made and printed.
//   ACCEPTED_WEBHOOK_SECRET  the signing secret (whsec_…); when set, the sandbox is not asked
//   ACCEPTED_LISTEN          where to listen (default 127.0.0.1:8081; port 0 picks a free one)
//   ACCEPTED_EVENTS_FILE     the JSON Lines file events are stored in (default webhook-events.jsonl)

import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { open, readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';

// How far a webhook's timestamp may be from our clock, in seconds. It bounds
// how long a captured delivery can be replayed.
const TOLERANCE = 5 * 60;

// region verify
// verify checks a Standard Webhooks signature: HMAC-SHA256, keyed with the
// base64-decoded part of the secret after "whsec_", over
// "{id}.{timestamp}.{body}" (body: the raw bytes, a Buffer). The header may
// hold several space-separated signatures (one per secret during a
// rotation); any one "v1," match will do. Throws when the check fails.
export function verify(secret, { id, timestamp, signature }, body, now = Date.now() / 1000) {
  if (!id || !timestamp || !signature) throw new Error('missing webhook-id, webhook-timestamp or webhook-signature');
  if (!/^\d+$/.test(timestamp)) throw new Error('webhook-timestamp is not Unix seconds');
  const off = Math.round(now - Number(timestamp));
  if (Math.abs(off) > TOLERANCE) throw new Error(`webhook-timestamp is ${off}s off our clock: a replay, or a clock to fix`);
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const want = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest();
  for (const sig of signature.split(' ')) {
    const [version, value = ''] = sig.split(',', 2);
    const got = Buffer.from(value, 'base64');
    // timingSafeEqual needs equal lengths; a length tells an attacker nothing.
    if (version === 'v1' && got.length === want.length && timingSafeEqual(got, want)) return;
  }
  throw new Error('no signature matches');
}
// endregion verify

// region dedupe
// openStore appends each event to a JSON Lines file and remembers the ids it
// holds (reading the file first, so a restart does not forget). Senders retry
// until they see a 2xx, and a redelivery reuses the id, so the same event can
// arrive twice: the id is the key. Adds run one at a time, so two copies
// arriving together are stored once; add resolves once the line is on disk.
async function openStore(path) {
  const seen = new Set();
  const old = await readFile(path, 'utf8').catch(() => '');
  for (const line of old.split('\n')) if (line) seen.add(JSON.parse(line).webhook_id);
  const file = await open(path, 'a');
  let queue = Promise.resolve();
  const add = async (id, event) => {
    if (seen.has(id)) return false;
    await file.appendFile(JSON.stringify({ webhook_id: id, received_at: new Date().toISOString(), event }) + '\n');
    await file.sync();
    seen.add(id);
    return true;
  };
  return {
    add: (id, event) => (queue = queue.catch(() => {}).then(() => add(id, event))),
    close: () => file.close(),
  };
}
// endregion dedupe

async function handle(req, res, secret, store) {
  // The signature covers the exact bytes sent: read them once, verify, and
  // only then parse.
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    if ((size += chunk.length) > 1 << 20) return reply(res, 413, 'body too large');
    chunks.push(chunk);
  }
  const body = Buffer.concat(chunks);
  const h = { id: req.headers['webhook-id'], timestamp: req.headers['webhook-timestamp'], signature: req.headers['webhook-signature'] };
  try {
    verify(secret, h, body);
  } catch (err) {
    console.log(`rejected ${h.id}: ${err.message}`);
    return reply(res, 401, err.message);
  }
  let event;
  try {
    event = JSON.parse(body);
  } catch {
    return reply(res, 400, 'body is not JSON');
  }
  try {
    if (await store.add(h.id, event)) {
      console.log(`stored ${h.id} (${event.type})`);
    } else {
      console.log(`duplicate ${h.id} (${event.type}): already stored, dropped`);
    }
    reply(res, 200, 'ok'); // a 2xx for duplicates too, so the sender stops retrying
  } catch (err) { // not stored: a 5xx makes the sender try again later
    console.log(`could not store ${h.id}: ${err.message}`);
    reply(res, 500, 'could not store the event');
  }
}

function reply(res, status, text) {
  res.writeHead(status, { 'Content-Type': 'text/plain' }).end(text + '\n');
}

async function fetchSecret(base, key) {
  if (!key) {
    const res = await fetch(new URL('/v1/sandbox/keys', base), { method: 'POST' });
    if (res.status !== 201) throw new Error(`POST /v1/sandbox/keys: ${res.status} ${await res.text()}`);
    key = (await res.json()).key;
    console.error(`using a new sandbox key ${key}: start imports with it (set ACCEPTED_KEY to reuse it)`);
  }
  const res = await fetch(new URL('/v1/webhooks/secret', base), { headers: { Authorization: `Bearer ${key}` } });
  if (res.status !== 200) throw new Error(`GET /v1/webhooks/secret: ${res.status} ${await res.text()}`);
  return (await res.json()).secret;
}

async function main() {
  const env = process.env;
  const secret = env.ACCEPTED_WEBHOOK_SECRET || await fetchSecret(env.ACCEPTED_URL || 'http://localhost:8080', env.ACCEPTED_KEY);
  const store = await openStore(env.ACCEPTED_EVENTS_FILE || 'webhook-events.jsonl');
  const listen = env.ACCEPTED_LISTEN || '127.0.0.1:8081';
  const colon = listen.lastIndexOf(':');
  const server = createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/webhooks') return reply(res, 404, 'POST /webhooks');
    handle(req, res, secret, store).catch((err) => reply(res, 500, err.message));
  });
  server.listen(Number(listen.slice(colon + 1)), listen.slice(0, colon) || undefined, () => {
    const { address, port } = server.address();
    console.log(`listening on http://${address}:${port}/webhooks`);
  });
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => server.close(() => store.close().then(() => process.exit(0)))); // lets deliveries being stored finish
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error(err.message);
    process.exit(1);
  });
}
