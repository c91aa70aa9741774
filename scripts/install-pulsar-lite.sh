#!/usr/bin/env bash
# Installs the test brokers' Python side into .venv: pulsar-lite (a
# Pulsar-protocol broker binary) and pulsar-client (the official client, for
# cross-checks and benchmarks). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import pulsar_lite, pulsar' 2>/dev/null; then
    .venv/bin/pip install --quiet --disable-pip-version-check pulsar-lite==0.2.0 pulsar-client
fi
