// Services, the autoscaler and the ServiceMonitor against the pods and the gateway's config.
// Each check returns a list of problems (empty: fine).
import { GatewayConfig, GatewayDeployment, kGatewayName, ListenAddress } from "../gateway_config.mjs";
import { ContainerPort, Find, FindAll, Selects, ServicePods } from "../objects.mjs";

// The gateway Service's ports http and admin lead to the config's two listeners.
export function CheckGatewayService(objects) {
  const { config } = GatewayConfig(objects);
  const service = Find(objects, "Service", kGatewayName);
  if (!service) return [`no Service ${kGatewayName}`];
  const pods = ServicePods(objects, service);
  if (!pods.some((p) => p.owner === `Deployment/${kGatewayName}`)) {
    return [`Service ${kGatewayName} does not select the gateway's pods`];
  }
  const problems = [];
  for (const [name, listen] of [["http", config.listen], ["admin", config.admin?.listen]]) {
    const port = service.spec.ports.find((p) => p.name === name);
    const target = port && ContainerPort(pods[0].spec, port.targetPort ?? port.port);
    const wanted = ListenAddress(listen).port;
    if (target?.number !== wanted) {
      problems.push(`Service port ${name} leads to ${target?.number}, the config listens on ${wanted}`);
    }
  }
  return problems;
}

// The ServiceMonitor selects the gateway Service and scrapes its admin port by name.
export function CheckServiceMonitor(objects, serviceMonitor) {
  const service = Find(objects, "Service", kGatewayName);
  const problems = [];
  if (!Selects(serviceMonitor.spec.selector, service.metadata.labels)) {
    problems.push(`ServiceMonitor ${serviceMonitor.metadata.name} does not select Service ${kGatewayName}`);
  }
  const ports = serviceMonitor.spec.endpoints.map((e) => e.port);
  if (!ports.includes("admin") || !service.spec.ports.some((p) => p.name === "admin")) {
    problems.push(`ServiceMonitor endpoints ${JSON.stringify(ports)} do not name the Service's admin port`);
  }
  return problems;
}

// The autoscaler drives the gateway, which then sets no replicas of its own (each apply would
// reset what the autoscaler chose), and scales up faster than down.
export function CheckAutoscaler(objects) {
  const hpa = FindAll(objects, "HorizontalPodAutoscaler")
    .find((h) => h.spec.scaleTargetRef.kind === "Deployment" && h.spec.scaleTargetRef.name === kGatewayName);
  if (!hpa) return [`no HorizontalPodAutoscaler of Deployment ${kGatewayName}`];
  const problems = [];
  if (GatewayDeployment(objects).spec.replicas !== undefined) {
    problems.push("the gateway Deployment sets replicas, which the autoscaler owns");
  }
  const { scaleUp, scaleDown } = hpa.spec.behavior ?? {};
  const up = scaleUp?.stabilizationWindowSeconds ?? 0;
  const down = scaleDown?.stabilizationWindowSeconds ?? 300;
  if (!(up < down)) problems.push(`scale-up window ${up}s is not shorter than scale-down's ${down}s`);
  if (!hpa.spec.metrics?.some((m) => m.resource?.name === "cpu")) problems.push("no CPU metric");
  return problems;
}
