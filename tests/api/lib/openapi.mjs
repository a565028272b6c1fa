// docs/api/openapi.yaml as a checker of live responses, and the inventory of what the gateway
// serves, read from its source, to hold the spec against.
//
// A response is checked against the operation its listener, method and path select: its status
// must be documented there, each declared header present when required and matching its schema
// (and no rate-limit or retry header the response does not declare), its content type one the
// response lists, its body valid against that content's schema (each `data:` event of a stream
// against the stream's event schema), and an error's code one of the response's `x-codes`.
// Every check returns problems as text naming what broke, so that a test asserts on them.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import YAML from 'yaml';

import { readSources, sourceInventory as readInventory } from './source_routes.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(HERE, '../../..');
export const SPEC_PATH = path.join(REPO_ROOT, 'docs/api/openapi.yaml');

export const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];
// Headers a response may carry only where the spec declares them: the gateway's own.
const DECLARED_ONLY = /^(x-ratelimit-|retry-after)/;

export function loadSpec(file = SPEC_PATH) {
  // The spec shares header and server lists through YAML anchors, more than yaml's default
  // alias bound (a guard against alias bombs in untrusted input; this file is ours).
  return YAML.parse(readFileSync(file, 'utf8'), { maxAliasCount: -1 });
}

// The object a local "$ref" points at ('#/components/...'), followed until it is no $ref.
export function deref(spec, node) {
  let n = node;
  for (let hops = 0; n && typeof n === 'object' && typeof n.$ref === 'string'; hops++) {
    if (hops > 20 || !n.$ref.startsWith('#/')) throw new Error(`unresolvable $ref ${n.$ref}`);
    n = n.$ref.slice(2).split('/').reduce(
        (o, k) => o?.[k.replace(/~1/g, '/').replace(/~0/g, '~')], spec);
    if (n === undefined) throw new Error(`dangling $ref ${node.$ref}`);
  }
  return n;
}

// Which listener a path item is served on: 'data' or 'admin', by its servers' URL (the
// spec's first server is the data plane, the second the admin listener).
function listenerOf(spec, item) {
  const url = item.servers?.[0]?.url;
  if (url === spec.servers[0].url) return 'data';
  if (url === spec.servers[1].url) return 'admin';
  throw new Error(`path item without a known server: ${JSON.stringify(item.servers)}`);
}

function templateRegex(template) {
  const esc = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+');
  return new RegExp(`^${esc.replace(/\\\{|\\\}/g, '')}$`);
}

// Every operation of the spec: {key: 'POST /v1/chat/completions', listener, method, path,
// operation, statuses}.
export function operations(spec) {
  const out = [];
  for (const [p, item] of Object.entries(spec.paths)) {
    for (const m of METHODS) {
      if (!item[m]) continue;
      out.push({ key: `${m.toUpperCase()} ${p}`, listener: listenerOf(spec, item), method: m,
                 path: p, operation: item[m], statuses: Object.keys(item[m].responses) });
    }
  }
  return out;
}

export class SpecChecker {
  constructor(spec) {
    this.spec = spec;
    this.ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
    addFormats(this.ajv);
    // The whole document under one id, so that every '#/components/...' inside resolves.
    this.ajv.addSchema(spec, 'openapi');
    this.compiled = new Map();
    this.exercised = new Set();  // 'POST /v1/chat/completions 429' and '... 429 rate_limit_exceeded'
  }

