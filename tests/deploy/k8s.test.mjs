// The Kubernetes manifests (k8s/), checked offline: each tree (base, overlays dev and prod, and
// k8s/prometheus-operator) is rendered by lib/kustomize.mjs, which equals `kubectl kustomize`
// where kubectl is on PATH; every object is validated against its schema; and the objects are
// checked against each other and against the gateway's config (the config itself through
// `token-rate-limiter --check-config`, from TRL_BIN_DIR). Each check is a function returning
// its problems, and each is shown to report a mistake planted in a rendered copy.
//   cd tests/deploy && npm ci && TRL_BIN_DIR=../../build/release/src/app node --test
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { CheckConfigAccepted, CheckConfigEnv, CheckSecretKeys } from "./lib/checks/config.mjs";
import {
  CheckContainerPorts, CheckGracePeriod, CheckProbes, CheckSecurityContext,
} from "./lib/checks/gateway_pod.mjs";
import { CheckIngress } from "./lib/checks/ingress.mjs";
import { CheckDashboards, CheckGrafanaDatasource, CheckScrapeJobs } from "./lib/checks/monitoring.mjs";
import { CheckIsolation, CheckServedModels, CheckUpstreamsReachable } from "./lib/checks/network.mjs";
import { CheckAutoscaler, CheckGatewayService, CheckServiceMonitor } from "./lib/checks/services.mjs";
import { ParseDocuments, Render } from "./lib/kustomize.mjs";
import { Find } from "./lib/objects.mjs";
import { CheckSchemas } from "./lib/schema.mjs";

const kRepo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const kTrees = { base: "k8s/base", dev: "k8s/overlays/dev", prod: "k8s/overlays/prod" };
const kOperatorTree = "k8s/prometheus-operator";
// monitoring/ is outside k8s/base: rendered as with --load-restrictor LoadRestrictionsNone.
const kOptions = { loadRestrictor: "none" };
const kHasKubectl = spawnSync("kubectl", ["version", "--client"], { stdio: "ignore" }).status === 0;

const RenderTree = (tree) => Render(path.join(kRepo, tree), kOptions);
const kExampleSecrets = ParseDocuments(
  fs.readFileSync(path.join(kRepo, "k8s/secret.example.yaml"), "utf8"), "k8s/secret.example.yaml");
const kServiceMonitor = RenderTree(kOperatorTree).find((o) => o.kind === "ServiceMonitor");

function Binary() {
  const dir = process.env.TRL_BIN_DIR;
  assert.ok(dir, "set TRL_BIN_DIR to the folder of token-rate-limiter (e.g. build/release/src/app)");
  return path.join(dir, "token-rate-limiter");
}

// Every check of a rendered tree: (objects) => problems.
const kChecks = {
  schemas: CheckSchemas,
  "config env": CheckConfigEnv,
  "secret keys": (objects) => CheckSecretKeys(objects, kExampleSecrets),
  "config accepted": (objects) => CheckConfigAccepted(objects, kExampleSecrets, Binary()),
  probes: CheckProbes,
  "container ports": CheckContainerPorts,
  "gateway service": CheckGatewayService,
  "service monitor": (objects) => CheckServiceMonitor(objects, kServiceMonitor),
  "upstreams reachable": CheckUpstreamsReachable,
  isolation: CheckIsolation,
  "served models": CheckServedModels,
  "grace period": CheckGracePeriod,
  "security context": CheckSecurityContext,
  ingress: CheckIngress,
  autoscaler: CheckAutoscaler,
  dashboards: (objects) => CheckDashboards(objects, kRepo),
  "scrape jobs": CheckScrapeJobs,
  "grafana datasource": CheckGrafanaDatasource,
};

const Key = (o) => `${o.apiVersion} ${o.kind} ${o.metadata.namespace ?? ""}/${o.metadata.name}`;
const Sorted = (objects) => [...objects].sort((a, b) => Key(a).localeCompare(Key(b)));

function Kubectl(tree, ...flags) {
  return spawnSync("kubectl", ["kustomize", ...flags, path.join(kRepo, tree)],
    { encoding: "utf8", maxBuffer: 1 << 28 });
}

