// The gateway as deployed: its Deployment, the config file it reads (from the ConfigMap mounted
// at /etc/token-rate-limiter) and the values in it that other objects must agree with.
import YAML from "yaml";
import { Find } from "./objects.mjs";

export const kGatewayName = "token-rate-limiter";
const kConfigDir = "/etc/token-rate-limiter";

export function GatewayDeployment(objects) {
  const deployment = Find(objects, "Deployment", kGatewayName);
  if (!deployment) throw new Error(`no Deployment ${kGatewayName}`);
  return deployment;
}

export function GatewayContainer(objects) {
  return GatewayDeployment(objects).spec.template.spec.containers[0];
}

// {text, config}: config.yaml of the ConfigMap the gateway container mounts at kConfigDir.
export function GatewayConfig(objects) {
  const spec = GatewayDeployment(objects).spec.template.spec;
  const mount = spec.containers[0].volumeMounts?.find((m) => m.mountPath === kConfigDir);
  const volume = spec.volumes?.find((v) => v.name === mount?.name);
  const configMap = volume?.configMap && Find(objects, "ConfigMap", volume.configMap.name);
  const text = configMap?.data?.["config.yaml"];
  if (text === undefined) throw new Error(`no ConfigMap with config.yaml mounted at ${kConfigDir}`);
  return { text, config: YAML.parse(text) };
}

// "0.0.0.0:8080" -> {host, port}
export function ListenAddress(listen) {
  const match = /^(.*):(\d+)$/.exec(String(listen));
  if (!match) throw new Error(`'${listen}' is not HOST:PORT`);
  return { host: match[1], port: Number(match[2]) };
}

// "250ms", "30s", "1m", "1h", "1d" -> seconds
export function Seconds(duration) {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(String(duration));
  if (!match) throw new Error(`'${duration}' is not a duration`);
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[match[2]];
  return Number(match[1]) * unit;
}

// The ${VAR}s the config needs from the environment (those without a :-default).
export function RequiredEnv(text) {
  const names = [...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1]);
  return [...new Set(names)];
}

// Every host:port the config makes the gateway connect to: {what, host, port}.
export function Upstreams(config) {
  const upstreams = [];
  const redis = config.store?.backend === "redis" ? config.store.redis?.url : undefined;
  for (const url of [redis ?? []].flat()) {
    const match = /^rediss?:\/\/(?:[^@/]*@)?([^:/]+)(?::(\d+))?/.exec(url);
    if (!match) throw new Error(`store.redis.url '${url}' is not a redis:// URL`);
    upstreams.push({ what: "store.redis.url", host: match[1], port: Number(match[2] ?? 6379) });
  }
  for (const model of config.models ?? []) {
    for (const backend of model.backends ?? []) {
      const url = new URL(backend);
      const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
      upstreams.push({ what: `models ${model.name}`, model: model.name, host: url.hostname, port });
    }
  }
  return upstreams;
}

// {name, namespace} of the Service a host names (name, name.namespace, name.namespace.svc...),
// or null for a host outside the cluster (a managed Redis), which no NetworkPolicy here guards.
export function ClusterService(host, namespace) {
  const labels = host.split(".");
  if (labels.length > 2 && labels[2] !== "svc") return null;
  return { name: labels[0], namespace: labels[1] ?? namespace };
}
