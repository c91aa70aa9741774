#!/usr/bin/env bash
# Validates every manifest under deploy/k8s/ against the Kubernetes API
# schemas (strict: unknown fields are errors), offline, for the oldest
# version the manifests need (1.27: gRPC probes) and the newest shipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-k8s-validate.sh
mapfile -t files < <(find deploy/k8s -name '*.yaml' | sort)
for v in 1.27.0 1.37.0; do
    .venv/bin/kubernetes-validate --strict --quiet -k "$v" "${files[@]}"
done
echo "${#files[@]} manifests valid for Kubernetes 1.27 and 1.37"
