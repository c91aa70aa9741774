#!/usr/bin/env bash
# The generator's and the coordinator's own cost, this tree against another
# commit, in one run (for a change that must not regress them):
#   1. headroom: configs/headroom.yaml (memory broker, closed loop, one
#      in-process agent) pinned to one core: producer msg/s;
#   2. coordinator scale: coord-sim with AGENTS simulated agents: the run
#      loop's merge time per interval (p50, max) and the coordinator's CPU.
# Builds BEFORE's release binaries in a temporary worktree (kept in
# /tmp/lg-before-<rev> for reruns), then alternates before/after for ROUNDS
# rounds, who goes first alternating. Prints markdown: medians and every
# round's after/before ratio.
# Usage: bench/before-after.sh BEFORE_REV [ROUNDS] [SECONDS] [AGENTS]
set -Eeuo pipefail
trap 'echo "$0: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
REV="$(git rev-parse --short "${1:?usage: bench/before-after.sh BEFORE_REV [ROUNDS] [SECONDS] [AGENTS]}")"
ROUNDS="${2:-3}"
SECS="${3:-10}"
AGENTS="${4:-1000}"
. bench/lib.sh
. scripts/env.sh
build_release coordinator bench
BEFORE="/tmp/lg-before-$REV"
if [ ! -d "$BEFORE" ]; then
    git worktree add -q --detach "$BEFORE" "$REV"
fi
(cd "$BEFORE" && cargo build -q --release --locked -p coordinator >&2)
A="$BEFORE/target/release/coordinator"
B="target/release/coordinator"
SIM="target/release/coord-sim"
WORK="$(mktemp -d /tmp/lg-before-after.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

headroom() { # coordinator -> producer msg/s
    local dir
    dir="$(taskset -c 0 "$1" run configs/headroom.yaml --local-agents 1 --set "phases.duration=${SECS}s" \
        --results "$WORK/results" --quiet 2>/dev/null | tail -n1)"
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1]+"/report.json")); print(round(next(g for g in r["groups"] if g["role"]=="producer")["rate_msgs_per_s"]))' "$dir"
}

scale() { # coordinator -> "merge_p50_ms merge_max_ms cpu_percent"
    "$SIM" --agents "$AGENTS" --seconds "$SECS" --coordinator "$1" 2>/dev/null | grep '^{' | tail -n1 |
        python3 -c 'import json,sys; j=json.load(sys.stdin); c=j["coordinator"]; print(c["interval_merge_ms_p50"], c["interval_merge_ms_max"], round(j["coordinator_cpu_percent_of_one_core"], 1))'
}

hb=() ha=() hr=() mb=() ma=() mr=() cb=() ca=()
for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then order="A B"; else order="B A"; fi
    for w in $order; do
        bin="$A"; [ "$w" = B ] && bin="$B"
        h="$(headroom "$bin")"
        read -r m mx cpu < <(scale "$bin")
        if [ "$w" = A ]; then hb+=("$h"); mb+=("$m"); cb+=("$cpu"); else ha+=("$h"); ma+=("$m"); ca+=("$cpu"); fi
        echo "round $r $w: headroom $h msg/s, merge p50 $m ms (max $mx), coordinator CPU $cpu %" >&2
    done
    hr+=("$(ratio "${ha[-1]}" "${hb[-1]}")") mr+=("$(ratio "${ma[-1]}" "${mb[-1]}")")
done
echo "| figure | before ($REV) median | after ($(git rev-parse --short HEAD)) median | after/before | per round |"
echo "|---|---:|---:|---:|---|"
echo "| headroom, producer msg/s on one core | $(median "${hb[@]}") | $(median "${ha[@]}") | $(ratio "$(median "${ha[@]}")" "$(median "${hb[@]}")") | ${hr[*]} |"
echo "| coordinator run loop per interval, p50 ms ($AGENTS agents) | $(median "${mb[@]}") | $(median "${ma[@]}") | $(ratio "$(median "${ma[@]}")" "$(median "${mb[@]}")") | ${mr[*]} |"
echo "| coordinator CPU % of one core ($AGENTS agents) | $(median "${cb[@]}") | $(median "${ca[@]}") | $(ratio "$(median "${ca[@]}")" "$(median "${cb[@]}")") | |"
