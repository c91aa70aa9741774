#!/usr/bin/env bash
# Benchmark P2: the agent vs Apache's own pulsar-perf, on one Apache Pulsar
# standalone (scripts/pulsar-standalone.sh), same settings: 1 KiB messages,
# PRODUCERS producers, the same sends in flight, batched or not.
#
# 1. Max rate: both as fast as the broker takes (`pulsar-perf produce -r
#    1000000`, the agent open loop at 200k msg/s per producer) for SECONDS.
#    Figure: messages acknowledged per CPU-second of the client's whole
#    process (/usr/bin/time user+sys; the JVM's start, JIT and GC count, as
#    the agent's process start and coordinator do), and msg/s.
# 2. Fixed rate (RATE msg/s in all, unbatched): publish latency p50/p99 (the
#    agent's producer service time, pulsar-perf produce's latency) and
#    end-to-end p50/p99 (the agent's consumer e2e, pulsar-perf consume's
#    latency from the publish time), a consumer on a shared subscription.
#
# Every round starts a fresh broker; who goes first alternates. PIN=1 puts
# the broker on CPU 1 and the clients on CPU 0. Prints markdown tables with
# medians over ROUNDS and every round's ratio.
# Usage: [PIN=1] bench/pulsar-perf.sh [SECONDS] [PRODUCERS] [ROUNDS] [RATE]
set -Eeuo pipefail
trap 'echo "$0: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
SECS="${1:-20}"
PRODUCERS="${2:-4}"
ROUNDS="${3:-3}"
RATE="${4:-5000}"
. bench/lib.sh
build_release coordinator
bash scripts/pulsar-standalone.sh install
BROKER_CPU=() CLIENT_CPU=()
if [ -n "${PIN:-}" ]; then BROKER_CPU=(taskset -c 1) CLIENT_CPU=(taskset -c 0); fi
export PULSAR_STANDALONE_STATE="$(mktemp -d /tmp/lg-bench-perf.XXXXXX)"
WORK="$(mktemp -d /tmp/lg-bench-perf-work.XXXXXX)"
trap 'scripts/pulsar-standalone.sh stop >/dev/null 2>&1 || true; rm -rf "$PULSAR_STANDALONE_STATE" "$WORK"' EXIT
fresh_broker() {
    scripts/pulsar-standalone.sh stop >/dev/null 2>&1 || true
    URL="$("${BROKER_CPU[@]}" scripts/pulsar-standalone.sh start 2>/dev/null | tail -n1)"
}

# "acked cpu_seconds" of a command, from /usr/bin/time and the command's output.
timed() { # out-file cmd...
    local out="$1"; shift
    "${CLIENT_CPU[@]}" /usr/bin/time -f "TIME %U %S" "$@" > "$out" 2>&1 || true
}
cpu_of() { grep '^TIME' "$1" | tail -n1 | awk '{printf "%.2f", $2 + $3}'; }

perf_max() { # in_flight batch topic -> "acked cpu_s"
    local batch=(-db)
    [ -n "$2" ] && batch=(-bm "$2" -b 5)
    timed "$WORK/perf.out" bash scripts/pulsar-standalone.sh perf produce -r 1000000 -s 1024 -n "$PRODUCERS" \
        -o "$1" "${batch[@]}" -time "$SECS" --warmup-time 0 "$3"
    local n
    n="$(grep -o 'Aggregated throughput stats --- [0-9]* records sent' "$WORK/perf.out" | grep -o '[0-9]*' | head -n1)"
    echo "${n:-0} $(cpu_of "$WORK/perf.out")"
}

agent_yaml() { # in_flight batch topic rate consumers
    local batching=""
    [ -n "$2" ] && batching=", batching: {max_messages: $2, max_delay: 5ms}"
    local cons=""
    [ "$5" -gt 0 ] && cons="consumers: [{name: c, topic: $3, type: shared, count: $5}]"
    cat > "$WORK/s.yaml" <<YAML
name: bench-perf
broker: {kind: pulsar, url: "$URL"}
topics: [{name: $3}]
producers:
  - {name: p, topic: $3, count: $PRODUCERS, total_rate: $4, message_size: 1024, max_in_flight: $1$batching}
$cons
phases: {warmup: 0s, duration: ${SECS}s, drain_timeout: 30s}
YAML
}

agent_max() { # in_flight batch topic -> "acked cpu_s"
    agent_yaml "$1" "$2" "$3" $((200000 * PRODUCERS)) 0
    timed "$WORK/agent.out" "$BIN/coordinator" run "$WORK/s.yaml" --local-agents 1 --results "$WORK/results" --quiet
    local dir
    dir="$(grep -v '^TIME' "$WORK/agent.out" | tail -n1)"
    echo "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]+"/report.json"))["totals"]["acked"])' "$dir") $(cpu_of "$WORK/agent.out")"
}

