// Looking things up in a rendered tree: objects by kind and name, label selectors, the pods
// that workloads make, and container ports.
import { PodSpec } from "./kustomize_names.mjs";

export function Find(objects, kind, name) {
  return objects.find((o) => o.kind === kind && o.metadata.name === name);
}

export function FindAll(objects, kind) {
  return objects.filter((o) => o.kind === kind);
}

// A LabelSelector ({matchLabels, matchExpressions}) or a Service's plain map against labels.
export function Selects(selector, labels = {}) {
  if (!selector) return false;
  const plain = !("matchLabels" in selector) && !("matchExpressions" in selector);
  const matchLabels = plain ? selector : selector.matchLabels ?? {};
  const labelsOk = Object.entries(matchLabels).every(([k, v]) => labels[k] === v);
  const expressionsOk = (plain ? [] : selector.matchExpressions ?? []).every((e) => {
    const has = e.key in labels;
    switch (e.operator) {
      case "In": return has && e.values.includes(labels[e.key]);
      case "NotIn": return !has || !e.values.includes(labels[e.key]);
      case "Exists": return has;
      case "DoesNotExist": return !has;
      default: throw new Error(`unknown selector operator ${e.operator}`);
    }
  });
  return labelsOk && expressionsOk;
}

// The pods workloads make: {owner, namespace, labels, spec}.
export function Pods(objects) {
  return objects.flatMap((o) => {
    const spec = PodSpec(o);
    if (!spec) return [];
    const labels = o.kind === "Pod" ? o.metadata.labels : o.spec.template?.metadata?.labels;
    return [{ owner: `${o.kind}/${o.metadata.name}`, namespace: o.metadata.namespace, labels: labels ?? {}, spec }];
  });
}

// {number, name, container} of a port given by number or name, or null.
export function ContainerPort(spec, port) {
  for (const container of spec.containers ?? []) {
    for (const p of container.ports ?? []) {
      if (p.containerPort === port || p.name === port) {
        return { number: p.containerPort, name: p.name, container };
      }
    }
  }
  return typeof port === "number" ? { number: port, name: undefined, container: null } : null;
}

// The pods a Service sends to.
export function ServicePods(objects, service) {
  return Pods(objects).filter((pod) => pod.namespace === service.metadata.namespace &&
    Selects(service.spec.selector, pod.labels));
}
