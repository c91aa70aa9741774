#!/usr/bin/env bash
# Start skew across agent processes (issue 8): N `agent` processes on
# 127.0.0.1 driven by one coordinator, a memory-broker scenario with N topics
# (one producer at 20 msg/s and one consumer each; the planner keeps a memory
# topic in one process, so every process gets one topic and has load). Each
# agent measures when its load actually began (its producers' first actual
# send, on its synced clock); the report gives each agent's
# `start_offset_ms` from the start instant and their spread
# (`coordinator.start_spread_ms`). Prints one markdown table row.
# Usage: bench/start-skew.sh [N=50] [SECONDS=5]
# (SKIP_BUILD=1 to use the release binaries as they are; OFFSETS=1 also
# prints every agent's offset, latest first; KEEP=DIR keeps the results
# and the agents' logs in DIR.)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-50}"
SECS="${2:-5}"
. scripts/env.sh
[ -n "${SKIP_BUILD:-}" ] || cargo build -q --release --locked -p coordinator -p agent >&2
BIN="${CARGO_TARGET_DIR:-target}/release"
WORK="$(mktemp -d /tmp/lg-bench-skew.XXXXXX)"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    if [ -n "${KEEP:-}" ]; then
        mkdir -p "$KEEP" && cp -r "$WORK"/. "$KEEP"/
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
unset LOADGEN_TOKEN

# N agents on port 0; each prints "agent listening on ADDR" first.
for i in $(seq 1 "$N"); do
    "$BIN/agent" --listen 127.0.0.1:0 >"$WORK/agent-$i.out" 2>"$WORK/agent-$i.log" &
    PIDS+=($!)
done
ADDRS=()
for i in $(seq 1 "$N"); do
    for _ in $(seq 1 300); do
        line="$(head -n1 "$WORK/agent-$i.out" 2>/dev/null || true)"
        [ -n "$line" ] && break
        sleep 0.1
    done
    case "$line" in
    "agent listening on "*) ADDRS+=("${line#agent listening on }") ;;
    *)
        echo "agent $i did not start: ${line:-no address line}" >&2
        cat "$WORK/agent-$i.log" >&2
        exit 3
        ;;
    esac
done
LIST="$(IFS=,; echo "${ADDRS[*]}")"

{
    echo "name: start-skew-$N"
    echo "broker: {kind: memory}"
    echo "topics:"
    for i in $(seq 1 "$N"); do echo "  - {name: t$i}"; done
    echo "producers:"
    for i in $(seq 1 "$N"); do echo "  - {name: p$i, topic: t$i, rate: 20}"; done
    echo "consumers:"
    for i in $(seq 1 "$N"); do echo "  - {name: c$i, topic: t$i}"; done
    echo "phases: {duration: ${SECS}s, drain_timeout: 10s}"
} >"$WORK/skew.yaml"

code=0
"$BIN/coordinator" run "$WORK/skew.yaml" --agents "$LIST" --results "$WORK/results" \
    >"$WORK/coordinator.out" 2>"$WORK/coordinator.err" || code=$?
dir="$(tail -n1 "$WORK/coordinator.out")"
if [ ! -f "$dir/report.json" ]; then
    echo "coordinator exit $code, no report:" >&2
    cat "$WORK/coordinator.err" >&2
    exit 3
fi

echo "| agents | start_spread_ms | min start offset ms | max start offset ms | max clock error ms | setup_s | verdict | lost |"
echo "|---:|---:|---:|---:|---:|---:|---|---:|"
python3 - "$dir/report.json" "${OFFSETS:-}" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
c = r.get("coordinator") or {}
agents = r["agents"]
offs = [a["start_offset_ms"] for a in agents if a.get("start_offset_ms") is not None]
spread = c.get("start_spread_ms")
fmt = lambda v: "-" if v is None else f"{v:.2f}"
err = max((a["clock_error_us"] for a in agents), default=0) / 1e3
print(f"| {len(agents)} | {fmt(spread)} | {fmt(min(offs) if offs else None)} | {fmt(max(offs) if offs else None)} "
      f"| {err:.3f} | {c.get('setup_s', 0):.2f} | {r['verdict']} | {r['totals']['lost']} |")
if len(offs) < len(agents):
    print(f"\n{len(agents) - len(offs)} agent(s) without a start offset (no producer sent, or lost)")
if sys.argv[2]:
    print("\n| agent | start_offset_ms | clock_offset_ms | clock_error_ms | cpu % |")
    print("|---|---:|---:|---:|---:|")
    for a in sorted(agents, key=lambda a: -(a.get("start_offset_ms") or 0)):
        print(f"| {a['address']} | {fmt(a.get('start_offset_ms'))} | {a['clock_offset_us'] / 1e3:+.3f} "
              f"| {a['clock_error_us'] / 1e3:.3f} | {a['cpu_percent']:.1f} |")
PY
grep '^start: ' "$WORK/coordinator.out" >&2 || true
exit "$code"
