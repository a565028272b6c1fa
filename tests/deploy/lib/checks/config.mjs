// The gateway's config as deployed: accepted by the gateway itself, and every value it takes
// from the environment given by the Deployment, from a Secret key that
// k8s/secret.example.yaml documents. Each check returns a list of problems (empty: fine).
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { GatewayConfig, GatewayContainer, RequiredEnv } from "../gateway_config.mjs";

// name -> {value} or {secret, key}, from the gateway container's env.
function ContainerEnv(objects) {
  const env = new Map();
  for (const e of GatewayContainer(objects).env ?? []) {
    const ref = e.valueFrom?.secretKeyRef;
    env.set(e.name, ref ? { secret: ref.name, key: ref.key } : { value: e.value ?? "" });
  }
  return env;
}

export function CheckConfigEnv(objects) {
  const env = ContainerEnv(objects);
  return RequiredEnv(GatewayConfig(objects).text)
    .filter((name) => !env.has(name))
    .map((name) => `the config needs \${${name}}, which the gateway container's env does not set`);
}

// Every secretKeyRef of every pod names a Secret and key of the example Secrets.
export function CheckSecretKeys(objects, exampleSecrets) {
  const problems = [];
  for (const obj of objects) {
    const spec = obj.spec?.template?.spec;
    for (const container of spec?.containers ?? []) {
      for (const e of container.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        if (!ref) continue;
        const secret = exampleSecrets.find((s) => s.metadata.name === ref.name);
        if (!secret?.stringData || !(ref.key in secret.stringData)) {
          problems.push(`${obj.kind}/${obj.metadata.name} ${container.name}: env ${e.name} reads ` +
            `Secret ${ref.name} key ${ref.key}, which k8s/secret.example.yaml does not have`);
        }
      }
    }
  }
  return problems;
}

// `token-rate-limiter --check-config` on the ConfigMap's config, with the container's env (Secret
// values from the example Secrets). Returns its output as problems when it fails.
export function CheckConfigAccepted(objects, exampleSecrets, binary) {
  const env = { PATH: process.env.PATH };
  for (const [name, source] of ContainerEnv(objects)) {
    env[name] = source.value ?? exampleSecrets
      .find((s) => s.metadata.name === source.secret)?.stringData?.[source.key];
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "trl-k8s-"));
  const file = path.join(dir, "config.yaml");
  try {
    fs.writeFileSync(file, GatewayConfig(objects).text);
    execFileSync(binary, ["--check-config", file], { env, stdio: "pipe" });
    return [];
  } catch (error) {
    const output = `${error.stdout ?? ""}${error.stderr ?? ""}`.trim() || error.message;
    return output.split("\n").map((line) => `--check-config: ${line}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
