// callbackUrl reports an operation whose request body takes a callback URL
// (a property such as callback_url, callbackUrl, webhook_url or
// notification_url; a property whose name mentions callback, webhook or
// notification and whose format is a URI; or a url property inside such an
// object) when the operation declares no callbacks and the document has no
// top-level webhooks: the requests the API will send there are then
// undocumented. Given: the document root.
import { createRulesetFunction } from '@stoplight/spectral-core';
import { isObject, label, operations } from './lib/oas.js';

// callback_url, callbackUrl, callback-uri, webhookUrl, webhook_endpoint,
// notificationUrl, notify_url, hook_url, and their plurals.
const NAME = /^(callback|webhook|notification|notify|hook)s?[_-]?(url|uri|endpoint|address|target)s?$/i;
const MENTIONS = /callback|webhook|notif|hook/i;
const URL_FORMATS = new Set(['uri', 'url', 'iri', 'uri-reference', 'iri-reference']);
const URL_NAME = /^(url|uri|href|endpoint|address|target)$/i;

const isUrlSchema = s => isObject(s) && typeof s.format === 'string' && URL_FORMATS.has(s.format.toLowerCase());

// find returns the JSON path (relative to schema) of the first callback URL
// property, or undefined. parentMentions: the enclosing property's name
// mentions callbacks (so its url property is the callback URL).
function find(schema, at, seen, depth, parentMentions) {
  if (!isObject(schema) || depth > 10 || seen.has(schema)) return undefined;
  seen.add(schema);
  if (isObject(schema.properties)) {
    for (const [name, prop] of Object.entries(schema.properties)) {
      const here = [...at, 'properties', name];
      if (NAME.test(name)) return { at: here, name };
      if (MENTIONS.test(name) && isUrlSchema(prop)) return { at: here, name };
      if (parentMentions && URL_NAME.test(name)) return { at: here, name };
      const hit = find(prop, here, seen, depth + 1, MENTIONS.test(name));
      if (hit) return hit;
    }
  }
  for (const key of ['allOf', 'oneOf', 'anyOf']) {
    if (!Array.isArray(schema[key])) continue;
    for (let i = 0; i < schema[key].length; i++) {
      const hit = find(schema[key][i], [...at, key, i], seen, depth + 1, parentMentions);
      if (hit) return hit;
    }
  }
  if (isObject(schema.items)) return find(schema.items, [...at, 'items'], seen, depth + 1, parentMentions);
  return undefined;
}

const nonEmpty = o => isObject(o) && Object.keys(o).length > 0;

export default createRulesetFunction({ input: null, options: null }, doc => {
  if (!isObject(doc)) return [];
  const hasWebhooks = nonEmpty(doc.webhooks);
  const results = [];
  for (const { path, method, op, at } of operations(doc)) {
    if (nonEmpty(op.callbacks) || hasWebhooks) continue;
    const content = isObject(op.requestBody) && isObject(op.requestBody.content) ? op.requestBody.content : {};
    for (const [type, media] of Object.entries(content)) {
      if (!isObject(media)) continue;
      const hit = find(media.schema, [], new WeakSet(), 0, false);
      if (!hit) continue;
      results.push({
        message: `${label(method, path)} takes a callback URL (${hit.name}) but the document does not describe what will be sent to it; declare callbacks on the operation, or top-level webhooks (OpenAPI 3.1), with the payload, its headers and the answers you expect.`,
        path: [...at, 'requestBody', 'content', type, 'schema', ...hit.at],
      });
      break;
    }
  }
  return results;
});
