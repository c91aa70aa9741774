#!/usr/bin/env bash
# The Danube driver of this tree's agent against another build's, both at
# the same time on one running danube-broker (bring your own, as for
# bench/danube.sh): each agent runs PRODUCERS producers at their max (or
# RATE msg/s each, with RATE=N) on a topic of its own, driven by its own
# coordinator, the two started together. They split the client CPU, so the
# ratio of their rates is the inverse of their CPU per message, and a broker
# whose speed drifts moves both alike: the same build on both sides gives
# 1.00 +- 0.01 (BENCHMARKS.md, Danube ninth run), where rounds run one after
# the other swing +-0.15.
# BEFORE is a commit (its release agent and coordinator are built in a
# worktree kept in /tmp/lg-before-<rev>, and its own coordinator drives its
# agent, so builds whose run protocol differs still compare) or the path of
# an agent binary (driven by this tree's coordinator, or by
# BEFORE_COORDINATOR when set). PIN=1 puts both
# agents and both coordinators on CPU 0 (start the broker on CPU 1).
# Prints markdown: per round both rates, after/before, both agents' CPU, and
# the p50/p99 of latency kind KIND (default publish_service).
# Usage: [PIN=1] [RATE=N] [KIND=...] [BEFORE_COORDINATOR=BIN] bench/danube-before-after.sh URL BEFORE [PRODUCERS] [SECONDS] [ROUNDS]
set -Eeuo pipefail
trap 'echo "$0: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
USAGE="usage: bench/danube-before-after.sh URL BEFORE [PRODUCERS] [SECONDS] [ROUNDS]"
URL="${1:?$USAGE}"
BEFORE_ARG="${2:?$USAGE}"
N="${3:-4}"
SECS="${4:-10}"
ROUNDS="${5:-3}"
RATE="${RATE:-200000}"
KIND="${KIND:-publish_service}"
. bench/lib.sh
clients_on_cpu0
build_release coordinator agent
if [ -x "$BEFORE_ARG" ] && [ -f "$BEFORE_ARG" ]; then
    BEFORE="$BEFORE_ARG"
else
    REV="$(git rev-parse --short "$BEFORE_ARG")"
    TREE="/tmp/lg-before-$REV"
    [ -d "$TREE" ] || git worktree add -q --detach "$TREE" "$REV"
    (cd "$TREE" && cargo build -q --release --locked -p agent -p coordinator >&2)
    BEFORE="$TREE/target/release/agent"
    BEFORE_COORDINATOR="$TREE/target/release/coordinator"
fi
BEFORE_COORDINATOR="${BEFORE_COORDINATOR:-$BIN/coordinator}"
AFTER="$BIN/agent"
WORK="$(mktemp -d /tmp/lg-bench-danube-ab.XXXXXX)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
start_agent() { # binary name -> its address
    "${CLIENT_CPU[@]}" "$1" --listen 127.0.0.1:0 >"$WORK/$2.out" 2>"$WORK/$2.err" &
    PIDS+=($!)
    for _ in $(seq 50); do grep -q "listening on" "$WORK/$2.out" && break; sleep 0.1; done
}
start_agent "$BEFORE" before
start_agent "$AFTER" after
A_BEFORE="$(sed -n 's/^agent listening on //p' "$WORK/before.out")"
A_AFTER="$(sed -n 's/^agent listening on //p' "$WORK/after.out")"
scenario() { # side topic
    cat >"$WORK/$1.yaml" <<YAML
name: bench-danube-$1
broker: {kind: danube, url: "$URL"}
topics: [{name: $2}]
producers:
  - {name: p, topic: $2, count: $N, clients: 1, rate: $RATE, message_size: 1024, max_in_flight: 1000}
phases: {warmup: 3s, duration: ${SECS}s, drain_timeout: 10s}
YAML
}
# rate, agent CPU %, latency p50 and p99 (ms) of one run's report.
figures() { # results-dir
    python3 - "$1" "$KIND" <<'PY'
import json, sys
r = json.load(open(sys.argv[1] + "/report.json"))
g = r["groups"][0]
lat = g.get("latency", {}).get(sys.argv[2], {})  # builds before latency kinds: none
print(f'{g["rate_msgs_per_s"]:.0f} {r["agents"][0]["cpu_percent"]:.1f} {lat.get("p50", 0) / 1000:.3f} {lat.get("p99", 0) / 1000:.3f}')
PY
}
TAG="$(date +%H%M%S)"
echo "## Danube: after ($(git rev-parse --short HEAD)) / before ($BEFORE_ARG), both at once, $N producers each, rate $RATE each, ${SECS}s"
echo
echo "| round | before msg/s | after msg/s | after/before | CPU % before / after | $KIND p50 ms before / after | p99 ms before / after |"
echo "|---:|---:|---:|---:|---|---|---|"
ratios=()
for r in $(seq 1 "$ROUNDS"); do
    scenario before "lg-ab-before-$TAG-$r"
    scenario after "lg-ab-after-$TAG-$r"
    "${CLIENT_CPU[@]}" "$BEFORE_COORDINATOR" run "$WORK/before.yaml" --agents "$A_BEFORE" --results "$WORK/r" --quiet \
        >"$WORK/before.run" 2>"$WORK/before.run.err" &
    cb=$!
    "${CLIENT_CPU[@]}" "$BIN/coordinator" run "$WORK/after.yaml" --agents "$A_AFTER" --results "$WORK/r" --quiet \
        >"$WORK/after.run" 2>"$WORK/after.run.err" &
    ca=$!
    wait "$cb" || true
    wait "$ca" || true
    read -r rb cb_ pb qb < <(figures "$(tail -n1 "$WORK/before.run")")
    read -r ra ca_ pa qa < <(figures "$(tail -n1 "$WORK/after.run")")
    x="$(python3 -c "print(f'{$ra/$rb:.3f}')")"
    ratios+=("$x")
    echo "| $r | $rb | $ra | $x | $cb_ / $ca_ | $pb / $pa | $qb / $qa |"
done
echo
echo "after/before, median of the rounds: $(median_to 3 "${ratios[@]}")"
