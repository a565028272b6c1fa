#!/usr/bin/env bash
# Deploys token-rate-limiter to the cluster of kubectl's current context, from k8s/:
#   scripts/deploy-k8s.sh dev|prod [--dry-run]
# Renders k8s/overlays/<overlay> (with --load-restrictor LoadRestrictionsNone: the monitoring
# files come from monitoring/, outside k8s/), checks that the Secrets it reads exist, applies it
# server-side (a client-side apply keeps a copy of each object in an annotation of at most
# 256 KiB, and the dashboards' ConfigMap alone is more than half of that), and waits for Redis,
# the model servers, the gateway, Prometheus and Grafana to roll out, each within
# ROLLOUT_TIMEOUT (default 30m: a model server's first start downloads its weights).
# --dry-run changes nothing: with a cluster context it runs kubectl apply --dry-run=client,
# without one it prints the rendered YAML.
# docs/deployment/kubernetes-deployment.md says how to create the Secrets first.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  echo "usage: scripts/deploy-k8s.sh dev|prod [--dry-run]" >&2
  exit 2
}

overlay=${1:-}
[[ $overlay == dev || $overlay == prod ]] || usage
dry_run=0
case ${2:-} in
  "") ;;
  --dry-run) dry_run=1 ;;
  *) usage ;;
esac
(($# <= 2)) || usage

if ! command -v kubectl >/dev/null 2>&1; then
  echo "deploy-k8s.sh: kubectl not found (https://kubernetes.io/docs/tasks/tools/)" >&2
  exit 1
fi

rendered=$(mktemp)
trap 'rm -f "$rendered"' EXIT
kubectl kustomize --load-restrictor LoadRestrictionsNone "k8s/overlays/$overlay" >"$rendered"

if ((dry_run)); then
  if kubectl config current-context >/dev/null 2>&1; then
    kubectl apply --dry-run=client -f "$rendered"
  else
    cat "$rendered"
  fi
  exit 0
fi

namespace=$(awk '$1 == "namespace:" { print $2; exit }' "$rendered")
# The Secrets the pods read (secretKeyRef: key, then name), which k8s/ does not contain.
mapfile -t secrets < <(grep -A2 'secretKeyRef:' "$rendered" | awk '$1 == "name:" { print $2 }' | sort -u)
missing=()
for secret in "${secrets[@]}"; do
  kubectl -n "$namespace" get secret "$secret" >/dev/null 2>&1 || missing+=("$secret")
done
if ((${#missing[@]})); then
  echo "deploy-k8s.sh: create the Secrets ${missing[*]} in namespace $namespace first" \
    "(k8s/secret.example.yaml, docs/deployment/kubernetes-deployment.md)" >&2
  exit 1
fi

kubectl apply --server-side --field-manager=deploy-k8s -f "$rendered"

timeout=${ROLLOUT_TIMEOUT:-30m}
for workload in statefulset/redis deployment/vllm-llama2-7b deployment/vllm-llama2-13b \
  deployment/token-rate-limiter deployment/prometheus deployment/grafana; do
  kubectl -n "$namespace" rollout status "$workload" --timeout="$timeout"
done
echo "deploy-k8s.sh: $overlay deployed to namespace $namespace"
