// Tests of the async-api Spectral ruleset: node --test rulesets/*.test.mjs
//
// It loads the ruleset the way the Spectral CLI does (the YAML is bundled
// with its functions by @stoplight/spectral-ruleset-bundler), from disk and
// from a local web server (as `--ruleset https://…/async-api.yaml` would),
// and checks that:
//   - every rule in the ruleset fires on testdata/bad.yaml, and exactly the
//     results listed below do (so a new rule needs a case in bad.yaml);
//   - nothing fires on testdata/good.yaml;
//   - each way of finding a status monitor works, on small documents.
//
// The Spectral packages come from tools/spectral (npm ci --prefix tools/spectral).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { execFile } from 'node:child_process';
import * as http from 'node:http';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'tools', 'spectral', 'package.json'));
const { Spectral, Document } = require('@stoplight/spectral-core');
const Parsers = require('@stoplight/spectral-parsers');
const { fetch } = require('@stoplight/spectral-runtime');
const { bundleAndLoadRuleset } = require('@stoplight/spectral-ruleset-bundler/with-loader');

const RULESET = path.join(here, 'async-api.yaml');
const execFileAsync = promisify(execFile);

async function linter(ruleset) {
  const s = new Spectral();
  s.setRuleset(await bundleAndLoadRuleset(ruleset, { fs, fetch }));
  return s;
}

async function lint(spectral, file, text = fs.readFileSync(file, 'utf8')) {
  const results = await spectral.run(new Document(text, Parsers.Yaml, file));
  return results.map(r => ({ code: String(r.code), path: r.path.join('.'), message: r.message, severity: r.severity }));
}

const summary = results =>
  results
    .map(r => `${r.code} ${r.path}`)
    .sort()
    .join('\n');

// What bad.yaml must trip: rule id and path, one line per result.
const BAD = `
async-202-headers paths./reports.post.responses.202
async-202-headers paths./reports.post.responses.202
async-202-job-body paths./reports.post.responses.202.content.application/json.schema.properties
async-202-job-body paths./reports.post.responses.202.content.application/json.schema.properties
async-202-job-body paths./reports.post.responses.202.content.application/json.schema.properties
async-202-job-body paths./reports.post.responses.202.content.application/json.schema.properties.status
async-202-job-body paths./reports.post.responses.202.content.application/json.schema.required
async-202-job-progress paths./reports.post.responses.202.content.application/json.schema
async-202-status-monitor paths./copies.post.responses.202
async-202-status-monitor paths./imports.post.responses.202
async-429-headers paths./reports.post.responses.429
async-429-headers paths./reports.post.responses.429
async-429-ratelimit-policy paths./reports.post.responses.429
async-callback-declared paths./imports.post.requestBody.content.application/json.schema.properties.notify.properties.url
async-error-problem-json paths./reports.post.responses.400.content
async-error-problem-json paths./reports.post.responses.500
async-idempotency-key paths./reports.post
async-idempotency-key paths./resend.post
async-status-monitor-responses paths./jobs/{id}.get.responses
async-status-monitor-responses paths./jobs/{id}.get.responses
`.trim();

