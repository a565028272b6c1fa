// What kustomize does last, once the whole tree is built: generated ConfigMaps get a suffix made
// from their content, and the pod specs that name them are changed to the new name.
import { createHash } from "node:crypto";

// Go's encoding/json, which kustomize hashes: keys sorted, and <, >, &, U+2028, U+2029 escaped.
function GoJson(value) {
  const sorted = (v) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])]))
      : v;
  return JSON.stringify(sorted(value)).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

// kustomize v5 (api/hasher): sha256 of {kind, name, data}, the first 10 hex digits with 0 1 3 a e
// replaced. Its name reads empty there (it looks up "metadata/name" as one field), so the hash is
// of the data alone; tests/deploy compares this with `kubectl kustomize` to keep it honest.
function ConfigMapHash(configMap) {
  const encoded = GoJson({ kind: "ConfigMap", name: "", data: configMap.data ?? {} });
  const hex = createHash("sha256").update(encoded).digest("hex").slice(0, 10);
  const swap = { 0: "g", 1: "h", 3: "k", a: "m", e: "t" };
  return hex.replace(/[013ae]/g, (c) => swap[c]);
}

// The pod spec of a workload, or null.
export function PodSpec(obj) {
  if (obj.kind === "Pod") return obj.spec;
  if (obj.kind === "CronJob") return obj.spec?.jobTemplate?.spec?.template?.spec ?? null;
  return obj.spec?.template?.spec ?? null;
}

// Every place a pod spec names a ConfigMap, as [holder, field] pairs.
function ConfigMapReferences(spec) {
  const refs = [];
  for (const volume of spec.volumes ?? []) {
    if (volume.configMap) refs.push([volume.configMap, "name"]);
    for (const source of volume.projected?.sources ?? []) {
      if (source.configMap) refs.push([source.configMap, "name"]);
    }
  }
  for (const container of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) {
    for (const env of container.env ?? []) {
      if (env.valueFrom?.configMapKeyRef) refs.push([env.valueFrom.configMapKeyRef, "name"]);
    }
    for (const from of container.envFrom ?? []) {
      if (from.configMapRef) refs.push([from.configMapRef, "name"]);
    }
  }
  return refs;
}

// Suffixes each generated ConfigMap's name and renames the references in its namespace.
export function SuffixGeneratedNames(items) {
  for (const item of items.filter((i) => i.generated)) {
    const { metadata } = item.obj;
    const old = metadata.name;
    metadata.name = `${old}-${ConfigMapHash(item.obj)}`;
    for (const { obj } of items) {
      const spec = PodSpec(obj);
      if (!spec || obj.metadata?.namespace !== metadata.namespace) continue;
      for (const [holder, field] of ConfigMapReferences(spec)) {
        if (holder[field] === old) holder[field] = metadata.name;
      }
    }
  }
}
