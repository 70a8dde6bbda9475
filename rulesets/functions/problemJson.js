// problemJson reports each 4xx or 5xx response (including the 4XX and 5XX
// ranges) of an operation whose content has no application/problem+json
// media type (RFC 9457). Given: an operation's responses object.
import { createRulesetFunction } from '@stoplight/spectral-core';
import { hasMediaType, isObject, labelAt } from './lib/oas.js';

export default createRulesetFunction({ input: null, options: null }, (responses, _opts, context) => {
  if (!isObject(responses)) return [];
  const where = labelAt(context.path);
  // A response to HEAD has no body (RFC 9110 §9.3.2).
  if (where.startsWith('HEAD ')) return [];
  const results = [];
  for (const [status, response] of Object.entries(responses)) {
    if (!/^[45](\d\d|XX)$/i.test(status) || !isObject(response)) continue;
    if (hasMediaType(response.content, 'application/problem+json')) continue;
    const types = isObject(response.content) ? Object.keys(response.content) : [];
    const has = types.length ? `its body is ${types.join(', ')}` : 'it declares no body';
    results.push({
      message: `${where}: the ${status} response is an error, but ${has}; describe it as application/problem+json (an RFC 9457 problem with type, title and status).`,
      path: [...context.path, status, ...(types.length ? ['content'] : [])],
    });
  }
  return results;
});