describe('async-api ruleset', () => {
  let spectral;
  before(async () => {
    spectral = await linter(RULESET);
  });

  test('every rule has an async- id, a description and a message', () => {
    const rules = Object.values(spectral.ruleset.rules);
    assert.ok(rules.length >= 9, `only ${rules.length} rules`);
    for (const rule of rules) {
      assert.match(rule.name, /^async-[a-z0-9-]+$/, rule.name);
      assert.ok(rule.description && rule.description.length > 40, `${rule.name} has no description`);
      assert.ok(rule.message, `${rule.name} has no message`);
    }
  });

  test('the README and the standards guide list every rule', () => {
    const docs = {
      'rulesets/README.md': fs.readFileSync(path.join(here, 'README.md'), 'utf8'),
      'content/guides/standards.md': fs.readFileSync(path.join(here, '..', 'content', 'guides', 'standards.md'), 'utf8'),
    };
    for (const name of Object.keys(spectral.ruleset.rules)) {
      for (const [file, text] of Object.entries(docs)) assert.ok(text.includes('`' + name + '`'), `${file} does not list ${name}`);
    }
  });

  test('every rule fires on bad.yaml, with exactly the expected results', async () => {
    const results = await lint(spectral, path.join(here, 'testdata', 'bad.yaml'));
    const fired = new Set(results.map(r => r.code));
    for (const name of Object.keys(spectral.ruleset.rules)) {
      assert.ok(fired.has(name), `rule ${name} does not fire on testdata/bad.yaml: add a case for it`);
    }
    assert.equal(summary(results), BAD);
    for (const r of results) assert.ok(r.message.length > 40 && !r.message.includes('{{'), `${r.code}: message ${r.message}`);
  });

  test('nothing fires on good.yaml', async () => {
    const results = await lint(spectral, path.join(here, 'testdata', 'good.yaml'));
    assert.deepEqual(results, []);
  });

  test('messages name the operation and what to add', async () => {
    const results = await lint(spectral, path.join(here, 'testdata', 'bad.yaml'));
    const find = (code, text) => results.find(r => r.code === code && r.message.includes(text));
    assert.ok(find('async-202-headers', 'POST /reports: the 202 response does not declare the Location header'));
    assert.ok(find('async-202-status-monitor', '(/imports/status/imp_1)'));
    assert.ok(find('async-202-status-monitor', 'operationId getCopyStatus'));
    assert.ok(find('async-status-monitor-responses', 'declares no 303 response'));
    assert.ok(find('async-status-monitor-responses', 'declares no 410 response'));
    assert.ok(find('async-callback-declared', 'POST /imports takes a callback URL (url)'));
    assert.equal(results.find(r => r.code === 'async-429-ratelimit-policy').severity, 1, 'RateLimit-Policy is a warning');
    assert.equal(results.find(r => r.code === 'async-202-job-progress').severity, 2, 'progress is a hint (info)');
  });
});

// Small documents for the status monitor heuristics: a POST answering 202
// (whose response is given) and the GET operations given.
function doc({ accepted, gets, post = '/v1/things' }) {
  const paths = {
    [post]: {
      post: {
        parameters: [{ name: 'Idempotency-Key', in: 'header', schema: { type: 'string' } }],
        responses: { 202: accepted },
      },
    },
  };
  for (const [p, responses] of Object.entries(gets)) {
    paths[p] = {
      get: {
        operationId: `get${Object.keys(paths).length}`,
        parameters: [...p.matchAll(/\{(\w+)\}/g)].map(m => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } })),
        responses: Object.fromEntries(responses.map(s => [s, { description: s }])),
      },
    };
  }
  return JSON.stringify({ openapi: '3.1.0', info: { title: 't', version: '1' }, paths });
}

const accepted = (extra = {}) => ({
  description: 'Accepted',
  headers: { Location: { schema: { type: 'string' }, ...extra.location }, 'Retry-After': { schema: { type: 'integer' } } },
  ...extra.response,
});

