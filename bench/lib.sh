# Sourced by bench/danube.sh, pulsar.sh and pulsar-perf.sh, from the repository root:
# the release build they run, and reading the numbers they compare.

# protoc for dependencies' build scripts.
. scripts/env.sh

# Where the release binaries are (CARGO_TARGET_DIR honoured).
BIN="${CARGO_TARGET_DIR:-target}/release"

# Builds the release binaries of the packages named, unless SKIP_BUILD is set.
build_release() { # package...
    local p args=()
    for p in "$@"; do args+=(-p "$p"); done
    [ -n "${SKIP_BUILD:-}" ] || cargo build -q --release --locked "${args[@]}" >&2
}

# The rate in a bare client loop's JSON line, read from stdin.
json_rate() {
    python3 -c 'import json,sys; print(json.load(sys.stdin)["rate_msgs_per_s"])'
}

# "rate cpu%" of a run with one group on one agent, from its results directory.
report_rate_cpu() { # results-dir
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1]+"/report.json")); print(round(r["groups"][0]["rate_msgs_per_s"],1), round(r["agents"][0]["cpu_percent"],1))' "$1"
}

# A / B to two decimals.
ratio() { # a b
    python3 -c "print(f'{$1/$2:.2f}')"
}

# The median of the numbers given, to DIGITS decimals.
median_to() { # digits number...
    python3 -c 'import statistics,sys; print(f"{statistics.median(map(float, sys.argv[2:])):.{sys.argv[1]}f}")' "$@"
}

# The median of the numbers given, to one decimal.
median() { # number...
    median_to 1 "$@"
}

# The median of ratios, to two decimals: the rounds' paired ratios, which a
# machine whose speed drifts between rounds disturbs less than the ratio of
# the medians.
ratio2() { # ratio...
    median_to 2 "$@"
}

# PIN=1: the client processes (agents, coordinators, bare loops) on CPU 0,
# through CLIENT_CPU; start the broker on CPU 1.
clients_on_cpu0() {
    CLIENT_CPU=()
    if [ -n "${PIN:-}" ]; then CLIENT_CPU=(taskset -c 0); fi
}

# Apache Pulsar standalone for a benchmark (bench/pulsar.sh, pulsar-perf.sh):
# PIN=1 puts the broker's JVM on CPU 1 and every client on CPU 0
# (BROKER_CPU, CLIENT_CPU), as on a cluster where the load generator does not
# share the broker's cores. Its state lives in a temp directory.
pulsar_bench_setup() {
    BROKER_CPU=() CLIENT_CPU=()
    if [ -n "${PIN:-}" ]; then BROKER_CPU=(taskset -c 1) CLIENT_CPU=(taskset -c 0); fi
    PULSAR_STANDALONE_STATE="$(mktemp -d /tmp/lg-bench-pulsar.XXXXXX)"
    export PULSAR_STANDALONE_STATE
}

# A fresh broker with an empty store (`start` empties the state directory):
# no round reads another's backlog, a long run cannot fill the disk. Sets URL.
fresh_broker() {
    scripts/pulsar-standalone.sh stop >/dev/null 2>&1 || true
    URL="$("${BROKER_CPU[@]}" scripts/pulsar-standalone.sh start 2>/dev/null | tail -n1)"
}

# Stops the benchmark's broker and removes its state (for an EXIT trap).
pulsar_bench_teardown() {
    scripts/pulsar-standalone.sh stop >/dev/null 2>&1 || true
    rm -rf "$PULSAR_STANDALONE_STATE"
}
