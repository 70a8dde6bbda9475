// Helpers shared by the async-api ruleset's functions: walking an OpenAPI
// 3.x document that Spectral has already resolved ($refs replaced by what
// they point at). Imported by relative path, so the ruleset works from disk
// and from a URL alike (Spectral fetches imports relative to the function).

export const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

export const isObject = v => typeof v === 'object' && v !== null && !Array.isArray(v);

// operations lists every operation under paths: {path, method, op, item, at}
// where at is the JSON path of the operation.
export function operations(doc) {
  const out = [];
  if (!isObject(doc) || !isObject(doc.paths)) return out;
  for (const [path, item] of Object.entries(doc.paths)) {
    if (!isObject(item)) continue;
    for (const method of METHODS) {
      if (isObject(item[method])) out.push({ path, method, op: item[method], item, at: ['paths', path, method] });
    }
  }
  return out;
}

// notAJob reports whether an operation says, with x-async-job: false, that
// its 202 queues something that is not a job: a single webhook redelivery,
// say, whose outcome shows up in a log rather than at a status monitor. Its
// 202 still needs Location and Retry-After, and its POST an Idempotency-Key;
// the job body and status monitor rules skip it.
export const notAJob = op => isObject(op) && op['x-async-job'] === false;

// operationAt finds the operation a JSON path is inside of in doc, or
// undefined.
export function operationAt(doc, at) {
  const i = Array.isArray(at) ? at.indexOf('paths') : -1;
  if (i < 0 || at.length < i + 3 || !isObject(doc) || !isObject(doc.paths)) return undefined;
  const item = doc.paths[at[i + 1]];
  return isObject(item) ? item[at[i + 2]] : undefined;
}

// label names an operation for a message: "POST /v1/reports".
export const label = (method, path) => `${String(method).toUpperCase()} ${path}`;

// labelAt names the operation a JSON path is inside of, or "".
export function labelAt(at) {
  const i = Array.isArray(at) ? at.indexOf('paths') : -1;
  if (i < 0 || at.length < i + 3) return '';
  return label(at[i + 2], at[i + 1]);
}

// header finds a response header by name, case-insensitively (HTTP field
// names are case-insensitive: RFC 9110 §5.1).
export function header(response, name) {
  if (!isObject(response) || !isObject(response.headers)) return undefined;
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(response.headers)) {
    if (k.toLowerCase() === want) return { name: k, header: v };
  }
  return undefined;
}

// jsonMedia returns the first media type of content that is JSON
// (application/json, with or without parameters, or any +json type other
// than problem+json), as {type, media}.
export function jsonMedia(content) {
  if (!isObject(content)) return undefined;
  const entries = Object.entries(content);
  const base = t => t.split(';')[0].trim().toLowerCase();
  const exact = entries.find(([t]) => base(t) === 'application/json');
  const plus = entries.find(([t]) => /\+json$/.test(base(t)) && base(t) !== 'application/problem+json');
  const hit = exact || plus;
  return hit ? { type: hit[0], media: hit[1] } : undefined;
}

// hasMediaType reports whether content declares the media type (ignoring
// parameters such as charset, and case).
export function hasMediaType(content, type) {
  if (!isObject(content)) return false;
  return Object.keys(content).some(t => t.split(';')[0].trim().toLowerCase() === type);
}

// variants flattens a schema into the object shapes a value may take:
// allOf members are merged into one shape; each oneOf/anyOf branch gives a
// shape of its own (merged with the rest). Each shape is
// {properties, required, at} where at is the JSON path (relative to the
// schema) of the branch.
export function variants(schema, at = [], depth = 0) {
  if (!isObject(schema) || depth > 8) return [{ properties: {}, required: new Set(), at }];
  let shape = { properties: {}, required: new Set(), at };
  const merge = s => {
    if (!isObject(s)) return;
    if (isObject(s.properties)) Object.assign(shape.properties, s.properties);
    if (Array.isArray(s.required)) s.required.forEach(r => shape.required.add(r));
  };
  merge(schema);
  if (Array.isArray(schema.allOf)) {
    for (const part of schema.allOf) {
      for (const v of variants(part, at, depth + 1)) {
        Object.assign(shape.properties, v.properties);
        v.required.forEach(r => shape.required.add(r));
      }
    }
  }
  const branches = Array.isArray(schema.oneOf) ? ['oneOf', schema.oneOf] : Array.isArray(schema.anyOf) ? ['anyOf', schema.anyOf] : null;
  if (!branches) return [shape];
  const out = [];
  branches[1].forEach((b, i) => {
    for (const v of variants(b, [...at, branches[0], i], depth + 1)) {
      out.push({
        properties: { ...shape.properties, ...v.properties },
        required: new Set([...shape.required, ...v.required]),
        at: v.at,
      });
    }
  });
  return out.length ? out : [shape];
}

// examplesOf collects the example values given for a schema, a parameter,
// a header or a media type object: example, examples (an array in JSON
// Schema, a map of Example objects in OpenAPI) and default.
export function examplesOf(o) {
  const out = [];
  if (!isObject(o)) return out;
  if (o.example !== undefined) out.push(o.example);
  if (Array.isArray(o.examples)) out.push(...o.examples);
  else if (isObject(o.examples)) {
    for (const ex of Object.values(o.examples)) {
      if (isObject(ex) && ex.value !== undefined) out.push(ex.value);
    }
  }
  if (o.default !== undefined) out.push(o.default);
  return out;
}
