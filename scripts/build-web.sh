#!/usr/bin/env bash
# Installs the browser charts' library (uPlot, pinned by web/package-lock.json)
# from the npm registry into web/node_modules/, which git ignores. The
# coordinator's build embeds it into report.html (and the live dashboard)
# when it is there; without it report.html keeps its static SVG charts.
# Idempotent: does nothing when the installed tree matches the lockfile.
set -euo pipefail
cd "$(dirname "$0")/../web"
if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ] &&
    [ -f node_modules/uplot/dist/uPlot.iife.min.js ]; then
    exit 0
fi
command -v npm >/dev/null || { echo "build-web.sh: npm not found (Node.js): report.html keeps static charts" >&2; exit 3; }
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