  schemaValidator(schema) {
    const key = JSON.stringify(schema);
    let v = this.compiled.get(key);
    if (!v) {
      const rebased = JSON.parse(key.replace(/"\$ref":"#\//g, '"$ref":"openapi#/'));
      v = this.ajv.compile(rebased);
      this.compiled.set(key, v);
    }
    return v;
  }

  validate(schema, value, what) {
    const v = this.schemaValidator(schema);
    if (v(value)) return [];
    return v.errors.slice(0, 5).map((e) => `${what}${e.instancePath} ${e.message}` +
                                         (e.params?.allowedValues ? ` ${JSON.stringify(e.params.allowedValues)}` : '') +
                                         (e.params?.additionalProperty ? ` '${e.params.additionalProperty}'` : ''));
  }

  // The documented response for a request: {key (the operation, or 'unmatched NAME'), response}
  // or {problem}.
  select({ listener, method, path: p, status }) {
    const spec = this.spec;
    for (const [template, item] of Object.entries(spec.paths)) {
      if (listenerOf(spec, item) !== listener || !templateRegex(template).test(p)) continue;
      const op = item[method.toLowerCase()];
      if (!op) {
        const name = item['x-other-methods'];
        return { key: `${method.toUpperCase()} ${template} (other method)`,
                 response: spec['x-unmatched-responses']?.[name], expect: name };
      }
      const key = `${method.toUpperCase()} ${template}`;
      const response = op.responses[String(status)];
      if (!response) return { key, problem: `${key}: status ${status} is not documented` };
      return { key, response: deref(spec, response) };
    }
    return { key: `${listener} unknown path`, response: spec['x-unmatched-responses']?.UnknownPath,
             expect: 'UnknownPath' };
  }

  // Checks one response; returns its problems (empty: it is what the spec says). `headers`: an
  // object of lower-case names or a fetch Headers; `body`: the text as received.
  check({ listener, method, path: p, status, headers, body }) {
    const h = headers instanceof Headers ? Object.fromEntries(headers.entries()) : headers;
    const sel = this.select({ listener, method, path: p, status });
    if (sel.problem) return [sel.problem];
    const where = `${sel.key} ${status}`;
    if (!sel.response) return [`${where}: the spec has no response '${sel.expect}' for it`];
    if (sel.expect && sel.response['x-status'] !== status) {
      return [`${where}: no operation; the spec answers it ${sel.response['x-status']} (${sel.expect})`];
    }
    const problems = [];
    const declared = {};
    for (const [name, ref] of Object.entries(sel.response.headers ?? {})) {
      declared[name.toLowerCase()] = deref(this.spec, ref);
    }
    for (const [name, header] of Object.entries(declared)) {
      if (!(name in h)) {
        if (header.required) problems.push(`${where}: header ${name} missing`);
        continue;
      }
      problems.push(...this.validate(header.schema, h[name], `${where}: header ${name}`));
    }
    for (const name of Object.keys(h)) {
      if (DECLARED_ONLY.test(name) && !(name in declared)) {
        problems.push(`${where}: header ${name} is not documented`);
      }
    }
    const content = sel.response.content ?? {};
    const type = h['content-type'] ?? '';
    const mediaKey = Object.keys(content).find((k) => k === type) ??
        Object.keys(content).find((k) => k.split(';')[0].trim() === type.split(';')[0].trim());
    if (!mediaKey) {
      if (Object.keys(content).length) {
        problems.push(`${where}: content type '${type}' is not documented ` +
                      `(${Object.keys(content).join(', ')})`);
      }
      return problems;
    }
    const media = content[mediaKey];
    const codes = [];
    if (mediaKey === 'text/event-stream') {
      const events = sseData(body);
      // [DONE] ends a stream (the Responses API's: response.completed, .incomplete or .failed);
      // one the backend broke off ends with its error event instead.
      const last = events.at(-1) ?? '';
      let lastType;
      try { lastType = JSON.parse(last)?.type; } catch { lastType = undefined; }
      const finalEvent = /^response\.(completed|incomplete|failed)$/.test(lastType ?? '');
      if (last !== '[DONE]' && !finalEvent && !/^\{"error":/.test(last)) {
        problems.push(`${where}: the stream ends with neither [DONE], a final response event nor an error event`);
      }
      for (const [i, data] of events.entries()) {
        if (data === '[DONE]') continue;
        let json;
        try { json = JSON.parse(data); } catch {
          problems.push(`${where}: event ${i} is not JSON: ${data.slice(0, 80)}`);
          continue;
        }
        problems.push(...this.validate(media.schema.contentSchema, json, `${where}: event ${i}`));
        if (json?.error?.code) codes.push(json.error.code);
      }
    } else if (/json/.test(mediaKey)) {
      let json;
      try { json = JSON.parse(body); } catch {
        return [...problems, `${where}: body is not JSON: ${String(body).slice(0, 80)}`];
      }
      problems.push(...this.validate(media.schema, json, `${where}: body`));
      if (json?.error?.code) {
        codes.push(json.error.code);
        const allowed = media['x-codes'] ?? [];
        if (!allowed.includes(json.error.code)) {
          problems.push(`${where}: error code ${json.error.code} is not documented ` +
                        `(${allowed.join(', ') || 'none'})`);
        }
      }
    } else {
      problems.push(...this.validate(media.schema, body, `${where}: body`));
    }
    if (problems.length === 0) {
      this.exercised.add(`${sel.key} ${status}`);
      for (const c of codes) this.exercised.add(`${sel.key} ${status} ${c}`);
    }
    return problems;
  }

  // The operation/status pairs the spec documents that no checked response showed, the
  // `except` ones aside.
  unexercised(except = []) {
    const out = [];
    for (const op of operations(this.spec)) {
      for (const s of op.statuses) {
        const k = `${op.key} ${s}`;
        if (!this.exercised.has(k) && !except.includes(k)) out.push(k);
      }
    }
    return out;
  }

  // The error codes the spec documents (ErrorCode and each response's x-codes) that no checked
  // response carried, the `except` ones aside.
  unexercisedCodes(except = []) {
    const seen = new Set([...this.exercised].map((k) => k.split(' ').at(-1)));
    return documentedCodes(this.spec).filter((c) => !seen.has(c) && !except.includes(c));
  }
}

// The data: payloads of an SSE body, in order ('[DONE]' kept as text).
export function sseData(text) {
  const out = [];
  for (const block of String(text).split(/\r?\n\r?\n/)) {
    const data = block.split(/\r?\n/).filter((l) => l.startsWith('data:'))
                      .map((l) => l.slice(5).replace(/^ /, '')).join('\n');
    if (data !== '') out.push(data);
  }
  return out;
}

// Every error code some response of the spec lists (x-codes), with the reload's invalid_config.
export function documentedCodes(spec) {
  const codes = new Set();
  const visit = (n) => {
    if (!n || typeof n !== 'object') return;
    if (Array.isArray(n['x-codes'])) n['x-codes'].forEach((c) => codes.add(c));
    Object.values(n).forEach(visit);
  };
  visit(spec.paths);
  visit(spec.components?.responses);
  visit(spec['x-unmatched-responses']);
  const reload = spec.components?.schemas?.InvalidConfigError?.properties?.error?.properties?.code;
  if (reload?.const) codes.add(reload.const);
  return [...codes].sort();
}

// ---------------------------------------------------------------------------------------------
// What the gateway serves, read from its source
// ---------------------------------------------------------------------------------------------

// {routes: ['POST /v1/chat/completions', ...], codes: ['invalid_request', ...]}: what the source
// serves (lib/source_routes.mjs); a query-table path no route has shows as "(query table) PATH".
export function sourceInventory() {
  const inventory = readInventory(readSources(REPO_ROOT));
  const routes = inventory.routes.map((r) => `${r.method} ${r.path}`);
  for (const t of inventory.table) {
    const p = t.prefix ? `${t.path}{name}` : t.path;
    if (!inventory.routes.some((r) => r.path === p)) routes.push(`(query table) ${p}`);
  }
  return { routes: routes.sort(), codes: inventory.codes };
}

// What the source serves that the spec lacks: routes without an operation, codes no response
// lists.
export function missingFromSpec(spec, inventory = sourceInventory()) {
  const ops = new Set(operations(spec).map((o) => o.key));
  const codes = new Set(documentedCodes(spec));
  const enumCodes = new Set(spec.components?.schemas?.ErrorCode?.enum ?? []);
  return [
    ...inventory.routes.filter((r) => !ops.has(r)).map((r) => `route ${r} is not in the spec`),
    ...inventory.codes.filter((c) => !codes.has(c)).map((c) => `error code ${c} is in no response of the spec`),
    ...inventory.codes.filter((c) => c !== 'invalid_config' && !enumCodes.has(c))
        .map((c) => `error code ${c} is not in ErrorCode`),
  ];
}
