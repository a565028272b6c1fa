// Imports a k6 script under Node with stand-ins for k6's modules (k6, k6/http, k6/metrics), so
// a test can read its `options` and run its default function against canned responses: k6 itself
// is not packaged here. The stand-ins record into globalThis.__k6: requests sent, checks and
// their results, metric samples by name.
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';

const STUBS = {
  k6: `export function check(v, sets) {
         const r = {};
         for (const [name, f] of Object.entries(sets)) r[name] = Boolean(f(v));
         globalThis.__k6.checks.push(r);
         return Object.values(r).every(Boolean);
       }
       export function sleep() {}`,
  'k6/http': `export default {
         post(url, body, params) {
           globalThis.__k6.requests.push({ url, body: JSON.parse(body), params });
           return globalThis.__k6.respond({ url, body: JSON.parse(body), params });
         },
         setResponseCallback(cb) { globalThis.__k6.responseCallback = cb; },
         expectedStatuses(...statuses) { return { expectedStatuses: statuses }; },
       };`,
  'k6/metrics': `class Metric {
         constructor(name) { this.name = name; globalThis.__k6.metrics[name] = []; }
         add(value, tags) { globalThis.__k6.metrics[this.name].push({ value, tags }); }
       }
       export class Counter extends Metric {}
       export class Rate extends Metric {}
       export class Trend extends Metric {}
       export class Gauge extends Metric {}`,
};

const HOOKS = `const stubs = ${JSON.stringify(STUBS)};
export async function resolve(specifier, context, next) {
  if (Object.hasOwn(stubs, specifier)) {
    return { shortCircuit: true, url: 'data:text/javascript,' + encodeURIComponent(stubs[specifier]) };
  }
  return next(specifier, context);
}`;
register(`data:text/javascript,${encodeURIComponent(HOOKS)}`);

// Imports `file` with k6's __ENV set to `env`. Every import is a fresh copy of the script (a query
// string makes a new module URL) but not of performance/k6/common.js, which it imports: that one
// reads BASE_URL, API_KEY and MODEL once, from the env of the first import.
let generation = 0;
export async function importK6(file, env = {}) {
  globalThis.__ENV = env;
  globalThis.__k6 = { requests: [], checks: [], metrics: {}, responseCallback: undefined,
                      respond: () => ({ status: 200, headers: {}, body: '' }) };
  const url = `${pathToFileURL(file).href}?k6=${++generation}`;
  const mod = await import(url);
  return { mod, k6: globalThis.__k6 };
}
