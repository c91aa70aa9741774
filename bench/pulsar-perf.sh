#!/usr/bin/env bash
# Benchmark P2: the agent vs Apache's own pulsar-perf, on one Apache Pulsar
# standalone (scripts/pulsar-standalone.sh), same settings: 1 KiB messages,
# PRODUCERS producers, the same sends in flight, batched or not.
#
# 1. Max rate: both as fast as the broker takes (`pulsar-perf produce -r
#    1000000`, the agent open loop at 200k msg/s per producer) for SECONDS.
#    Figure: messages acknowledged per CPU-second of the client's whole
#    process (/usr/bin/time user+sys; the JVM's start, JIT and GC count, as
#    the agent's process start and coordinator do), and msg/s; beside them
#    the bare pulsar-crate loop (tools/bench pulsar-bare) at the same
#    settings, the floor the crate sets for any client built on it.
# 2. Fixed rate (RATE msg/s in all, unbatched, after a 5 s warmup): publish latency p50/p99 (the
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
build_release coordinator bench
bash scripts/pulsar-standalone.sh install
pulsar_bench_setup
WORK="$(mktemp -d /tmp/lg-bench-perf-work.XXXXXX)"
trap 'pulsar_bench_teardown; rm -rf "$WORK"' EXIT

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

bare_max() { # in_flight batch topic -> "acked cpu_s": the bare pulsar-crate loop, same settings
    local batch=(--nodelay 1)
    [ -n "$2" ] && batch+=(--batch "$2" --batch-delay-ms 5)
    timed "$WORK/bare.out" "$BIN/pulsar-bare" --url "$URL" --topic "$3" --producers "$PRODUCERS" --in-flight "$1" \
        --size 1024 --seconds "$SECS" "${batch[@]}"
    echo "$(grep '^{' "$WORK/bare.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["acked"])') $(cpu_of "$WORK/bare.out")"
}

per_cpu() { python3 -c "print(f'{$1/$2:.0f}' if $2 > 0 else 0)"; }

echo "### Max rate, msg per client CPU-second (whole process) and msg/s"
echo
echo "| case | pulsar-perf msg/CPU-s | agent msg/CPU-s | agent/perf | per round | bare crate loop msg/CPU-s | bare/perf | agent/bare | pulsar-perf msg/s | agent msg/s | bare msg/s |"
echo "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"
i=0
for case in ${CASES:-1000 1000:100}; do
    set -- ${case/:/ }
    w="$1"; b="${2:-}"; i=$((i + 1))
    label="$PRODUCERS producers, in flight $w$( [ -n "$b" ] && echo ", batched $b/5ms" || echo ", unbatched")"
    pe=() ae=() pr=() ar=() per=() be=() br=()
    for r in $(seq 1 "$ROUNDS"); do
        fresh_broker
        # A fresh broker's JVM is cold (JIT): one unmeasured run first.
        bare_max "$w" "$b" "warm-$i-$r" >/dev/null
        if [ $((r % 2)) -eq 1 ]; then
            read -r pn pc < <(perf_max "$w" "$b" "perf-$i-$r")
            read -r an ac < <(agent_max "$w" "$b" "agent-$i-$r")
        else
            read -r an ac < <(agent_max "$w" "$b" "agent-$i-$r")
            read -r pn pc < <(perf_max "$w" "$b" "perf-$i-$r")
        fi
        read -r bn bc < <(bare_max "$w" "$b" "bare-$i-$r")
        be+=("$(per_cpu "$bn" "$bc")") br+=("$(python3 -c "print($bn/$SECS)")")
        pe+=("$(per_cpu "$pn" "$pc")") ae+=("$(per_cpu "$an" "$ac")")
        pr+=("$(python3 -c "print($pn/$SECS)")") ar+=("$(python3 -c "print($an/$SECS)")")
        per+=("$(ratio "${ae[-1]}" "${pe[-1]}")")
    done
    pm="$(median "${pe[@]}")" am="$(median "${ae[@]}")" bm="$(median "${be[@]}")"
    echo "| $label | $pm | $am | $(ratio "$am" "$pm") | ${per[*]} ($(ratio2 "${per[@]}")) | $bm | $(ratio "$bm" "$pm") | $(ratio "$am" "$bm") | $(median "${pr[@]}") | $(median "${ar[@]}") | $(median "${br[@]}") |"
