// The gateway's routes as its source declares them, and the check that the Postman collection
// (docs/api/postman-collection.json) has a request for each: the data plane's dispatch in
// src/proxy/gateway.cc, the admin listener's in src/admin/admin_api.cc and its handlers
// (admin_keys.cc, admin_tenants.cc), each admin route's query parameters from the table in
// src/admin/admin_query.cc. The parsing follows the shapes that code is written in; a route the
// parser misses still fails the check when its route-table entry ends up with no route at all.
import { readFileSync } from 'node:fs';
import path from 'node:path';

export const SOURCE_FILES = {
  gateway: 'src/proxy/gateway.cc',
  adminApi: 'src/admin/admin_api.cc',
  adminKeys: 'src/admin/admin_keys.cc',
  adminTenants: 'src/admin/admin_tenants.cc',
  adminQuery: 'src/admin/admin_query.cc',
  usage: 'src/usage/usage.h',
};

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
  const add = (method, p) => {
    const base = p.startsWith('/v1/') ? 'base_url' : 'admin_url';
    if (!routes.some((r) => r.method === method && r.path === p)) routes.push({ method, path: p, base });
  };
  // Data plane: `path == "/v1/..." && post` (post: the request's method is POST) or
  // `path == "/v1/..." && request.method() == bhttp::verb::get`.
  if (!/const bool post = request\.method\(\) == bhttp::verb::post;/.test(src.gateway)) {
    throw new Error('gateway.cc: the `post` shorthand changed; update postman_routes.mjs');
  }
  for (const m of all(src.gateway, /path == "(\/v1\/[^"]+)" && (?:(post)\b|request\.method\(\) == bhttp::verb::(\w+))/g)) {
    add(m[2] ? 'POST' : verb(m[3]), m[1]);
  }
  // Admin listener: the unauthenticated routes answer any method (GET is what probes send).
  for (const m of all(src.adminApi, /if \(path == "(\/[a-z]+)"\) \{/g)) add('GET', m[1]);
  for (const m of all(src.adminApi, /path == "(\/admin\/v1\/[^"]+)" && method == bhttp::verb::(\w+)/g)) {
    add(verb(m[2]), m[1]);
  }
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
  return { routes, table };
}

const underTable = (p, t) => (t.prefix ? p.startsWith(t.path) : p === t.path);

// Every request of the collection: {name, method, base, path, query: [names], codes: [saved
// example statuses]}; a path segment that is a variable ({{key_name}}) reads {name}.
export function collectionRequests(collection) {
  const out = [];
  const walk = (items) => {
    for (const it of items) {
      if (it.item) { walk(it.item); continue; }
      const u = it.request.url;
      out.push({
        name: it.name,
        method: it.request.method,
        base: (u.host ?? []).join('').replace(/^\{\{(.*)\}\}$/, '$1'),
        path: '/' + u.path.map((s) => (/^\{\{.+\}\}$/.test(s) ? '{name}' : s)).join('/'),
        query: (u.query ?? []).map((q) => q.key),
        codes: (it.response ?? []).map((r) => r.code),
      });
    }
  };
  walk(collection.item);
  return out;
}

// What the collection lacks, one line each: a route with no request answered 2xx in its saved
// example (on the right listener), a query parameter of a route no request sends, a route-table
// entry with no route found in the source (the parser fell behind the code).
export function missingFromCollection(inventory, collection) {
  const requests = collectionRequests(collection);
  const missing = [];
  for (const t of inventory.table) {
    if (!inventory.routes.some((r) => underTable(r.path, t))) {
      missing.push(`route table entry ${t.path}: no route of the source found under it`);
    }
  }
  for (const r of inventory.routes) {
    const same = requests.filter((q) => q.method === r.method && q.path === r.path && q.base === r.base);
    if (!same.some((q) => q.codes.some((c) => c >= 200 && c < 300))) {
      missing.push(`${r.method} ${r.path}: no request with a 2xx example`);
    }
    const params = inventory.table.find((t) => underTable(r.path, t))?.params ?? [];
    for (const p of params) {
      if (!same.some((q) => q.query.includes(p))) missing.push(`${r.method} ${r.path}?${p}: no request sends it`);
    }
  }
  return missing;
}
