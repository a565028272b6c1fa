// NetworkPolicies, evaluated as the API defines them (ingress and egress, pod and namespace
// selectors, ports by number or name), against what the gateway's config connects to and who
// must stay out. Each check returns a list of problems (empty: fine).
import {
  ClusterService, GatewayConfig, kGatewayName, ListenAddress, Upstreams,
} from "../gateway_config.mjs";
import { ContainerPort, Find, FindAll, Pods, Selects, ServicePods } from "../objects.mjs";

const kIngressNamespace = "ingress-nginx";

function NamespaceLabels(objects, namespace) {
  const labels = Find(objects, "Namespace", namespace)?.metadata.labels;
  return { ...labels, "kubernetes.io/metadata.name": namespace };
}

// Whether a policy peer (from/to entry) is the pod {namespace, labels}.
function PeerIs(objects, peer, policyNamespace, pod) {
  if (peer.ipBlock) return false;
  const namespaceOk = peer.namespaceSelector
    ? Selects(peer.namespaceSelector, NamespaceLabels(objects, pod.namespace))
    : pod.namespace === policyNamespace;
  return namespaceOk && (!peer.podSelector || Selects(peer.podSelector, pod.labels));
}

function PortIs(rulePorts, port) {
  if (!rulePorts?.length) return true;
  return rulePorts.some((p) => (p.protocol ?? "TCP") === "TCP" && (p.port === undefined ||
    p.port === port.number || (port.name !== undefined && p.port === port.name) ||
    (p.endPort !== undefined && port.number >= p.port && port.number <= p.endPort)));
}

// Whether `direction` (Ingress of `self`, or its Egress) admits a connection with `other`.
function Admits(objects, direction, self, other, port) {
  const policies = FindAll(objects, "NetworkPolicy").filter((p) => {
    const types = p.spec.policyTypes ?? (p.spec.egress ? ["Ingress", "Egress"] : ["Ingress"]);
    return p.metadata.namespace === self.namespace && Selects(p.spec.podSelector, self.labels) &&
      types.includes(direction);
  });
  if (policies.length === 0) return true;
  const [rules, peers] = direction === "Ingress" ? ["ingress", "from"] : ["egress", "to"];
  return policies.some((p) => (p.spec[rules] ?? []).some((rule) => PortIs(rule.ports, port) &&
    (!rule[peers]?.length || rule[peers].some((peer) => PeerIs(objects, peer, p.metadata.namespace, other)))));
}

// Whether `from` may open a connection to `to` on `port` ({number, name} of `to`'s container).
function Connects(objects, from, to, port) {
  return Admits(objects, "Egress", from, to, port) && Admits(objects, "Ingress", to, from, port);
}

function GatewayPod(objects) {
  return Pods(objects).find((p) => p.owner === `Deployment/${kGatewayName}`);
}

// The config's Redis and model backends in the cluster: a Service of the namespace each, whose
// pods the NetworkPolicies let the gateway reach on that port.
export function CheckUpstreamsReachable(objects) {
  const gateway = GatewayPod(objects);
  const problems = [];
  for (const upstream of Upstreams(GatewayConfig(objects).config)) {
    const target = ClusterService(upstream.host, gateway.namespace);
    if (!target) continue;
    const where = `${upstream.what} (${upstream.host}:${upstream.port})`;
    const service = target.namespace === gateway.namespace && Find(objects, "Service", target.name);
    if (!service) {
      problems.push(`${where}: no Service ${target.name} in namespace ${gateway.namespace}`);
      continue;
    }
    const servicePort = service.spec.ports.find((p) => p.port === upstream.port);
    if (!servicePort) {
      problems.push(`${where}: Service ${name} has no port ${upstream.port}`);
      continue;
    }
    const pods = ServicePods(objects, service);
    if (pods.length === 0) problems.push(`${where}: Service ${name} selects no pod`);
    for (const pod of pods) {
      const port = ContainerPort(pod.spec, servicePort.targetPort ?? servicePort.port);
      if (!port) problems.push(`${where}: ${pod.owner} has no port ${servicePort.targetPort}`);
      else if (!Connects(objects, gateway, pod, port)) {
        problems.push(`${where}: the NetworkPolicies keep the gateway from ${pod.owner} port ${port.number}`);
      }
    }
  }
  return problems;
}

// The pods behind an upstream in the cluster ([] for one outside it, or without a Service).
function UpstreamPods(objects, upstream, namespace) {
  const target = ClusterService(upstream.host, namespace);
  const service = target?.namespace === namespace && Find(objects, "Service", target.name);
  return service ? ServicePods(objects, service) : [];
}

function ContainerPorts(pod) {
  return pod.spec.containers.flatMap((c) => (c.ports ?? []).map((p) => ({ number: p.containerPort, name: p.name })));
}

// Only the gateway (and Prometheus) reach Redis and the model servers; the admin port takes
// Prometheus and not the ingress controller, which reaches the data port.
export function CheckIsolation(objects) {
  const gateway = GatewayPod(objects);
  const namespace = gateway.namespace;
  const stranger = { namespace, labels: { "app.kubernetes.io/name": "stranger" } };
  const outsider = { namespace: "elsewhere", labels: {} };
  const prometheus = { namespace, labels: { "app.kubernetes.io/name": "prometheus" } };
  const controller = { namespace: kIngressNamespace, labels: { "app.kubernetes.io/name": "ingress-nginx" } };
  const { config } = GatewayConfig(objects);
  const data = { number: ListenAddress(config.listen).port, name: "http" };
  const admin = { number: ListenAddress(config.admin.listen).port, name: "admin" };
  const problems = [];
  const upstreamPods = Upstreams(config).flatMap((u) => UpstreamPods(objects, u, namespace));
  for (const pod of upstreamPods) {
    for (const port of ContainerPorts(pod)) {
      for (const [who, from] of [["a pod of the namespace", stranger], ["a pod of another namespace", outsider]]) {
        if (Connects(objects, from, pod, port)) problems.push(`${who} reaches ${pod.owner} port ${port.number}`);
      }
    }
  }
  const want = (ok, what) => ok || problems.push(what);
  want(!Connects(objects, stranger, gateway, admin), "a pod of the namespace reaches the gateway's admin port");
  want(!Connects(objects, controller, gateway, admin), "the ingress controller reaches the gateway's admin port");
  want(Connects(objects, prometheus, gateway, admin), "Prometheus does not reach the gateway's admin port");
  want(Connects(objects, controller, gateway, data), "the ingress controller does not reach the gateway's data port");
  return problems;
}

// The name each model has in the config is one its backend's server answers to: vLLM's
// --served-model-name, or one of mock-llm's --models.
export function CheckServedModels(objects) {
  const problems = [];
  const { namespace } = GatewayPod(objects);
  for (const upstream of Upstreams(GatewayConfig(objects).config).filter((u) => u.model)) {
    for (const pod of UpstreamPods(objects, upstream, namespace)) {
      const served = pod.spec.containers.flatMap((c) => ServedNames(c.args ?? []));
      if (!served.includes(upstream.model)) {
        problems.push(`${pod.owner} serves ${JSON.stringify(served)}, not ${upstream.model}`);
      }
    }
  }
  return problems;
}

function ServedNames(args) {
  const names = [];
  args.forEach((arg, i) => {
    const [flag, inline] = arg.split(/=(.*)/s);
    const value = inline ?? args[i + 1];
    if (flag === "--served-model-name") names.push(value);
    if (flag === "--models") names.push(...value.split(","));
  });
  return names;
}
