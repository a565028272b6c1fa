// RFC 6902 JSON Patch (add, remove, replace, test) on a plain object, as kustomize applies a
// `patches` entry whose patch is a list of operations. Throws on a path that does not resolve.

function Unescape(token) {
  return token.replace(/~1/g, "/").replace(/~0/g, "~");
}

function Tokens(path) {
  if (path === "") return [];
  if (!path.startsWith("/")) throw new Error(`JSON patch path '${path}' does not start with /`);
  return path.slice(1).split("/").map(Unescape);
}

// The container of the path's last token, and that token (an array index as a number, "-" kept).
function Locate(doc, path) {
  const tokens = Tokens(path);
  if (tokens.length === 0) throw new Error("JSON patch on the whole document is not supported");
  let node = doc;
  for (const token of tokens.slice(0, -1)) {
    node = Array.isArray(node) ? node[Number(token)] : node?.[token];
    if (node === undefined || node === null || typeof node !== "object") {
      throw new Error(`JSON patch path '${path}' does not exist`);
    }
  }
  const last = tokens.at(-1);
  if (!Array.isArray(node)) return { node, key: last };
  if (last === "-") return { node, key: "-" };
  const index = Number(last);
  if (!Number.isInteger(index) || index < 0 || index > node.length) {
    throw new Error(`JSON patch path '${path}': no index ${last}`);
  }
  return { node, key: index };
}

function Apply(doc, op) {
  const { node, key } = Locate(doc, op.path);
  const has = Array.isArray(node) ? key !== "-" && key < node.length : key in node;
  switch (op.op) {
    case "add":
      if (Array.isArray(node)) node.splice(key === "-" ? node.length : key, 0, structuredClone(op.value));
      else node[key] = structuredClone(op.value);
      return;
    case "remove":
    case "replace":
      if (!has) throw new Error(`JSON patch ${op.op} of '${op.path}', which does not exist`);
      if (op.op === "remove") {
        if (Array.isArray(node)) node.splice(key, 1);
        else delete node[key];
      } else {
        node[key] = structuredClone(op.value);
      }
      return;
    case "test":
      if (JSON.stringify(node[key]) !== JSON.stringify(op.value)) {
        throw new Error(`JSON patch test of '${op.path}' failed`);
      }
      return;
    default:
      throw new Error(`JSON patch op '${op.op}' is not supported (add, remove, replace, test)`);
  }
}

export function ApplyJsonPatch(doc, ops) {
  for (const op of ops) Apply(doc, op);
}
