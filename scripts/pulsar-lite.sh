#!/usr/bin/env bash
# Runs a pulsar-lite broker (a Rust Pulsar-protocol broker shipped on PyPI)
# on loopback for trying the Pulsar scenarios by hand, behind our
# frame-normalising relay (tools/testkit: pulsar-lite omits the optional
# magic number + CRC32C that the `pulsar` crate requires).
#
#   scripts/pulsar-lite.sh start [--partitions N]   # last line: the service URL
#   scripts/pulsar-lite.sh stop
#
# State (config, db, pids, logs) lives in $PULSAR_LITE_STATE (default
# /tmp/pulsar-lite-$USER); one broker at a time per state directory.
# PULSAR_RELAY_PROFILE=release runs an optimised relay (benchmarks: a debug
# relay spends CPU the clients and the broker then lack).
set -euo pipefail
cd "$(dirname "$0")/.."
STATE="${PULSAR_LITE_STATE:-/tmp/pulsar-lite-${USER:-root}}"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

wait_port() {
    for _ in $(seq 1 150); do
        if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(0 if s.connect_ex(('127.0.0.1',$1))==0 else 1)"; then return 0; fi
        sleep 0.1
    done
    return 1
}

stop() {
    for f in relay broker; do
        if [ -f "$STATE/$f.pid" ]; then
            kill "$(cat "$STATE/$f.pid")" 2>/dev/null || true
            rm -f "$STATE/$f.pid"
        fi
    done
}

case "${1:-}" in
start)
    shift
    partitions=0
    while [ $# -gt 0 ]; do
        case "$1" in
            --partitions) partitions="$2"; shift 2 ;;
            *) echo "unknown option $1" >&2; exit 2 ;;
        esac
    done
    bash scripts/install-pulsar-lite.sh >&2
    BIN="$(ls .venv/lib/python3*/site-packages/pulsar_lite/bin/pulsar-lite | head -n1)"
    . scripts/env.sh
    profile="${PULSAR_RELAY_PROFILE:-debug}"
    case "$profile" in
        debug) cargo build -q --locked -p testkit --bin pulsar-relay >&2 ;;
        release) cargo build -q --locked --release -p testkit --bin pulsar-relay >&2 ;;
        *) echo "PULSAR_RELAY_PROFILE must be debug or release" >&2; exit 2 ;;
    esac
    stop
    rm -rf "$STATE"; mkdir -p "$STATE"
    {
        if [ "$partitions" -gt 0 ]; then echo "default_partitions = $partitions"; fi
        printf '[metrics]\nenabled = false\n'
    } > "$STATE/pulsar-lite.toml"
    bport="$(free_port)"
    nohup "$BIN" --config "$STATE/pulsar-lite.toml" --addr "127.0.0.1:$bport" --db-path "$STATE/db" --log-level error \
        > "$STATE/broker.log" 2>&1 &
    echo $! > "$STATE/broker.pid"
    wait_port "$bport" || { echo "pulsar-lite did not start; see $STATE/broker.log" >&2; stop; exit 3; }
    rport="$(free_port)"
    nohup "${CARGO_TARGET_DIR:-target}/$profile/pulsar-relay" --upstream "127.0.0.1:$bport" --listen "127.0.0.1:$rport" > "$STATE/relay.log" 2>&1 &
    echo $! > "$STATE/relay.pid"
    wait_port "$rport" || { echo "relay did not start; see $STATE/relay.log" >&2; stop; exit 3; }
    echo "pulsar-lite on 127.0.0.1:$bport (partitions: $partitions), relay on 127.0.0.1:$rport; stop with: $0 stop" >&2
    echo "pulsar://127.0.0.1:$rport"
    ;;
stop)
    stop
    echo "stopped" >&2
    ;;
*)
    echo "usage: $0 start [--partitions N] | stop" >&2
    exit 2
    ;;
esac