describe("rendering", () => {
  for (const tree of [...Object.values(kTrees), kOperatorTree]) {
    test(`${tree} renders as kubectl kustomize does`, { skip: !kHasKubectl && "kubectl is not on PATH" }, () => {
      const kubectl = Kubectl(tree, "--load-restrictor", "LoadRestrictionsNone");
      assert.equal(kubectl.status, 0, kubectl.stderr);
      assert.deepStrictEqual(Sorted(RenderTree(tree)), Sorted(ParseDocuments(kubectl.stdout, "kubectl")));
    });
  }

  test("without LoadRestrictionsNone the base is refused (monitoring/ is outside it)", () => {
    const base = path.join(kRepo, kTrees.base);
    assert.throws(() => Render(base, { loadRestrictor: "rootOnly" }), /is not in or below/);
    if (kHasKubectl) assert.match(Kubectl(kTrees.base).stderr, /is not in or below/);
  });

  test("the renderer refuses what it does not implement", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "trl-kustomize-"));
    const kustomization = path.join(dir, "kustomization.yaml");
    try {
      fs.writeFileSync(kustomization, "replicas: [{name: x, count: 2}]\n");
      assert.throws(() => Render(dir), /the field 'replicas' is not supported/);
      fs.writeFileSync(kustomization, "patches: [{target: {kind: X}, patch: 'kind: X'}]\n");
      assert.throws(() => Render(dir), /a strategic merge patch is not supported/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

for (const [name, tree] of Object.entries(kTrees)) {
  describe(`${name} (${tree})`, () => {
    const objects = RenderTree(tree);
    for (const [check, run] of Object.entries(kChecks)) {
      test(check, () => assert.deepStrictEqual(run(objects), []));
    }
  });
}

describe("the example Secrets (k8s/secret.example.yaml)", () => {
  test("are valid Secrets", () => assert.deepStrictEqual(CheckSchemas(kExampleSecrets), []));
  test("hold placeholders only", () => {
    for (const secret of kExampleSecrets) {
      for (const [key, value] of Object.entries(secret.stringData)) {
        assert.match(value, /^PLACEHOLDER-|^0{64}$/, `${secret.metadata.name} ${key}`);
      }
    }
  });
  test("the ServiceMonitor is a valid ServiceMonitor", () => {
    assert.deepStrictEqual(CheckSchemas([kServiceMonitor]), []);
  });
});

// A rendered prod tree with one mistake in it.
const kProd = RenderTree(kTrees.prod);
function Planted(mutate) {
  const objects = structuredClone(kProd);
  mutate(objects);
  return objects;
}
const Gateway = (objects) => Find(objects, "Deployment", "token-rate-limiter");
const Container = (objects) => Gateway(objects).spec.template.spec.containers[0];
const ConfigMapOf = (objects, prefix) => objects.find((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith(prefix));
function EditConfig(objects, from, to) {
  const configMap = ConfigMapOf(objects, "token-rate-limiter-config-");
  assert.ok(configMap.data["config.yaml"].includes(from), from);
  configMap.data["config.yaml"] = configMap.data["config.yaml"].replace(from, to);
}
const Policy = (objects, name) => Find(objects, "NetworkPolicy", name).spec;
const Annotations = (objects) => Find(objects, "Ingress", "token-rate-limiter").metadata.annotations;

const kMistakes = [
  ["schemas", "a port number written as a string", (o) => { Container(o).ports[1].containerPort = "9090"; },
    /Deployment\/token-rate-limiter: .*containerPort must be integer/],
  ["schemas", "a kind with no schema", (o) => { o.push({ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } }); },
    /Widget\/w: no schema for example.com\/v1 Widget/],
  ["config accepted", "a store backend the gateway does not know", (o) => EditConfig(o, "backend: redis", "backend: redys"),
    /--check-config: .*store\.backend/],
  ["config env", "the Redis password left out of the env", (o) => { Container(o).env = Container(o).env.filter((e) => e.name !== "REDIS_PASSWORD"); },
    /needs \$\{REDIS_PASSWORD\}/],
  ["secret keys", "a Secret key the example does not have", (o) => { Container(o).env[0].valueFrom.secretKeyRef.key = "admin-tokn"; },
    /reads Secret token-rate-limiter key admin-tokn/],
  ["probes", "the readiness probe on the data port", (o) => { Container(o).readinessProbe.httpGet.port = "http"; },
    /readinessProbe: port http \(8080\) is not admin.listen's 9090/],
  ["probes", "the liveness probe on the wrong path", (o) => { Container(o).livenessProbe.httpGet.path = "/health"; },
    /livenessProbe: path \/health, not \/healthz/],
  ["container ports", "the admin port not the config's", (o) => { Container(o).ports[1].containerPort = 9091; },
    /container port admin is 9091, the config listens on 9090/],
  ["gateway service", "the Service's admin port sent to the data port", (o) => { Find(o, "Service", "token-rate-limiter").spec.ports[1].targetPort = "http"; },
    /Service port admin leads to 8080, the config listens on 9090/],
  ["service monitor", "the ServiceMonitor on a port the Service does not name", (o) => { Find(o, "Service", "token-rate-limiter").spec.ports[1].name = "metrics"; },
    /do not name the Service's admin port/],
  ["upstreams reachable", "the NetworkPolicy of Redis without the gateway", (o) => { Policy(o, "redis").ingress.shift(); },
    /store.redis.url \(redis:6379\): the NetworkPolicies keep the gateway from StatefulSet\/redis port 6379/],
  ["upstreams reachable", "the NetworkPolicy of vLLM on another port", (o) => { Policy(o, "vllm").ingress[0].ports[0].port = 8001; },
    /models llama2-7b .*keep the gateway from Deployment\/vllm-llama2-7b port 8000/],
  ["upstreams reachable", "a backend with no Service", (o) => EditConfig(o, "http://vllm-llama2-13b:8000", "http://vllm-llama2-70b:8000"),
    /models llama2-13b \(vllm-llama2-70b:8000\): no Service vllm-llama2-70b/],
  ["upstreams reachable", "a gateway egress policy that forgets Redis", (o) => o.push({
    apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "egress", namespace: "token-rate-limiter" },
    spec: { podSelector: { matchLabels: { "app.kubernetes.io/name": "token-rate-limiter" } }, policyTypes: ["Egress"],
      egress: [{ to: [{ podSelector: { matchLabels: { "app.kubernetes.io/name": "vllm" } } }] }] } }),
    /store.redis.url .*keep the gateway from StatefulSet\/redis/],
  ["isolation", "Redis open to every pod of the namespace", (o) => { Policy(o, "redis").ingress[0].from = [{ podSelector: {} }]; },
    /a pod of the namespace reaches StatefulSet\/redis port 6379/],
  ["isolation", "the admin port open to all", (o) => { delete Policy(o, "token-rate-limiter").ingress[1].from; },
    /a pod of the namespace reaches the gateway's admin port/],
  ["isolation", "the data port closed to the ingress controller", (o) => { Policy(o, "token-rate-limiter").ingress.shift(); },
    /the ingress controller does not reach the gateway's data port/],
  ["served models", "vLLM serving another name", (o) => {
    const args = Find(o, "Deployment", "vllm-llama2-7b").spec.template.spec.containers[0].args;
    args[args.indexOf("--served-model-name=llama2-7b")] = "--served-model-name=llama-2-7b";
  }, /Deployment\/vllm-llama2-7b serves \["llama-2-7b"\], not llama2-7b/],
  ["grace period", "a grace period shorter than preStop + shutdown_grace", (o) => { Gateway(o).spec.template.spec.terminationGracePeriodSeconds = 30; },
    /terminationGracePeriodSeconds 30 is not more than the preStop sleep \(5s\) \+ server.shutdown_grace \(30s\)/],
  ["grace period", "a longer shutdown_grace in the config", (o) => EditConfig(o, "shutdown_grace: 30s", "shutdown_grace: 1m"),
    /terminationGracePeriodSeconds 45 is not more than .*\(60s\)/],
  ["security context", "a writable root file system", (o) => { Container(o).securityContext.readOnlyRootFilesystem = false; },
    /readOnlyRootFilesystem is not true/],
  ["security context", "the pod run as root", (o) => { Gateway(o).spec.template.spec.securityContext.runAsUser = 0; },
    /runAsUser is 0, not 10001/],
  ["security context", "capabilities kept", (o) => { delete Container(o).securityContext.capabilities; },
    /capabilities do not drop ALL/],
  ["ingress", "a body limit below max_body_bytes", (o) => { Annotations(o)["nginx.ingress.kubernetes.io/proxy-body-size"] = "1m"; },
    /proxy-body-size 1m is not server.max_body_bytes \(4194304\)/],
  ["ingress", "buffered streams", (o) => { delete Annotations(o)["nginx.ingress.kubernetes.io/proxy-buffering"]; },
    /proxy-buffering is not off/],
  ["ingress", "a read timeout shorter than a model's", (o) => { Annotations(o)["nginx.ingress.kubernetes.io/proxy-read-timeout"] = "60"; },
    /proxy-read-timeout 60 is shorter than the longest model timeout \(300s\)/],
  ["autoscaler", "replicas set beside the autoscaler", (o) => { Gateway(o).spec.replicas = 3; },
    /sets replicas, which the autoscaler owns/],
  ["dashboards", "a dashboard missing from the ConfigMap", (o) => { delete ConfigMapOf(o, "grafana-dashboards-").data["token-usage-dashboard.json"]; },
    /does not hold monitoring\/grafana\/dashboards\/token-usage-dashboard.json/],
  ["scrape jobs", "the exporter's port renamed", (o) => { Find(o, "StatefulSet", "redis").spec.template.spec.containers[1].ports[0].name = "exporter"; },
    /scrape job redis \(redis;metrics\) finds no pod/],
  ["grafana datasource", "Prometheus's Service on another port", (o) => { Find(o, "Service", "prometheus").spec.ports[0].port = 80; },
    /Grafana's data source http:\/\/prometheus:9090 is not the Service prometheus/],
];

test("a Redis outside the cluster (a managed one) needs no Service or policy here", () => {
  const objects = Planted((o) => EditConfig(o, "@redis:6379/0", "@trl.abc123.cache.example.com:6379"));
  assert.deepStrictEqual(CheckUpstreamsReachable(objects), []);
});

describe("planted mistakes are reported", () => {
  for (const [check, mistake, mutate, expected] of kMistakes) {
    test(`${check}: ${mistake}`, () => {
      const problems = kChecks[check](Planted(mutate));
      assert.ok(problems.some((p) => expected.test(p)), `expected ${expected}, got ${JSON.stringify(problems)}`);
    });
  }

  test("every check has a planted mistake", () => {
    const planted = new Set(kMistakes.map(([check]) => check));
    assert.deepStrictEqual(Object.keys(kChecks).filter((c) => !planted.has(c)), []);
  });
});
