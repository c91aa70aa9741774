#!/usr/bin/env bash
# Installs kubernetes-validate (PyPI) into .venv: it ships the Kubernetes
# API JSON schemas of every version it supports, so the manifests under
# deploy/k8s/ are validated offline (coordinator/tests/deploy.rs,
# scripts/validate-k8s.sh). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if [ ! -x .venv/bin/kubernetes-validate ]; then
    .venv/bin/pip install --quiet --disable-pip-version-check kubernetes-validate==1.37.0
fi
