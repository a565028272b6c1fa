// The Ingress in front of the gateway (ingress-nginx): SSE streams pass unbuffered and are not
// cut before the gateway's own model timeouts, the body limit is server.max_body_bytes, and it
// sends to the data port. Returns a list of problems (empty: fine).
import { GatewayConfig, kGatewayName, ListenAddress, Seconds } from "../gateway_config.mjs";
import { ContainerPort, Find, FindAll, ServicePods } from "../objects.mjs";

const kDefaultMaxBodyBytes = 4194304;
const kAnnotation = "nginx.ingress.kubernetes.io/";

// nginx sizes: 4194304, 4096k, 4m, 1g (binary multiples).
function NginxBytes(size) {
  const match = /^(\d+)([kKmMgG]?)$/.exec(String(size));
  if (!match) return NaN;
  return Number(match[1]) * 1024 ** " kmg".indexOf(match[2].toLowerCase() || " ");
}

export function CheckIngress(objects) {
  const { config } = GatewayConfig(objects);
  const ingress = FindAll(objects, "Ingress").find((i) => i.spec.rules.some((r) =>
    r.http.paths.some((p) => p.backend.service?.name === kGatewayName)));
  if (!ingress) return [`no Ingress sends to Service ${kGatewayName}`];
  const annotation = (name) => ingress.metadata.annotations?.[kAnnotation + name];
  const problems = [];
  const want = (ok, what) => ok || problems.push(`Ingress ${ingress.metadata.name}: ${what}`);

  const body = config.server?.max_body_bytes ?? kDefaultMaxBodyBytes;
  want(NginxBytes(annotation("proxy-body-size")) === body,
    `proxy-body-size ${annotation("proxy-body-size")} is not server.max_body_bytes (${body})`);
  want(annotation("proxy-buffering") === "off", "proxy-buffering is not off: streams would be buffered");
  const longest = Math.max(...(config.models ?? []).map((m) => Seconds(m.timeout ?? "0s")));
  for (const name of ["proxy-read-timeout", "proxy-send-timeout"]) {
    want(Number(annotation(name)) >= longest,
      `${name} ${annotation(name)} is shorter than the longest model timeout (${longest}s)`);
  }

  const service = Find(objects, "Service", kGatewayName);
  const pods = ServicePods(objects, service);
  const data = ListenAddress(config.listen).port;
  for (const rule of ingress.spec.rules) {
    for (const { backend } of rule.http.paths.filter((p) => p.backend.service?.name === kGatewayName)) {
      const port = service.spec.ports.find((p) =>
        p.name === backend.service.port.name || p.port === backend.service.port.number);
      const target = port && pods[0] && ContainerPort(pods[0].spec, port.targetPort ?? port.port);
      want(target?.number === data, `its backend port leads to ${target?.number}, not the data port ${data}`);
    }
  }
  return problems;
}