done

echo
echo "### Fixed rate $RATE msg/s, unbatched, after a 5 s warmup: latency (ms)"
echo
echo "Publish: the whole measurement (pulsar-perf produce --warmup-time 5; the agent's producer service"
echo "time). End to end: the median over 5-s intervals of each interval's p50 and p99 (pulsar-perf"
echo "consume has no warmup setting: its intervals from 10 s on; the agent's measured intervals)."
echo
echo "| round | perf publish p50 | agent publish p50 | perf publish p99 | agent publish p99 | perf e2e p50 | agent e2e p50 | perf e2e p99 | agent e2e p99 |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for r in $(seq 1 "$ROUNDS"); do
    fresh_broker
    bare_max 1000 "" "lat-warm-$r" >/dev/null
    # pulsar-perf: a consumer first, then the producers (5 s warmup, SECONDS measured).
    "${CLIENT_CPU[@]}" bash scripts/pulsar-standalone.sh perf consume -ss lat -st Shared -i 5 -time $((SECS + 15)) \
        "lat-perf-$r" > "$WORK/cons.out" 2>&1 &
    cpid=$!
    sleep 5
    "${CLIENT_CPU[@]}" bash scripts/pulsar-standalone.sh perf produce -r "$RATE" -s 1024 -n "$PRODUCERS" -o 1000 -db \
        -time $((SECS + 5)) --warmup-time 5 "lat-perf-$r" > "$WORK/prod.out" 2>&1 || true
    wait "$cpid" || true
    read -r pp50 pp99 < <(grep 'Aggregated latency stats' "$WORK/prod.out" | tail -n1 |
        sed -E 's/.*med: *([0-9.]+).*99pct: *([0-9.]+) - 99.9pct.*/\1 \2/')
    # Interval lines with traffic, from the third on (the consumer started 5 s early; 5 s warmup).
    read -r pe50 pe99 < <(grep 'Throughput received' "$WORK/cons.out" | grep -v 'Throughput received: *0 ' | tail -n +2 |
        sed -E 's/.*med: *([0-9.]+).*99pct: *([0-9.]+) - 99.9pct.*/\1 \2/' |
        python3 -c 'import statistics,sys; v=[l.split() for l in sys.stdin if l.strip()]; print(statistics.median(float(a) for a,b in v), statistics.median(float(b) for a,b in v))')
    agent_yaml 1000 "" "lat-agent-$r" "$RATE" 1
    sed -i "s/phases: {warmup: 0s/phases: {warmup: 5s/; \$a report_interval: 5s" "$WORK/s.yaml"
    dir="$("${CLIENT_CPU[@]}" "$BIN/coordinator" run "$WORK/s.yaml" --local-agents 1 --results "$WORK/results" --quiet 2>/dev/null | tail -n1)"
    read -r ap50 ap99 ae50 ae99 < <(python3 -c '
import json, statistics, sys
r = json.load(open(sys.argv[1] + "/report.json"))
p = next(g for g in r["groups"] if g["role"] == "producer")["alt_latency_us"]
c = [i for i in r["intervals"] if i["role"] == "consumer" and i["phase"] == "measure" and i["received"] > 0]
e50 = statistics.median(i["p50_us"] for i in c)
e99 = statistics.median(i["p99_us"] for i in c)
print(*(f"{v / 1000:.2f}" for v in (p["p50"], p["p99"], e50, e99)))' "$dir")
    echo "| $r | $pp50 | $ap50 | $pp99 | $ap99 | $pe50 | $ae50 | $pe99 | $ae99 |"
done
