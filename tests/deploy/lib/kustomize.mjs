// Renders a kustomization as `kubectl kustomize` (kustomize v5) does, for the subset of kustomize
// that k8s/ uses, and refuses every field or form outside it, so that the tree cannot grow past
// what this renderer knows without the test saying so. The subset:
//   resources        YAML files and kustomization directories
//   namespace        metadata.namespace of namespaced objects; RoleBinding subjects that name a
//                    ServiceAccount of the tree
//   labels           pairs added to metadata.labels (includeSelectors/includeTemplates: false)
//   images           name -> newName / newTag / digest in pod specs' containers
//   patches          JSON 6902 operations (inline `patch` or `path`) on a `target`
//   configMapGenerator  name + files ([key=]path) and literals (key=value); name suffixed with
//                    a hash of the content, references in pod specs renamed
// Transformers run in kustomize's order: patches, namespace, labels, images.
// loadRestrictor: "rootOnly" (kustomize's default: files must be in or below the
// kustomization's directory) or "none" (--load-restrictor LoadRestrictionsNone).
import fs from "node:fs";
import path from "node:path";
import jsonpatch from "fast-json-patch";
import YAML from "yaml";
import { PodSpec, SuffixGeneratedNames } from "./kustomize_names.mjs";

const kFields = new Set([
  "apiVersion", "kind", "resources", "namespace", "labels", "images", "patches",
  "configMapGenerator",
]);
const kClusterScoped = new Set([
  "Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass",
  "CustomResourceDefinition", "PriorityClass", "IngressClass",
]);

function Refuse(where, what) {
  throw new Error(`${where}: ${what} is not supported by tests/deploy/lib/kustomize.mjs`);
}

function KustomizationFile(dir) {
  for (const name of ["kustomization.yaml", "kustomization.yml", "Kustomization"]) {
    const file = path.join(dir, name);
    if (fs.existsSync(file)) return file;
  }
  throw new Error(`${dir}: no kustomization.yaml`);
}

export function ParseDocuments(text, where) {
  return YAML.parseAllDocuments(text).flatMap((doc) => {
    if (doc.errors.length) throw new Error(`${where}: ${doc.errors[0].message}`);
    const obj = doc.toJS();
    return obj === null ? [] : [obj];
  });
}

// A file the kustomization at `dir` reads, within the load restrictor's bounds.
function ReadFile(dir, relative, options) {
  const file = path.resolve(dir, relative);
  const real = fs.realpathSync(file);
  const root = fs.realpathSync(dir);
  if (options.loadRestrictor !== "none" && !real.startsWith(root + path.sep)) {
    throw new Error(`${relative}: security; file '${real}' is not in or below '${root}' ` +
      "(kustomize's load restrictor; pass loadRestrictor: none)");
  }
  return fs.readFileSync(file, "utf8");
}

function Generate(dir, generator, options) {
  const where = `configMapGenerator ${generator.name}`;
  for (const key of Object.keys(generator)) {
    if (!["name", "files", "literals"].includes(key)) Refuse(where, `'${key}'`);
  }
  const data = {};
  for (const entry of generator.files ?? []) {
    const [key, file] = entry.includes("=") ? entry.split(/=(.*)/s) : [path.basename(entry), entry];
    data[key] = ReadFile(dir, file, options);
  }
  for (const literal of generator.literals ?? []) {
    const [key, value] = literal.split(/=(.*)/s);
    data[key] = value;
  }
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name: generator.name }, data };
}

function Selects(selector, labels = {}) {
  return selector.split(",").every((term) => {
    const [key, value] = term.split("=");
    return labels[key.trim()] === value?.trim();
  });
}

function Targets(target, obj, where) {
  for (const key of Object.keys(target)) {
    if (!["group", "version", "kind", "name", "labelSelector"].includes(key)) {
      Refuse(where, `target.${key}`);
    }
  }
  const [group, version] = obj.apiVersion.includes("/") ? obj.apiVersion.split("/") : ["", obj.apiVersion];
  const anchored = (pattern, value) => new RegExp(`^(?:${pattern})$`).test(value);
  return (target.group === undefined || target.group === group) &&
    (target.version === undefined || target.version === version) &&
    (target.kind === undefined || anchored(target.kind, obj.kind)) &&
    (target.name === undefined || anchored(target.name, obj.metadata.name)) &&
    (target.labelSelector === undefined || Selects(target.labelSelector, obj.metadata.labels));
}

