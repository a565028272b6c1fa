// The gateway's routes and error codes as its source declares them, for the checks that the API
// documents (docs/api/openapi.yaml, docs/api/postman-collection.json) cover all of them: the data
// plane's dispatch in src/proxy/gateway.cc, the admin listener's table of fixed routes in
// src/admin/admin_api.cc and its handlers (admin_keys.cc, admin_tenants.cc), each admin route's
// query parameters from the table in src/admin/admin_query.cc, the error table of
// src/proxy/errors.cc. The parsing follows the shapes that code is written in and throws when a
// pattern finds nothing; a route the parser misses still shows when its query-table entry ends
// up with no route at all.
import { readFileSync } from 'node:fs';
import path from 'node:path';

export const SOURCE_FILES = {
  gateway: 'src/proxy/gateway.cc',
  errors: 'src/proxy/errors.cc',
  adminApi: 'src/admin/admin_api.cc',
  adminKeys: 'src/admin/admin_keys.cc',
  adminKeyChanges: 'src/admin/admin_key_changes.cc',
  adminKeyFields: 'src/admin/admin_key_fields.cc',
  adminTenants: 'src/admin/admin_tenants.cc',
  adminUsage: 'src/admin/admin_usage.cc',
  adminViews: 'src/admin/admin_views.cc',
  adminQuery: 'src/admin/admin_query.cc',
  usage: 'src/usage/usage.h',
};
// The files whose ErrorResponse calls answer admin errors.
const ADMIN_HANDLERS = ['adminApi', 'adminKeys', 'adminKeyChanges', 'adminKeyFields', 'adminTenants',
  'adminUsage', 'adminViews'];

export function readSources(repoRoot) {
  const out = {};
  for (const [name, rel] of Object.entries(SOURCE_FILES)) {
    out[name] = readFileSync(path.join(repoRoot, rel), 'utf8');
  }
  return out;
}

const verb = (v) => v.replace(/_$/, '').toUpperCase();  // bhttp::verb::delete_ -> DELETE
const all = (text, re) => [...text.matchAll(re)];
const strings = (list) => all(list, /"([^"]*)"/g).map((m) => m[1]);

// `IDENT = {"a", "b"}` or `IDENT[] = {"a"}` in any of `texts`: the strings listed.
function stringList(ident, texts) {
  const re = new RegExp(`\\b${ident}(?:\\[\\])?\\s*=\\s*\\{([^}]*)\\}`);
  for (const t of texts) {
    const m = t.match(re);
    if (m) return strings(m[1]);
  }
  throw new Error(`no list named ${ident} in the sources`);
}

// {routes: [{method, path, base}], table: [{path, prefix, params}]}. `path` uses {name} for a
// path segment that names something; base is the listener: base_url or admin_url.
export function sourceInventory(src) {
  const routes = [];
  const add = (method, p, base = 'admin_url') => {
    if (!routes.some((r) => r.method === method && r.path === p)) routes.push({ method, path: p, base });
  };
  // Data plane: the POST routes of kInferenceRoutes, and `NAME = path == "/v1/..."` answered
  // when `NAME && request.method() == bhttp::verb::X`.
  const post = src.gateway.match(/constexpr InferenceRoute kInferenceRoutes\[\] = \{([\s\S]*?)\n\};/);
  if (!post) throw new Error('gateway.cc: no kInferenceRoutes table; update source_routes.mjs');
  for (const m of all(post[1], /\{"(\/[^"]+)", ApiEndpoint::k\w+\}/g)) add('POST', m[1], 'base_url');
  for (const m of all(src.gateway, /const bool (\w+) = path == "(\/v1\/[^"]+)";/g)) {
    const method = src.gateway.match(new RegExp(`${m[1]} && request\\.method\\(\\) == bhttp::verb::(\\w+)`));
    if (!method) throw new Error(`gateway.cc: no method for ${m[2]}; update source_routes.mjs`);
    add(verb(method[1]), m[2], 'base_url');
  }
  // Admin listener: the routes at one exact path, each with its method (kFixedRoutes).
  const fixed = src.adminApi.match(/constexpr FixedRoute kFixedRoutes\[\] = \{([\s\S]*?)\n\};/);
  if (!fixed) throw new Error('admin_api.cc: no kFixedRoutes table; update source_routes.mjs');
  for (const m of all(fixed[1], /\{"(\/[^"]+)", bhttp::verb::(\w+), "/g)) add(verb(m[2]), m[1]);
  // The handlers a prefix is handed to: a collection route and its {name} routes.
  for (const text of [src.adminKeys, src.adminTenants]) {
    for (const m of all(text, /if \(path == "(\/admin\/v1\/\w+)"\) \{([\s\S]*?)\n  \}/g)) {
      for (const v of all(m[2], /method (?:==|!=) (?:http::)?bhttp::verb::(\w+)/g)) add(verb(v[1]), m[1]);
    }
    const base = text.match(/path\.substr\(std::string_view\("(\/admin\/v1\/\w+)\/"\)\.size\(\)\)/);
    if (!base) continue;
    const item = `${base[1]}/{name}`;
    // admin_keys.cc: `action.empty() && method == verb::X`, `action == "/a" && method == verb::X`.
    for (const v of all(text, /action\.empty\(\) && method == bhttp::verb::(\w+)/g)) add(verb(v[1]), item);
    for (const v of all(text, /action == "(\/\w+)" && method == bhttp::verb::(\w+)/g)) {
      add(verb(v[2]), item + v[1]);
    }
    // admin_tenants.cc: one action besides the item, `wanted = action.empty() ? verb::X : verb::Y`.
    const wanted = text.match(/action\.empty\(\) \? http::bhttp::verb::(\w+) : http::bhttp::verb::(\w+)/);
    if (wanted) {
      const actions = all(text, /action != "(\/\w+)"/g).map((a) => a[1]);
      if (actions.length !== 1) throw new Error(`${base[1]}: ${actions.length} actions, expected 1`);
      add(verb(wanted[1]), item);
      add(verb(wanted[2]), item + actions[0]);
    }
  }
  const tableText = src.adminQuery.match(/constexpr RouteParams kRoutes\[\] = \{([\s\S]*?)\n\};/);
  if (!tableText) throw new Error('admin_query.cc: no kRoutes table');
  const table = all(tableText[1], /\{"([^"]+)", (true|false), (\{\}|\w+)\}/g).map((m) => ({
    path: m[1], prefix: m[2] === 'true',
    params: m[3] === '{}' ? [] : stringList(m[3], [src.adminQuery, src.usage]),
  }));
  return { routes, table, codes: errorCodes(src) };
}


// Every error code the gateway answers: the table of src/proxy/errors.cc and the admin API's own
// (its handlers' ErrorResponse calls and the reload's invalid_config).
function errorCodes(src) {
  const codes = new Set();
  for (const m of all(src.errors, /ErrorSpec\{ApiError::k\w+, \d{3}, [^,]+, "([a-z_]+)"/g)) codes.add(m[1]);
  if (codes.size === 0) throw new Error('errors.cc: no ErrorSpec rows; update source_routes.mjs');
  for (const name of ADMIN_HANDLERS) {
    for (const m of all(src[name], /ErrorResponse\(\s*\d{3},\s*"[a-z_]+",\s*"([a-z_]+)"/g)) codes.add(m[1]);
  }
  const reload = all(src.adminApi, /error\["code"\] = "([a-z_]+)"/g);
  if (reload.length === 0) throw new Error('admin_api.cc: no reload error code; update source_routes.mjs');
  for (const m of reload) codes.add(m[1]);
  return [...codes].sort();
}
