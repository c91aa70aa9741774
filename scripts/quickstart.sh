#!/usr/bin/env bash
# The README's first command: builds and runs configs/quickstart.yaml on the
# embedded memory broker with two in-process agents. Extra arguments go to
# `coordinator run` (e.g. --set phases.duration=30s).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
# The chart library report.html embeds (npm; without it the charts are static SVG).
bash scripts/build-web.sh || echo "quickstart: web charts not installed; report.html keeps static charts" >&2
exec cargo run --release --locked -p coordinator -- run configs/quickstart.yaml "$@"
