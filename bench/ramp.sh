#!/usr/bin/env bash
# Load-shape accuracy: configs/ramp-memory.yaml (1k -> 100k msg/s over 60 s,
# two in-process agents) and, per 1 s interval, the messages sent against
# the shape's integral over that interval. Prints one markdown table: worst
# and best interval, overall, and the intervals outside +-2 %.
# Usage: bench/ramp.sh [SCENARIO] (SKIP_BUILD=1: use the release binaries as they are)
set -euo pipefail
cd "$(dirname "$0")/.."
SCENARIO="${1:-configs/ramp-memory.yaml}"
. scripts/env.sh
[ -n "${SKIP_BUILD:-}" ] || cargo build -q --release --locked -p coordinator -p agent >&2
WORK="$(mktemp -d /tmp/lg-bench-ramp.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
dir="$(target/release/coordinator run "$SCENARIO" --results "$WORK" --quiet 2>/dev/null | tail -n1 || true)"
python3 - "$dir" "$SCENARIO" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1] + "/report.json"))
iv = r["phases"]["report_interval_s"]
# The shape: the scenario's (one) `load: {ramp: {from: A, to: B, over: Ns}}`.
m = re.search(r"ramp:\s*\{\s*from:\s*([0-9.]+),\s*to:\s*([0-9.]+),\s*over:\s*([0-9.]+)(ms|s)", open(sys.argv[2]).read())
if not m:
    sys.exit("bench/ramp.sh: no `load: {ramp: {from: A, to: B, over: Ns}}` in the scenario")
a, b = float(m.group(1)), float(m.group(2))
over = float(m.group(3)) / (1000 if m.group(4) == "ms" else 1)
def integral(t0, t1):  # messages the shape sends in [t0, t1]
    def cum(t):
        t = max(t, 0.0)
        if t <= over:
            return a * t + (b - a) * t * t / (2 * over)
        return a * over + (b - a) * over / 2 + b * (t - over)
    return cum(t1) - cum(t0)
rows = [i for i in r["intervals"] if i["role"] == "producer" and i["phase"] == "measure"]
ratios = []
for i in rows:
    t1 = i["t_s"]; t0 = max(0.0, t1 - iv)
    want = integral(t0, t1)
    if want > 0:
        ratios.append((t1, i["sent"], want, i["sent"] / want))
sent = sum(x[1] for x in ratios); want = sum(x[2] for x in ratios)
worst = min(ratios, key=lambda x: x[3]); best = max(ratios, key=lambda x: x[3])
outside = [x for x in ratios if abs(x[3] - 1) > 0.02]
print("| intervals | sent | shape | overall | worst interval | best interval | outside +-2 % | lost |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
print(f"| {len(ratios)} | {sent} | {want:.0f} | {sent / want:.4f} | {worst[3]:.4f} (t={worst[0]:.0f} s) | {best[3]:.4f} (t={best[0]:.0f} s) | {len(outside)} | {r['totals']['lost']} |")
PY