function Patch(dir, items, patch, options) {
  const where = `patches (${patch.path ?? "inline"})`;
  for (const key of Object.keys(patch)) {
    if (!["target", "patch", "path"].includes(key)) Refuse(where, `'${key}'`);
  }
  if (!patch.target) Refuse(where, "a patch without a target (strategic merge)");
  const text = patch.path !== undefined ? ReadFile(dir, patch.path, options) : patch.patch;
  const ops = YAML.parse(text);
  if (!Array.isArray(ops)) Refuse(where, "a strategic merge patch");
  const matched = items.filter(({ obj }) => Targets(patch.target, obj, where));
  if (matched.length === 0) throw new Error(`${where}: no resource matches the target`);
  // RFC 6902, in place; a path that does not resolve throws, as kustomize fails.
  for (const { obj } of matched) jsonpatch.applyPatch(obj, ops, true, true);
}

function SetNamespace(items, namespace) {
  for (const { obj } of items) {
    if (obj.kind === "Namespace" && obj.metadata.name !== namespace) {
      Refuse(`Namespace ${obj.metadata.name}`, `renaming a Namespace to '${namespace}'`);
    }
    if (!kClusterScoped.has(obj.kind)) obj.metadata.namespace = namespace;
  }
  const accounts = new Set(items.filter(({ obj }) => obj.kind === "ServiceAccount")
    .map(({ obj }) => obj.metadata.name));
  for (const { obj } of items) {
    if (obj.kind !== "RoleBinding" && obj.kind !== "ClusterRoleBinding") continue;
    for (const subject of obj.subjects ?? []) {
      if (subject.kind === "ServiceAccount" && accounts.has(subject.name)) subject.namespace = namespace;
    }
  }
}

function AddLabels(items, entry) {
  for (const key of Object.keys(entry)) {
    if (key !== "pairs" && entry[key] !== false) Refuse("labels", `'${key}: ${entry[key]}'`);
  }
  for (const { obj } of items) {
    obj.metadata.labels = { ...obj.metadata.labels, ...entry.pairs };
  }
}

function SetImage(containers, image) {
  for (const container of containers ?? []) {
    const match = /^(.*?)((?::[^:/@]+)?(?:@.+)?)$/.exec(container.image);
    if (match[1] !== image.name) continue;
    let tag = match[2];
    if (image.newTag !== undefined) tag = `:${image.newTag}`;
    if (image.digest !== undefined) tag = `@${image.digest}`;
    container.image = `${image.newName ?? image.name}${tag}`;
  }
}

function SetImages(items, image) {
  for (const key of Object.keys(image)) {
    if (!["name", "newName", "newTag", "digest"].includes(key)) Refuse("images", `'${key}'`);
  }
  for (const { obj } of items) {
    const spec = PodSpec(obj);
    if (!spec) continue;
    SetImage(spec.containers, image);
    SetImage(spec.initContainers, image);
  }
}

// The resources of one kustomization, each {obj, generated}, before the final renaming.
function Build(dir, options) {
  const file = KustomizationFile(dir);
  const k = YAML.parse(fs.readFileSync(file, "utf8"));
  for (const key of Object.keys(k)) {
    if (!kFields.has(key)) Refuse(file, `the field '${key}'`);
  }
  const items = [];
  for (const entry of k.resources ?? []) {
    const target = path.resolve(dir, entry);
    if (fs.statSync(target).isDirectory()) {
      items.push(...Build(target, options));
    } else {
      const docs = ParseDocuments(ReadFile(dir, entry, options), target);
      items.push(...docs.map((obj) => ({ obj, generated: false })));
    }
  }
  for (const generator of k.configMapGenerator ?? []) {
    items.push({ obj: Generate(dir, generator, options), generated: true });
  }
  for (const patch of k.patches ?? []) Patch(dir, items, patch, options);
  if (k.namespace !== undefined) SetNamespace(items, k.namespace);
  for (const entry of k.labels ?? []) AddLabels(items, entry);
  for (const image of k.images ?? []) SetImages(items, image);
  return items;
}

export function Render(dir, options = { loadRestrictor: "rootOnly" }) {
  const items = Build(path.resolve(dir), options);
  SuffixGeneratedNames(items);
  return items.map(({ obj }) => obj);
}
