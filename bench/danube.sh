#!/usr/bin/env bash
# Danube benchmarks against a running danube-broker (bring your own: this
# script neither builds nor starts one; BENCHMARKS.md says how it was run).
#   1. Scenarios A-E (configs/danube-*.yaml) through three agent processes.
#   2. Agent vs a bare danube-client loop (tools/bench danube-bare), 1 KiB,
#      send-and-await, in the same run: N producers each way; and what
#      `clients: N` gives one logical producer.
# The agent/bare comparison runs ROUNDS times per case, alternating which
# goes first; the table gives medians, their ratio and each round's ratio.
# PIN=1 runs every client process (agents, bare loop, coordinator) on CPU 0;
# start the broker on the other CPU (`taskset -c 1 ...`) so the clients'
# CPU is not the broker's loss, as on a real cluster. Give the broker a data
# directory on tmpfs (`--data-dir /dev/shm/...`): its standalone metadata
# store writes and flushes all the time, even idle (10-18 % of a core here),
# and on a shared disk those flushes made its speed swing by a third
# between rounds (BENCHMARKS.md, Danube eighth run).
# RATIO_ONLY=1 skips the scenarios (1) and the clients table: just the
# agent/bare rounds.
# CONCURRENT=1 adds a second comparison that a broker whose speed drifts
# cannot bias: in each round the bare loop and the agent run at the same
# time on the same broker (topics of their own, the same number of
# producers), and each one's rate is taken over the same wall-clock window
# (the agent's measurement intervals; the bare loop's `--series`). The two
# split the broker between them, so the rates are about half of the
# sequential ones; their ratio says whether the agent's client side gets
# less through than the bare client's under identical conditions.
# CONCURRENT=only runs just that comparison.
# Prints markdown tables.
# Usage: [PIN=1] [RATIO_ONLY=1] [CONCURRENT=1] bench/danube.sh URL [SECONDS] [ROUNDS]
set -Eeuo pipefail
# A failing step names itself (a bare `set -e` exit says nothing).
trap 'echo "$0: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
URL="${1:?usage: bench/danube.sh http://HOST:PORT [SECONDS] [ROUNDS]}"
SECS="${2:-20}"
ROUNDS="${3:-3}"
. bench/lib.sh
clients_on_cpu0
build_release coordinator agent bench
WORK="$(mktemp -d /tmp/lg-bench-danube.XXXXXX)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
ADDRS=()
for i in 1 2 3; do
    "${CLIENT_CPU[@]}" "$BIN/agent" --listen 127.0.0.1:0 >"$WORK/agent$i.out" 2>"$WORK/agent$i.err" &
    PIDS+=($!)
done
for i in 1 2 3; do
    for _ in $(seq 50); do grep -q "listening on" "$WORK/agent$i.out" && break; sleep 0.1; done
    ADDRS+=("$(sed -n 's/^agent listening on //p' "$WORK/agent$i.out")")
done
AGENTS="$(IFS=,; echo "${ADDRS[*]}")"
TAG="$(date +%H%M%S)"

summary() { # report dir -> table rows per subscription
    python3 - "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1] + "/report.json"))
name = sys.argv[2]
cons = {g["name"]: g for g in r["groups"] if g["role"] == "consumer"}
prod = sum(g["rate_msgs_per_s"] for g in r["groups"] if g["role"] == "producer")
for s in r["subscriptions"]:
    g = cons.get(s["subscription"]) or next((c for c in cons.values() if c["topic"] == s["topic"]), None)
    lat = g["latency_us"] if g else {"p50": 0, "p99": 0}
    print(f"| {name} | {s['topic']} / {s['subscription']} | {s['type']} | {s['consumers']} | {prod:.1f} | "
          f"{s['expected']} | {s['received_unique']} | {lat['p50']/1000:.2f} | {lat['p99']/1000:.2f} | "
          f"{s['lost']} | {s['duplicated']} | {s['reordered']} | {r['verdict']} |")
PY
}

if [ -z "${RATIO_ONLY:-}" ]; then
echo "## Scenarios A-E, three agents ($AGENTS), broker $URL"
echo
echo "| scenario | topic / subscription | type | consumers | publish msg/s | expected | received | e2e p50 ms | e2e p99 ms | lost | duplicated | reordered | verdict |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
for s in a-baseline b-subscriptions c-multi-topic d-partitions e-failover; do
    dur=(--set "phases.duration=${SECS}s")
    [ "$s" = e-failover ] && dur=()   # its faults happen at 20 s and 40 s of 60 s
    dir="$("${CLIENT_CPU[@]}" "$BIN/coordinator" run "configs/danube-$s.yaml" --agents "$AGENTS" --set "broker.url=$URL" \
        "${dur[@]}" --results "$WORK/r" --quiet 2>"$WORK/$s.err" | tail -n1)" || true
    if [ -f "$dir/report.json" ]; then summary "$dir" "$s"; else echo "| $s | (no report: $(tail -n1 "$WORK/$s.err")) |"; fi
    [ "$s" = e-failover ] && [ -f "$dir/report.json" ] && python3 -c 'import json,sys; [print("  note:", n) for n in json.load(open(sys.argv[1]+"/report.json"))["notes"]]' "$dir" >&2
done
echo
fi

