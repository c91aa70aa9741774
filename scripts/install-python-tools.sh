#!/usr/bin/env bash
# Installs the Python side of the tests into .venv: pulsar-client (Apache
# Pulsar's official Python client, for the independent cross-check in
# coordinator/tests/pulsar.rs and bench/pulsar_python.py).
# Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import pulsar' 2>/dev/null; then
    .venv/bin/pip install --quiet --disable-pip-version-check pulsar-client==3.13.0
fi
