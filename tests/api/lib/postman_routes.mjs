// The check that the Postman collection (docs/api/postman-collection.json) has a request for each
// route of the gateway's source (lib/source_routes.mjs).
export { readSources, sourceInventory } from './source_routes.mjs';

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
