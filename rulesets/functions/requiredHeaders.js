// requiredHeaders reports each header of functionOptions.headers that a
// response does not declare. Header names match case-insensitively.
//
//   then:
//     function: requiredHeaders
//     functionOptions:
//       headers:
//         Location: the status monitor's URL
import { createRulesetFunction } from '@stoplight/spectral-core';
import { header, labelAt } from './lib/oas.js';

export default createRulesetFunction(
  {
    input: null,
    options: {
      type: 'object',
      additionalProperties: false,
      required: ['headers'],
      properties: {
        headers: {
          type: 'object',
          minProperties: 1,
          additionalProperties: { type: 'string' },
          description: 'header name → what it tells the client, quoted in the message',
        },
      },
    },
  },
  (response, opts, context) => {
    if (typeof response !== 'object' || response === null) return [];
    const status = context.path[context.path.length - 1];
    const where = labelAt(context.path);
    const results = [];
    for (const [name, why] of Object.entries(opts.headers)) {
      if (header(response, name)) continue;
      results.push({
        message: `${where ? where + ': ' : ''}the ${status} response does not declare the ${name} header; add it under headers (${why}).`,
        path: [...context.path, 'headers'],
      });
    }
    return results;
  },
);