per_cpu() { python3 -c "print(f'{$1/$2:.0f}' if $2 > 0 else 0)"; }

echo "### Max rate, msg per client CPU-second (whole process) and msg/s"
echo
echo "| case | pulsar-perf msg/CPU-s | agent msg/CPU-s | agent/perf | per round | pulsar-perf msg/s | agent msg/s |"
echo "|---|---:|---:|---:|---|---:|---:|"
i=0
for case in ${CASES:-1000 1000:100}; do
    set -- ${case/:/ }
    w="$1"; b="${2:-}"; i=$((i + 1))
    label="$PRODUCERS producers, in flight $w$( [ -n "$b" ] && echo ", batched $b/5ms" || echo ", unbatched")"
    pe=() ae=() pr=() ar=() per=()
    for r in $(seq 1 "$ROUNDS"); do
        fresh_broker
        if [ $((r % 2)) -eq 1 ]; then
            read -r pn pc < <(perf_max "$w" "$b" "perf-$i-$r")
            read -r an ac < <(agent_max "$w" "$b" "agent-$i-$r")
        else
            read -r an ac < <(agent_max "$w" "$b" "agent-$i-$r")
            read -r pn pc < <(perf_max "$w" "$b" "perf-$i-$r")
        fi
        pe+=("$(per_cpu "$pn" "$pc")") ae+=("$(per_cpu "$an" "$ac")")
        pr+=("$(python3 -c "print($pn/$SECS)")") ar+=("$(python3 -c "print($an/$SECS)")")
        per+=("$(ratio "${ae[-1]}" "${pe[-1]}")")
    done
    pm="$(median "${pe[@]}")" am="$(median "${ae[@]}")"
    echo "| $label | $pm | $am | $(ratio "$am" "$pm") | ${per[*]} ($(ratio2 "${per[@]}")) | $(median "${pr[@]}") | $(median "${ar[@]}") |"
done

echo
echo "### Fixed rate $RATE msg/s, unbatched: latency (ms)"
echo
echo "| round | perf publish p50 | agent publish p50 | perf publish p99 | agent publish p99 | perf e2e p50 | agent e2e p50 | perf e2e p99 | agent e2e p99 |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for r in $(seq 1 "$ROUNDS"); do
    fresh_broker
    # pulsar-perf: a consumer first, then the producers, for SECONDS.
    "${CLIENT_CPU[@]}" bash scripts/pulsar-standalone.sh perf consume -ss lat -st Shared -time $((SECS + 5)) "lat-perf-$r" \
        > "$WORK/cons.out" 2>&1 &
    cpid=$!
    sleep 5
    "${CLIENT_CPU[@]}" bash scripts/pulsar-standalone.sh perf produce -r "$RATE" -s 1024 -n "$PRODUCERS" -o 1000 -db \
        -time "$SECS" --warmup-time 0 "lat-perf-$r" > "$WORK/prod.out" 2>&1 || true
    wait "$cpid" || true
    # "Aggregated latency stats --- Latency: mean: X ms - med: A - 95pct: B - 99pct: C ..."
    lat() { grep 'Aggregated latency stats' "$1" | tail -n1 | sed -E 's/.*med: *([0-9.]+).*99pct: *([0-9.]+) - 99.9pct.*/\1 \2/'; }
    read -r pp50 pp99 < <(lat "$WORK/prod.out")
    read -r pe50 pe99 < <(lat "$WORK/cons.out")
    agent_yaml 1000 "" "lat-agent-$r" "$RATE" 1
    dir="$("${CLIENT_CPU[@]}" "$BIN/coordinator" run "$WORK/s.yaml" --local-agents 1 --results "$WORK/results" --quiet 2>/dev/null | tail -n1)"
    read -r ap50 ap99 ae50 ae99 < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1] + "/report.json"))
g = {x["role"]: x for x in r["groups"]}
# Publish latency from the actual send (service time), as pulsar-perf
# measures it; e2e from the actual send.
p, c = g["producer"]["alt_latency_us"], g["consumer"]["latency_us"]
print(*(f"{v / 1000:.2f}" for v in (p["p50"], p["p99"], c["p50"], c["p99"])))' "$dir")
    echo "| $r | $pp50 | $ap50 | $pp99 | $ap99 | $pe50 | $ae50 | $pe99 | $ae99 |"
done
