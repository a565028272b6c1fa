// The gateway's pod against its config: probes on the admin listener, container ports on both
// listeners, a grace period that lets streams drain, and the security context of
// docker/Dockerfile's user. Each check returns a list of problems (empty: fine).
import {
  GatewayConfig, GatewayContainer, GatewayDeployment, ListenAddress, Seconds,
} from "../gateway_config.mjs";
import { ContainerPort } from "../objects.mjs";

const kDefaultShutdownGrace = "30s";

export function CheckProbes(objects) {
  const { config } = GatewayConfig(objects);
  const spec = GatewayDeployment(objects).spec.template.spec;
  const container = GatewayContainer(objects);
  const admin = ListenAddress(config.admin?.listen).port;
  const problems = [];
  for (const [probe, wanted] of [["readinessProbe", "/readyz"], ["livenessProbe", "/healthz"]]) {
    const get = container[probe]?.httpGet;
    if (!get) {
      problems.push(`${probe}: not an httpGet probe`);
      continue;
    }
    if (get.path !== wanted) problems.push(`${probe}: path ${get.path}, not ${wanted}`);
    const port = ContainerPort(spec, get.port);
    if (port?.number !== admin) {
      problems.push(`${probe}: port ${get.port} (${port?.number}) is not admin.listen's ${admin}`);
    }
  }
  return problems;
}

export function CheckContainerPorts(objects) {
  const { config } = GatewayConfig(objects);
  const spec = GatewayDeployment(objects).spec.template.spec;
  const problems = [];
  for (const [name, listen] of [["http", config.listen], ["admin", config.admin?.listen]]) {
    const port = ContainerPort(spec, name);
    const wanted = ListenAddress(listen).port;
    if (port?.number !== wanted) {
      problems.push(`container port ${name} is ${port?.number}, the config listens on ${wanted}`);
    }
  }
  return problems;
}

// Seconds the preStop hook takes before SIGTERM (sleep N), 0 without one.
function PreStopSeconds(container) {
  const hook = container.lifecycle?.preStop;
  if (hook?.sleep) return hook.sleep.seconds;
  const command = hook?.exec?.command ?? [];
  return command[0] === "sleep" ? Number(command[1]) : 0;
}

// The kubelet's grace period runs from the start of preStop: it must hold the preStop sleep and
// then the gateway's own drain (server.shutdown_grace), or the streams still running are killed.
export function CheckGracePeriod(objects) {
  const { config } = GatewayConfig(objects);
  const spec = GatewayDeployment(objects).spec.template.spec;
  const grace = spec.terminationGracePeriodSeconds ?? 30;
  const preStop = PreStopSeconds(GatewayContainer(objects));
  const drain = Seconds(config.server?.shutdown_grace ?? kDefaultShutdownGrace);
  if (preStop <= 0) return ["no preStop sleep: the pod leaves the endpoints after SIGTERM"];
  if (grace <= preStop + drain) {
    return [`terminationGracePeriodSeconds ${grace} is not more than the preStop sleep ` +
      `(${preStop}s) + server.shutdown_grace (${drain}s)`];
  }
  return [];
}

export function CheckSecurityContext(objects) {
  const pod = GatewayDeployment(objects).spec.template.spec.securityContext ?? {};
  const own = GatewayContainer(objects).securityContext ?? {};
  const effective = (field) => own[field] ?? pod[field];
  const problems = [];
  const want = (ok, what) => ok || problems.push(what);
  want(effective("runAsNonRoot") === true, "runAsNonRoot is not true");
  want(effective("runAsUser") === 10001, `runAsUser is ${effective("runAsUser")}, not 10001`);
  want(own.readOnlyRootFilesystem === true, "readOnlyRootFilesystem is not true");
  want(own.allowPrivilegeEscalation === false, "allowPrivilegeEscalation is not false");
  want(JSON.stringify(own.capabilities?.drop) === '["ALL"]', "capabilities do not drop ALL");
  want(effective("seccompProfile")?.type === "RuntimeDefault", "seccompProfile is not RuntimeDefault");
  return problems;
}
