#!/usr/bin/env bash
# The generator's own cost (issue: generator benchmarks), whole processes:
#   1. headroom      configs/headroom.yaml on one in-process agent: the most
#                    one agent pushes end to end (memory broker, 100 B, closed
#                    loop, stamping + histograms + accounting on)
#   2. rate accuracy open-loop targets 1k, 10k, 100k, 500k, 1M, 2M msg/s
#                    (RATES="..." for others) for SECONDS: achieved / target
#                    overall and per 1 s interval, and the largest lag
#   3. footprint     one `agent` process at 50k msg/s: RSS and CPU per
#                    10k msg/s, on the memory broker and on Apache Pulsar
# Prints markdown tables. Usage: bench/generator.sh [SECONDS]
# (SKIP_BUILD=1 to use the release binaries as they are; NO_PULSAR=1 to skip
# the Apache Pulsar row.)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-30}"
. scripts/env.sh
[ -n "${SKIP_BUILD:-}" ] || cargo build -q --release --locked -p coordinator -p agent >&2
WORK="$(mktemp -d /tmp/lg-bench-gen.XXXXXX)"
AGENT_PID=""
cleanup() {
    [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null || true
    [ -n "${PULSAR_STANDALONE_STATE:-}" ] && scripts/pulsar-standalone.sh stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
C=target/release/coordinator

run() { # scenario [args...] -> results dir
    local s="$1"
    shift
    "$C" run "$s" --results "$WORK/results" --quiet "$@" 2>/dev/null | tail -n1
}

echo "### Headroom (configs/headroom.yaml, 1 in-process agent, ${SECS} s)"
echo
echo "| cores | producer msg/s | consumer msg/s | lost | process CPU % (of one core) | msg/s per busy core |"
echo "|---|---:|---:|---:|---:|---:|"
# Once on every core, once pinned to one (taskset: the runtime then has one
# worker, and "per core" is measured, not divided out).
for cores in all 1; do
    pin=()
    [ "$cores" = 1 ] && pin=(taskset -c 0)
    dir="$("${pin[@]}" "$C" run configs/headroom.yaml --local-agents 1 --set "phases.duration=${SECS}s" \
        --results "$WORK/results" --quiet 2>/dev/null | tail -n1 || true)"
    python3 - "$dir" "$cores" <<'PY'
import json, sys
r = json.load(open(sys.argv[1] + "/report.json"))
p = next(g for g in r["groups"] if g["role"] == "producer")
c = next(g for g in r["groups"] if g["role"] == "consumer")
cpu = r["agents"][0]["cpu_percent"]  # percent of one core
busy = cpu / 100
print(f"| {sys.argv[2]} | {p['rate_msgs_per_s']:.0f} | {c['rate_msgs_per_s']:.0f} | {r['totals']['lost']} | {cpu:.1f} | {p['rate_msgs_per_s'] / busy:.0f} |")
PY
done
echo

echo "### Rate accuracy (memory broker, 1 in-process agent, 4 producers, 100 B, ${SECS} s measured)"
echo
echo "| target msg/s | achieved msg/s | overall ratio | worst 1 s interval | best 1 s interval | late sends | max lag ms | process CPU % (of one core) |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
for rate in ${RATES:-1000 10000 100000 500000 1000000 2000000}; do
    cat > "$WORK/rate.yaml" <<YAML
name: rate-$rate
broker: {kind: memory}
topics: [{name: r, partitions: 4}]
producers:
  - {name: p, topic: r, count: 4, total_rate: $rate, message_size: 100B, max_in_flight: 10000}
consumers:
  - {name: c, topic: r, type: shared, count: 4}
phases: {warmup: 2s, duration: ${SECS}s, drain_timeout: 20s}
report_interval: 1s
YAML
    dir="$(run "$WORK/rate.yaml" --local-agents 1 || true)"
    python3 - "$dir" "$rate" <<'PY'
import csv, json, sys
d, target = sys.argv[1], float(sys.argv[2])
r = json.load(open(d + "/report.json"))
p = next(g for g in r["groups"] if g["role"] == "producer")
rows = [x for x in csv.DictReader(open(d + "/timeseries.csv")) if x["role"] == "producer" and x["phase"] == "measure"]
# The first and last measured intervals straddle phase edges by up to a
# timer tick; all measured intervals are shown.
ratios = [float(x["rate_msgs_per_s"]) / target for x in rows]
print(f"| {target:.0f} | {p['rate_msgs_per_s']:.1f} | {p['rate_msgs_per_s'] / target:.4f} | {min(ratios):.4f} | {max(ratios):.4f} | {p['late_sends']} | {p['max_lag_ms']:.1f} | {r['agents'][0]['cpu_percent']:.1f} |")
PY
done
echo

echo "### Agent footprint at 50k msg/s (one \`agent\` process, ${SECS} s)"
echo
echo "| broker | achieved msg/s | agent max RSS MB | agent CPU % (of one core) | CPU % of one core per 10k msg/s |"
echo "|---|---:|---:|---:|---:|"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
target/release/agent --listen "127.0.0.1:$port" >"$WORK/agent.log" 2>&1 &
AGENT_PID=$!
sleep 1
footprint() { # label scenario
    local dir
    dir="$(run "$2" --agents "127.0.0.1:$port" || true)"
    python3 - "$dir" "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1] + "/report.json"))
a = r["agents"][0]
p = next(g for g in r["groups"] if g["role"] == "producer")
rate = p["rate_msgs_per_s"]
print(f"| {sys.argv[2]} | {rate:.0f} | {a['max_rss_mb']:.1f} | {a['cpu_percent']:.1f} | {a['cpu_percent'] / (rate / 10000):.2f} |")
PY
}
cat > "$WORK/fp-mem.yaml" <<YAML
name: footprint-memory
broker: {kind: memory}
topics: [{name: f, partitions: 4}]
producers: [{name: p, topic: f, count: 4, total_rate: 50000, message_size: 1KiB}]
consumers: [{name: c, topic: f, type: shared, count: 4}]
phases: {warmup: 2s, duration: ${SECS}s, drain_timeout: 20s}
YAML
footprint memory "$WORK/fp-mem.yaml"
if [ -z "${NO_PULSAR:-}" ]; then
    export PULSAR_STANDALONE_STATE="$WORK/pulsar"
    URL="$(scripts/pulsar-standalone.sh start 2>/dev/null | tail -n1)"
    cat > "$WORK/fp-pulsar.yaml" <<YAML
name: footprint-pulsar
broker: {kind: pulsar, url: "$URL"}
topics: [{name: footprint-$$}]
producers:
  - {name: p, topic: footprint-$$, count: 4, total_rate: 50000, message_size: 1KiB, max_in_flight: 1000,
     batching: {max_messages: 100, max_delay: 5ms}}
consumers: [{name: c, topic: footprint-$$, type: shared, count: 2}]
phases: {warmup: 2s, duration: ${SECS}s, drain_timeout: 30s}
YAML
    footprint "Apache Pulsar (batched 100/5ms)" "$WORK/fp-pulsar.yaml"
fi
