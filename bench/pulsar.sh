#!/usr/bin/env bash
# Benchmark P1 on Apache Pulsar standalone (scripts/pulsar-standalone.sh), in
# one run, 1 KiB messages:
#   P1  agent vs a bare pulsar-crate loop (tools/bench pulsar-bare), unbatched and batched
#   and the official Python client's async loop (bench/pulsar_python.py) beside them
# The agent runs open loop with a target far above what the broker takes, so
# its throughput is bounded, like the loops', by sends in flight.
# Each case runs ROUNDS times, bare and agent alternating which goes first;
# the table gives the medians, their ratio and every round's ratio (this
# machine is noisy: one round proves nothing).
# PIN=1 puts the broker (its JVM) on CPU 1 and every client on CPU 0,
# as on a real cluster where the load generator does not share the broker's
# cores (on 2 cores unpinned, a client's extra CPU is the broker's loss).
# Each round also runs the bare loop with one 26-byte property (the size of
# the agent's stamp): agent / that is the agent's own cost, bare-with-stamp /
# bare is what carrying a stamp costs in the crate.
# CASES picks cases, e.g. CASES="256:100" (in flight[:batch]); default all.
# Prints one table (markdown).
# NODELAY=0: both with Nagle's algorithm on (default: both with TCP_NODELAY).
# Usage: [PIN=1] [CASES=...] [NODELAY=0] bench/pulsar.sh [SECONDS] [PRODUCERS] [ROUNDS]
set -Eeuo pipefail
# A failing step names itself (a bare `set -e` exit says nothing).
trap 'echo "$0: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
SECS="${1:-20}"
PRODUCERS="${2:-4}"
ROUNDS="${3:-3}"
# The bare loop's sockets as the agent's: TCP_NODELAY on (the agent's
# default, broker.tcp_nodelay). NODELAY=0 compares both with Nagle on.
NODELAY="${NODELAY:-1}"
. bench/lib.sh
build_release coordinator bench
pulsar_bench_setup
WORK="$(mktemp -d /tmp/lg-bench-work.XXXXXX)"
trap 'pulsar_bench_teardown; rm -rf "$WORK"' EXIT
# Each round gets a fresh broker (bench/lib.sh).
fresh_broker
bare() { # in_flight [batch] topic [property bytes]
    local extra=(--property-bytes "${4:-0}" --nodelay "$NODELAY")
    [ -n "$2" ] && extra+=(--batch "$2" --batch-delay-ms 5)
    "${CLIENT_CPU[@]}" "$BIN/pulsar-bare" --url "$URL" --topic "$3" --producers "$PRODUCERS" --in-flight "$1" \
        --size 1024 --seconds "$SECS" "${extra[@]}" | json_rate
}

agent() { # in_flight batch topic -> "rate cpu%"
    local batching="" n="$3"
    [ -n "$2" ] && batching=", batching: {max_messages: $2, max_delay: 5ms}"
    cat > "$WORK/s.yaml" <<YAML
name: bench-agent
broker: {kind: pulsar, url: "$URL", tcp_nodelay: $([ "$NODELAY" = 0 ] && echo false || echo true)}
topics: [{name: $n}]
producers:
  - {name: p, topic: $n, count: $PRODUCERS, rate: 200000, message_size: 1024, max_in_flight: $1$batching}
phases: {warmup: 2s, duration: ${SECS}s, drain_timeout: 10s}
slo: {max_loss: 0}
YAML
    local dir
    dir="$("${CLIENT_CPU[@]}" "$BIN/coordinator" run "$WORK/s.yaml" --local-agents 1 --results "$WORK/results" --quiet 2>/dev/null | tail -n1)"
    report_rate_cpu "$dir"
}

python_loop() { # in_flight topic
    "${CLIENT_CPU[@]}" .venv/bin/python bench/pulsar_python.py "$URL" "$2" "$PRODUCERS" "$1" 1024 "$SECS" 2>/dev/null |
        grep '^{' | json_rate
}


echo "| case | bare pulsar crate msg/s (median) | agent msg/s (median) | agent/bare | agent/bare per round (median) | bare with a 26-byte property msg/s (median) | agent/bare-with-property | agent CPU % (of one core, median) | python client msg/s | agent/python |"
echo "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|"
i=0
for case in ${CASES:-1 64 1000 1000:100}; do
    set -- ${case/:/ }
    w="$1"; b="${2:-}"; i=$((i + 1))
    label="in flight $w$( [ -n "$b" ] && echo ", batched $b/5ms" || echo ", unbatched")"
    brs=() ars=() acpus=() per=() bps=()
    for r in $(seq 1 "$ROUNDS"); do
        fresh_broker
        # A fresh broker's JVM is cold (JIT): one unmeasured run first, or
        # whoever goes first in a round pays for it.
        bare "$w" "$b" "bench-warm-$i-$r" >/dev/null
        # Fresh topics per round; who goes first alternates.
        if [ $((r % 2)) -eq 1 ]; then
            br="$(bare "$w" "$b" "bench-bare-$i-$r")"
            read -r ar acpu < <(agent "$w" "$b" "bench-agent-$i-$r")
        else
            read -r ar acpu < <(agent "$w" "$b" "bench-agent-$i-$r")
            br="$(bare "$w" "$b" "bench-bare-$i-$r")"
        fi
        bps+=("$(bare "$w" "$b" "bench-barep-$i-$r" 26)")
        brs+=("$br") ars+=("$ar") acpus+=("$acpu") per+=("$(ratio "$ar" "$br")")
    done
    bm="$(median "${brs[@]}")" am="$(median "${ars[@]}")" cm="$(median "${acpus[@]}")" bpm="$(median "${bps[@]}")"
    # The Python client is compared where a user would write an async loop.
    if [ -z "$b" ] && [ "$w" -gt 1 ]; then py="$(python_loop "$w" "bench-py-$i")"; else py="-"; fi
    pyratio="$( [ "$py" != "-" ] && ratio "$am" "$py" || echo "-")"
    echo "| $PRODUCERS producers, $label | $bm | $am | $(ratio "$am" "$bm") | ${per[*]} ($(ratio2 "${per[@]}")) | $bpm | $(ratio "$am" "$bpm") | $cm | $py | $pyratio |"
done