describe('finding the status monitor', () => {
  let spectral;
  before(async () => {
    spectral = await linter(RULESET);
  });
  const monitorResults = async text =>
    (await lint(spectral, 'mem.json', text)).filter(r => r.code === 'async-202-status-monitor' || r.code === 'async-status-monitor-responses');

  test('by the Location example, behind a base path', async () => {
    const r = await monitorResults(
      doc({ accepted: accepted({ location: { example: 'https://api.example.com/base/ops/op_1' } }), gets: { '/ops/{id}': ['200'], '/jobs/{id}': ['200', '303', '410'] } }),
    );
    assert.equal(r.length, 2);
    for (const x of r) assert.match(x.message, /^GET \/ops\/\{id\} is the status monitor of POST \/v1\/things \(found by the URL in its examples\)/);
  });

  test('the most literal path wins', async () => {
    const r = await monitorResults(
      doc({ accepted: accepted({ location: { example: '/v1/jobs/status' } }), gets: { '/v1/jobs/{id}': ['200'], '/v1/jobs/status': ['200', '303', '410'] } }),
    );
    assert.deepEqual(r, []);
  });

  test('by a links entry, over the Location example', async () => {
    const r = await monitorResults(
      doc({
        accepted: accepted({ location: { example: '/v1/jobs/j' }, response: { links: { m: { operationRef: '#/paths/~1v1~1ops~1{id}/get' } } } }),
        gets: { '/v1/jobs/{id}': ['200', '303', '410'], '/v1/ops/{id}': ['200', '303'] },
      }),
    );
    assert.equal(r.length, 1);
    assert.match(r[0].message, /GET \/v1\/ops\/\{id\} .*found by its links.* no 410/);
  });

  test('by its 303 response, preferring the closest path', async () => {
    const r = await monitorResults(doc({ accepted: accepted(), gets: { '/v1/things/{id}/op': ['200', '303'], '/v1/jobs/{id}': ['200', '303', '410'] } }));
    assert.equal(r.length, 1);
    assert.match(r[0].message, /GET \/v1\/things\/\{id\}\/op .*found by its 303 response.* no 410/);
  });

  test('by a monitor-like path', async () => {
    const r = await monitorResults(doc({ accepted: accepted(), gets: { '/v1/things/{id}': ['200'], '/v1/operations/{operationId}': ['200', '410'] } }));
    assert.equal(r.length, 1);
    assert.match(r[0].message, /GET \/v1\/operations\/\{operationId\} .*found by its path.* no 303/);
  });

  test('none at all', async () => {
    const r = await monitorResults(doc({ accepted: accepted(), gets: { '/v1/things/{id}': ['200'] } }));
    assert.equal(r.length, 1);
    assert.equal(r[0].code, 'async-202-status-monitor');
    assert.match(r[0].message, /no status monitor was found/);
  });
});

describe('the ruleset from a URL', () => {
  // What the guide tells readers to run: the pinned CLI with --ruleset
  // pointing at the published file. Spectral fetches the functions relative
  // to the ruleset's URL, so serve this folder the way the docs site
  // publishes it, at /rulesets/.
  let server;
  let base;
  const served = new Set();
  before(async () => {
    server = http.createServer((req, res) => {
      const name = path.normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^\/rulesets\//, '');
      served.add(name);
      const file = path.join(here, name);
      if (!file.startsWith(here + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
        res.writeHead(404).end('not found');
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end(fs.readFileSync(file));
    });
    await new Promise(resolve => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${server.address().port}/rulesets/`;
  });
  after(() => server.close());

  test('spectral lint --ruleset <url> loads its functions and gives the same results', async () => {
    const bad = path.join(here, 'testdata', 'bad.yaml');
    const cli = path.join(here, '..', 'tools', 'spectral', 'node_modules', '.bin', 'spectral');
    // Asynchronous, so this process keeps serving the ruleset meanwhile.
    const { stdout } = await execFileAsync(cli, ['lint', '--quiet', '--format', 'json', '--fail-severity', 'error', '--ruleset', base + 'async-api.yaml', bad], {
      timeout: 60_000,
    }).catch(err => {
      // Exit status 1 means "found errors", which bad.yaml must.
      if (err.code === 1 && err.stdout) return err;
      throw err;
    });
    const remote = JSON.parse(stdout).map(r => ({ code: r.code, path: r.path.join('.') }));
    assert.equal(summary(remote), BAD);
    for (const f of ['async-api.yaml', 'functions/statusMonitor.js', 'functions/lib/oas.js']) {
      assert.ok(served.has(f), `${f} was not fetched from the server (fetched: ${[...served].join(', ')})`);
    }
  });
});
