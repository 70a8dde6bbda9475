// jobBody checks that a 202 response's JSON body is the job: the fields a
// client needs to follow it, as the Accepted guides teach (content/guides/
// standards.md, "The one 202 body"). Given: a 202 response.
//
// check: fields    id, status (with an enum: a closed set of states), a
//                  status URL (status_url, or links.self), created_at and
//                  updated_at; each one declared and required.
// check: progress  percent_complete (or progress), which the guides send on
//                  every job but a client can live without.
//
// camelCase spellings (statusUrl, createdAt …) and a few common synonyms
// are accepted, so APIs in another naming style pass on substance.
import { createRulesetFunction } from '@stoplight/spectral-core';
import { isObject, jsonMedia, labelAt, notAJob, operationAt, variants } from './lib/oas.js';

const FIELDS = [
  { field: 'id', names: ['id', 'job_id', 'jobId'], why: 'the job id, to log and to quote' },
  { field: 'status', names: ['status', 'state'], why: 'where the job is in its lifecycle', enumRequired: true },
  {
    field: 'status_url',
    names: ['status_url', 'statusUrl', 'statusURL', 'status_uri', 'monitor_url', 'monitorUrl', 'href', 'self'],
    links: ['self', 'status', 'monitor'],
    why: 'the status monitor, equal to Location, for clients that cannot read headers',
  },
  { field: 'created_at', names: ['created_at', 'createdAt', 'created', 'createdDateTime', 'created_time'], why: 'when the job was accepted' },
  {
    field: 'updated_at',
    names: ['updated_at', 'updatedAt', 'updated', 'lastUpdatedDateTime', 'lastActionDateTime', 'modified_at', 'modifiedAt'],
    why: 'when the job last changed',
  },
];

const PROGRESS = { field: 'percent_complete', names: ['percent_complete', 'percentComplete', 'progress', 'percent', 'progress_percent'] };

// hasEnum: the status schema names a closed set of values.
function hasEnum(s) {
  if (!isObject(s)) return false;
  if (Array.isArray(s.enum) && s.enum.length > 0) return true;
  for (const key of ['oneOf', 'anyOf']) {
    if (Array.isArray(s[key]) && s[key].length > 0 && s[key].every(b => isObject(b) && ('const' in b || (Array.isArray(b.enum) && b.enum.length > 0)))) {
      return true;
    }
  }
  if (Array.isArray(s.allOf)) return s.allOf.some(hasEnum);
  return false;
}

// lookup finds the property that plays the role of spec in shape:
// {name, schema, required} or undefined.
function lookup(shape, spec) {
  for (const n of spec.names) {
    if (n in shape.properties) return { name: n, schema: shape.properties[n], required: shape.required.has(n) };
  }
  if (spec.links) {
    for (const l of ['links', '_links']) {
      const links = shape.properties[l];
      if (!isObject(links) || !isObject(links.properties)) continue;
      const hit = spec.links.find(k => k in links.properties);
      if (hit) {
        const linkRequired = Array.isArray(links.required) && links.required.includes(hit);
        return { name: `${l}.${hit}`, schema: links.properties[hit], required: shape.required.has(l) && linkRequired };
      }
    }
  }
  return undefined;
}

export default createRulesetFunction(
  {
    input: null,
    options: {
      type: 'object',
      additionalProperties: false,
      properties: { check: { enum: ['fields', 'progress'] } },
    },
  },
  (response, opts, context) => {
    if (!isObject(response)) return [];
    if (notAJob(operationAt(context.document.data, context.path))) return [];
    const where = labelAt(context.path);
    const check = (opts && opts.check) || 'fields';
    const json = jsonMedia(response.content);
    if (!json) {
      if (check !== 'fields') return [];
      return [
        {
          message: `${where}: the 202 response has no application/json body; answer with the job (id, status, status_url, created_at, updated_at) so the client knows what it started and where to follow it.`,
          path: context.path,
        },
      ];
    }
    const schemaAt = [...context.path, 'content', json.type, 'schema'];
    const results = [];
    for (const shape of variants(json.media.schema)) {
      const at = [...schemaAt, ...shape.at];
      if (check === 'progress') {
        if (!lookup(shape, PROGRESS)) {
          results.push({
            message: `${where}: the job in the 202 body has no percent_complete (or progress) field; consider one, from 0 to 100 and never decreasing, so clients can show how far the job got.`,
            path: at,
          });
        }
        continue;
      }
      for (const spec of FIELDS) {
        const hit = lookup(shape, spec);
        if (!hit) {
          results.push({
            message: `${where}: the job in the 202 body has no ${spec.field} field (${spec.why}); add it as a required property.`,
            path: [...at, 'properties'],
          });
          continue;
        }
        if (!hit.required) {
          results.push({
            message: `${where}: the job in the 202 body declares ${hit.name} but does not require it; list it in required, since a client relies on it being present.`,
            path: [...at, 'required'],
          });
        }
        if (spec.enumRequired && !hasEnum(hit.schema)) {
          results.push({
            message: `${where}: the job's ${hit.name} has no enum; list every state (for example queued, processing, succeeded, failed, canceled) so clients know which ones are terminal.`,
            path: [...at, 'properties', hit.name],
          });
        }
      }
    }
    return results;
  },
);
