// Validates each rendered object against the OpenAPI schema of its apiVersion and kind, with the
// models of kubernetes-models (and @kubernetes-models/prometheus-operator for ServiceMonitor).
// A kind with no model is a problem: what is not checked is not deployed.
// These schemas, like the API server's, type and require fields; they do not reject unknown
// ones (a misspelt field is caught by the semantic checks that look for the right one).
import * as core from "kubernetes-models/v1";
import * as apps from "kubernetes-models/apps/v1";
import * as autoscaling from "kubernetes-models/autoscaling/v2";
import * as policy from "kubernetes-models/policy/v1";
import * as networking from "kubernetes-models/networking.k8s.io/v1";
import * as rbac from "kubernetes-models/rbac.authorization.k8s.io/v1";
import * as monitoring from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const kModels = new Map();
for (const module of [core, apps, autoscaling, policy, networking, rbac, monitoring]) {
  for (const model of Object.values(module)) {
    if (typeof model === "function" && model.apiVersion && model.kind) {
      kModels.set(`${model.apiVersion}/${model.kind}`, model);
    }
  }
}

// One line a problem: "Kind/name: what".
export function CheckSchemas(objects) {
  return objects.flatMap((obj) => {
    const id = `${obj.kind}/${obj.metadata?.name}`;
    const Model = kModels.get(`${obj.apiVersion}/${obj.kind}`);
    if (!Model) return [`${id}: no schema for ${obj.apiVersion} ${obj.kind}`];
    try {
      new Model(obj).validate();
      return [];
    } catch (error) {
      return [`${id}: ${error.message.replace(/\s+/g, " ")}`];
    }
  });
}
