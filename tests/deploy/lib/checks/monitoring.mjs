// The monitoring objects carry the repository's files: every Grafana dashboard, and the alert
// rules beside a Prometheus config whose jobs find the pods, and Grafana's data source. Each
// check returns a list of problems (empty: fine).
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { Find, Pods, Selects } from "../objects.mjs";

function ConfigMapNamed(objects, prefix) {
  return objects.find((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith(`${prefix}-`));
}

export function CheckDashboards(objects, repoRoot) {
  const dir = path.join(repoRoot, "monitoring/grafana/dashboards");
  const configMap = ConfigMapNamed(objects, "grafana-dashboards");
  if (!configMap) return ["no ConfigMap grafana-dashboards"];
  return fs.readdirSync(dir).filter((f) => f.endsWith(".json"))
    .filter((f) => configMap.data[f] !== fs.readFileSync(path.join(dir, f), "utf8"))
    .map((f) => `ConfigMap grafana-dashboards does not hold monitoring/grafana/dashboards/${f}`);
}

// Each scrape job keeps the pods whose app label and container port name match its regex: the
// job must find a pod, or its alerts (up == 0, absent()) speak of nothing.
export function CheckScrapeJobs(objects) {
  const configMap = ConfigMapNamed(objects, "prometheus-config");
  if (!configMap?.data["alert-rules.yml"]) return ["no alert-rules.yml in ConfigMap prometheus-config"];
  const prometheus = YAML.parse(configMap.data["prometheus.yml"]);
  const problems = [];
  for (const job of prometheus.scrape_configs) {
    const keep = job.relabel_configs.find((r) => r.action === "keep");
    const regex = new RegExp(`^(?:${keep.regex})$`);
    const found = Pods(objects).some((pod) => pod.spec.containers.some((c) => (c.ports ?? []).some((p) =>
      regex.test(`${pod.labels["app.kubernetes.io/name"]};${p.name}`))));
    if (!found) problems.push(`scrape job ${job.job_name} (${keep.regex}) finds no pod`);
  }
  return problems;
}

// Grafana's provisioned data source (monitoring/grafana/datasources/) is the Service prometheus,
// which selects the Prometheus pods.
export function CheckGrafanaDatasource(objects) {
  const datasources = ConfigMapNamed(objects, "grafana-datasources");
  const url = datasources && YAML.parse(datasources.data["prometheus-datasource.yml"]).datasources[0].url;
  const service = Find(objects, "Service", "prometheus");
  const pod = Pods(objects).find((p) => p.owner === "Deployment/prometheus");
  const ok = service && pod && Selects(service.spec.selector, pod.labels) &&
    service.spec.ports.some((p) => url === `http://prometheus:${p.port}`);
  return ok ? [] : [`Grafana's data source ${url} is not the Service prometheus of the Prometheus pods`];
}
