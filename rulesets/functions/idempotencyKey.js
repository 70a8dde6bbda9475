// idempotencyKey reports a POST that answers 202 (it starts a job) but
// accepts no Idempotency-Key header parameter, on the operation or on its
// path item. Given: a path item.
import { createRulesetFunction } from '@stoplight/spectral-core';
import { isObject, label } from './lib/oas.js';

const takesKey = params =>
  Array.isArray(params) &&
  params.some(p => isObject(p) && p.in === 'header' && typeof p.name === 'string' && p.name.toLowerCase() === 'idempotency-key');

export default createRulesetFunction({ input: null, options: null }, (item, _opts, context) => {
  if (!isObject(item) || !isObject(item.post)) return [];
  const op = item.post;
  if (!isObject(op.responses) || !('202' in op.responses)) return [];
  if (takesKey(op.parameters) || takesKey(item.parameters)) return [];
  const path = context.path[context.path.length - 1];
  return [
    {
      message: `${label('post', path)} starts a job (it answers 202) but takes no Idempotency-Key header; add an optional Idempotency-Key header parameter, so a client that lost the answer can send the POST again without starting a second job.`,
      path: [...context.path, 'post', ...(Array.isArray(op.parameters) ? ['parameters'] : [])],
    },
  ];
});