bare() { # producers topic
    "${CLIENT_CPU[@]}" "$BIN/danube-bare" --url "$URL" --topic "$2" --producers "$1" --size 1024 --seconds "$SECS" | json_rate
}
# One agent's run of `count` producers (each with `clients` client
# producers) at their max on `topic`; prints its results directory.
agent_run() { # count clients topic
    cat >"$WORK/b.yaml" <<YAML
name: bench-danube-agent
broker: {kind: danube, url: "$URL"}
topics: [{name: $3}]
producers:
  - {name: p, topic: $3, count: $1, clients: $2, rate: 200000, message_size: 1024, max_in_flight: 1000}
phases: {warmup: 2s, duration: ${SECS}s, drain_timeout: 10s}
YAML
    "${CLIENT_CPU[@]}" "$BIN/coordinator" run "$WORK/b.yaml" --agents "${ADDRS[0]}" --results "$WORK/r" --quiet 2>/dev/null | tail -n1
}
agent() { # count clients topic -> "rate cpu"
    report_rate_cpu "$(agent_run "$@")"
}

if [ "${CONCURRENT:-}" != only ]; then
echo "## Agent vs bare danube-client loop, 1 KiB, send-and-await, ${SECS}s each"
echo
echo "| case | bare msg/s (median) | agent msg/s (median) | agent/bare | agent/bare per round (median) | agent CPU % (of one core, median) |"
echo "|---|---:|---:|---:|---|---:|"
for n in 1 4 16; do
    brs=() ars=() acpus=() per=()
    for r in $(seq 1 "$ROUNDS"); do
        if [ $((r % 2)) -eq 1 ]; then
            br="$(bare "$n" "/default/lg-bench-bare-$TAG-$n-$r")"
            read -r ar acpu < <(agent "$n" 1 "lg-bench-agent-$TAG-$n-$r")
        else
            read -r ar acpu < <(agent "$n" 1 "lg-bench-agent-$TAG-$n-$r")
            br="$(bare "$n" "/default/lg-bench-bare-$TAG-$n-$r")"
        fi
        brs+=("$br") ars+=("$ar") acpus+=("$acpu") per+=("$(ratio "$ar" "$br")")
    done
    bm="$(median "${brs[@]}")" am="$(median "${ars[@]}")"
    echo "| $n producers (agent: count $n, clients 1) | $bm | $am | $(ratio "$am" "$bm") | ${per[*]} ($(ratio2 "${per[@]}")) | $(median "${acpus[@]}") |"
done
fi

if [ -n "${CONCURRENT:-}" ]; then
# The agent's acknowledged rate over its measurement intervals, and the bare
# loop's over the same wall-clock span (from its `--series` samples).
same_window() { # results-dir series-file -> "agent bare"
    python3 - "$1" "$2" <<'PY'
import bisect, datetime, json, sys
r = json.load(open(sys.argv[1] + "/report.json"))
start = datetime.datetime.fromisoformat(r["started_at"].replace("Z", "+00:00")).timestamp() * 1000
rows = [i for i in r["intervals"] if i["role"] == "producer" and i["phase"] == "measure"]
ts = sorted({i["t_s"] for i in rows})
acked = sum(i["acked"] for i in rows)
a, b = start + (ts[0] - 1) * 1000, start + ts[-1] * 1000
pts = [tuple(map(float, l.split())) for l in open(sys.argv[2]) if l.strip()]
xs = [p[0] for p in pts]
def at(t):  # acknowledged so far at wall time t (ms), interpolated
    k = bisect.bisect_left(xs, t)
    if k == 0 or k == len(xs):
        sys.exit(f"the bare loop's samples ({xs[0]:.0f}..{xs[-1]:.0f}) do not cover {t:.0f}")
    (x0, y0), (x1, y1) = pts[k - 1], pts[k]
    return y0 + (y1 - y0) * (t - x0) / (x1 - x0)
secs = (b - a) / 1000
print(f"{acked / secs:.1f} {(at(b) - at(a)) / secs:.1f}")
PY
}
echo
echo "## Agent and bare danube-client loop at the same time, 1 KiB, send-and-await, ${SECS}s windows"
echo
echo "| case | bare msg/s (median) | agent msg/s (median) | agent/bare per round | their median |"
echo "|---|---:|---:|---|---:|"
for n in 1 4 16; do
    brs=() ars=() per=()
    for r in $(seq 1 "$ROUNDS"); do
        # The bare loop outlasts the agent's run: set-up, warm-up, measurement.
        "${CLIENT_CPU[@]}" "$BIN/danube-bare" --url "$URL" --topic "/default/lg-bench-cbare-$TAG-$n-$r" --producers "$n" \
            --size 1024 --seconds "$((SECS + 8))" --series "$WORK/series" >/dev/null &
        bp=$!
        sleep 0.5
        dir="$(agent_run "$n" 1 "lg-bench-cagent-$TAG-$n-$r")"
        wait "$bp"
        read -r ar br < <(same_window "$dir" "$WORK/series")
        brs+=("$br") ars+=("$ar") per+=("$(ratio "$ar" "$br")")
    done
    echo "| $n producers each | $(median "${brs[@]}") | $(median "${ars[@]}") | ${per[*]} | $(ratio2 "${per[@]}") |"
done
fi
[ -n "${RATIO_ONLY:-}" ] && exit 0
echo
echo "## One logical producer, clients: N (agent only)"
echo
echo "| clients | agent msg/s | agent CPU % |"
echo "|---:|---:|---:|"
for c in 1 4 16; do
    read -r ar acpu < <(agent 1 "$c" "lg-bench-clients-$TAG-$c")
    echo "| $c | $ar | $acpu |"
done
