#!/usr/bin/env bash
# Apache Pulsar standalone on this machine, from Maven Central (no Docker):
# broker, admin REST, bookie and metadata store (RocksDB, in-process) on free
# 127.0.0.1 ports, data in the state directory, functions worker off.
#
#   scripts/pulsar-standalone.sh install            # resolve the jars into .pulsar/ (idempotent)
#   scripts/pulsar-standalone.sh start [--token] [--tls-cert F --tls-key F [--tls-ca F]]
#         # returns once a probe topic with a subscription can be made;
#         # last line: the pulsar:// service URL; the line before: the admin URL
#         # (with TLS, the pulsar+ssl:// and https:// URLs come first)
#   scripts/pulsar-standalone.sh stop               # ends it and removes its data
#   scripts/pulsar-standalone.sh kill               # kill -9, data kept (fault tests)
#   scripts/pulsar-standalone.sh restart            # start again: same ports, config and data
#   scripts/pulsar-standalone.sh perf ARGS...       # Apache's pulsar-perf against it
#   scripts/pulsar-standalone.sh admin-token        # the token (with --token), for curl
#
# --token: authentication on (JWT, HS256, a secret key made here); a token
#   for the role "loadgen" (a superuser) is minted into STATE/token.
# --tls-*: TLS ports beside the plain ones (PEM files; the key in PKCS#8).
#
# Environment: PULSAR_STANDALONE_STATE (default /tmp/pulsar-standalone-$USER;
# one broker per state directory), PULSAR_HEAP (JVM heap and direct memory,
# default 512m: the smallest that held our heaviest test load here, see
# BENCHMARKS.md), PULSAR_CACHE (default <repo>/.pulsar), PULSAR_STOP_WITH_PID
# (stop the broker when that process ends).
# Everything the script writes is in STATE: broker.conf, client.conf (for
# pulsar-perf), env (the URLs as shell variables), pulsar.log (warn and up).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${PULSAR_STANDALONE_STATE:-/tmp/pulsar-standalone-${USER:-root}}"
CACHE="${PULSAR_CACHE:-$ROOT/.pulsar}"
POM="$ROOT/scripts/pulsar/pom.xml"
HEAP="${PULSAR_HEAP:-512m}"
MAIN=org.apache.pulsar.PulsarStandaloneStarter
PERF_MAIN=org.apache.pulsar.testclient.PulsarPerfTestTool

die() { echo "pulsar-standalone: $1" >&2; exit "${2:-3}"; }

# The jars for the versions pom.xml names; a marker says the copy finished.
libdir() { echo "$CACHE/lib-$(sha256sum "$POM" | cut -c1-12)"; }

install() {
    local lib; lib="$(libdir)"
    [ -f "$lib/.complete" ] && return 0
    mkdir -p "$CACHE"
    # Tests start brokers in parallel: one install at a time.
    exec 9>"$CACHE/.install.lock"
    flock 9
    [ -f "$lib/.complete" ] && return 0
    command -v mvn >/dev/null || die "mvn not found (Maven is needed to install Apache Pulsar)" 4
    command -v java >/dev/null || die "java not found (Java 17 runs Apache Pulsar)" 4
    rm -rf "$lib"; mkdir -p "$lib"
    echo "== installing Apache Pulsar from Maven Central into $lib" >&2
    local log="$CACHE/install.log"
    if ! mvn -B -q -f "$POM" dependency:copy-dependencies -DoutputDirectory="$lib" >"$log" 2>&1; then
        # Name the artifact the registry refused, in one line.
        local what
        what="$(grep -o -m1 -E "(Could not find artifact|Failed to read artifact descriptor for|Could not transfer artifact) [^ ]+" "$log" | head -n1 | sed 's/:$//' || true)"
        rm -rf "$lib"
        die "Apache Pulsar could not be installed: ${what:-mvn failed, see $log}" 4
    fi
    touch "$lib/.complete"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# JVM options Apache's bin/pulsar passes on Java 17 (the broker reads
# container and GC figures through these), and the log configuration.
jvm_opts() {
    echo "-Xms$HEAP -Xmx$HEAP -XX:MaxDirectMemorySize=$HEAP -XX:+UseG1GC"
    echo "--add-opens java.base/jdk.internal.loader=ALL-UNNAMED --add-opens java.base/java.lang=ALL-UNNAMED"
    echo "--add-opens java.base/sun.net=ALL-UNNAMED --add-opens java.management/sun.management=ALL-UNNAMED"
    echo "--add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED --add-opens java.base/jdk.internal.platform=ALL-UNNAMED"
    echo "-Dlog4j.configurationFile=$STATE/log4j2.yaml"
    # The bookie turns read-only (no ledger can be created: every subscribe
    # times out) once the disk is 95 % used; a shared test machine's disk
    # often is. Its settings are read from system properties.
    echo "-DdiskUsageThreshold=0.99 -DdiskUsageWarnThreshold=0.99"
}


# An HS256 JWT {"sub": "loadgen"} signed with STATE/secret.key (what
# `pulsar tokens create --secret-key` makes).
mint_token() {
    python3 - "$STATE/secret.key" <<'PY'
import base64, hashlib, hmac, json, sys
key = open(sys.argv[1], "rb").read()
enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=")
head = enc(json.dumps({"alg": "HS256"}, separators=(",", ":")).encode())
body = enc(json.dumps({"sub": "loadgen"}, separators=(",", ":")).encode())
sig = enc(hmac.new(key, head + b"." + body, hashlib.sha256).digest())
print((head + b"." + body + b"." + sig).decode())
PY
}

write_config() {
    local token="$1" cert="$2" key="$3" ca="$4"
    {
        echo "clusterName=standalone"
        echo "bindAddress=127.0.0.1"
        echo "advertisedAddress=127.0.0.1"
        echo "brokerServicePort=$BROKER_PORT"
        echo "webServicePort=$WEB_PORT"
        # One bookie: every ledger on it.
        echo "managedLedgerDefaultEnsembleSize=1"
        echo "managedLedgerDefaultWriteQuorum=1"
        echo "managedLedgerDefaultAckQuorum=1"
        echo "functionsWorkerEnabled=false"
        echo "allowAutoTopicCreationType=non-partitioned"
        # Tests and benchmarks leave topics idle between phases.
        echo "brokerDeleteInactiveTopicsEnabled=false"
        if [ -n "$token" ]; then
            echo "authenticationEnabled=true"
            echo "authenticationProviders=org.apache.pulsar.broker.authentication.AuthenticationProviderToken"
            echo "tokenSecretKey=file://$STATE/secret.key"
            echo "superUserRoles=loadgen"
            echo "brokerClientAuthenticationPlugin=org.apache.pulsar.client.impl.auth.AuthenticationToken"
            echo "brokerClientAuthenticationParameters=file://$STATE/token"
        fi
        if [ -n "$cert" ]; then
            echo "brokerServicePortTls=$BROKER_TLS_PORT"
            echo "webServicePortTls=$WEB_TLS_PORT"
            echo "tlsCertificateFilePath=$cert"
            echo "tlsKeyFilePath=$key"
            echo "tlsTrustCertsFilePath=$ca"
        fi
    } > "$STATE/broker.conf"
    {
        echo "webServiceUrl=http://127.0.0.1:$WEB_PORT/"
        echo "brokerServiceUrl=pulsar://127.0.0.1:$BROKER_PORT/"
        if [ -n "$token" ]; then
            echo "authPlugin=org.apache.pulsar.client.impl.auth.AuthenticationToken"
            echo "authParams=file://$STATE/token"
        fi
    } > "$STATE/client.conf"
    cat > "$STATE/log4j2.yaml" <<EOF
Configuration:
  status: warn
  Appenders:
    File:
      name: file
      fileName: $STATE/pulsar.log
      PatternLayout: {Pattern: "%d{ISO8601} %-5level [%t] %c{1} - %msg%n"}
  Loggers:
    Root: {level: warn, AppenderRef: [{ref: file}]}
EOF
}

running() { [ -f "$STATE/pid" ] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null; }

launch() {
    local wipe="$1"
    # shellcheck disable=SC1091
    . "$STATE/ports"
    local lib; lib="$(libdir)"
    # Bookie settings come from system properties only with this switch (and
    # then win over the standalone's own): listeningInterface=lo keeps the
    # bookie on 127.0.0.1 (else it binds *); journalWriteData=true puts the
    # entries in the journal (the standalone's default leaves them in a write
    # cache, lost to a kill -9), journalSyncData=false without an fsync per
    # write: what the broker acknowledged survives the process crashing,
    # not the machine losing power.
    # shellcheck disable=SC2046
    nohup java $(jvm_opts) -Dorg.apache.bookkeeper.conf.readsystemproperties=true -DlisteningInterface=lo \
        -DjournalWriteData=true -DjournalSyncData=false \
        -cp "$lib/*" "$MAIN" -c "$STATE/broker.conf" -nfw -nss $wipe \
        --metadata-dir "$STATE/data/metadata" --bookkeeper-dir "$STATE/data/bookkeeper" \
        >"$STATE/stdout.log" 2>&1 </dev/null &
    echo $! > "$STATE/pid"
    # Up when the admin API lists the default namespace.
    local auth=()
    [ -f "$STATE/token" ] && auth=(-H "Authorization: Bearer $(cat "$STATE/token")")
    local deadline=$((SECONDS + ${PULSAR_START_TIMEOUT:-180}))
    until curl -sf -m 2 "${auth[@]}" "http://127.0.0.1:$WEB_PORT/admin/v2/namespaces/public" 2>/dev/null | grep -q 'public/default'; do
        still_starting "$deadline" "Apache Pulsar did not answer on its admin port within ${PULSAR_START_TIMEOUT:-180}s"
    done
    # Up is not yet ready: the first topic on a fresh standalone waits for
    # its namespace bundle and a ledger on the bookie (a read-only bookie
    # never gives one). A probe topic with a subscription, made and
    # deleted here, proves both before anyone is told the URL.
    local probe="http://127.0.0.1:$WEB_PORT/admin/v2/persistent/public/default/lg-ready-$$"
    until curl -sf -m 20 -X PUT "${auth[@]}" "$probe" >/dev/null 2>&1 \
        && curl -sf -m 20 -X PUT "${auth[@]}" "$probe/subscription/ready" >/dev/null 2>&1; do
        still_starting "$deadline" "Apache Pulsar answered but could not make a topic with a subscription within ${PULSAR_START_TIMEOUT:-180}s (the disk under $STATE is $(df -P "$STATE" | awk 'NR == 2 {print $5}') used; its bookie turns read-only at 99 %)"
    done
    curl -sf -m 20 -X DELETE "${auth[@]}" "$probe?force=true" >/dev/null 2>&1 || true
}

# Between two tries while the broker starts: dies when it exited, or, past
# DEADLINE (in $SECONDS), stops it and dies saying WHY; else waits a little.
still_starting() { # deadline why
    if ! running; then
        tail -n 20 "$STATE/pulsar.log" "$STATE/stdout.log" >&2 2>/dev/null || true
        die "Apache Pulsar exited while starting; see $STATE/pulsar.log"
    fi
    if [ $SECONDS -ge "$1" ]; then
        tail -n 20 "$STATE/pulsar.log" >&2 2>/dev/null || true
        stop_broker
        die "$2; see $STATE/pulsar.log"
    fi
    sleep 0.5
}

stop_broker() {
    if running; then
        local pid; pid="$(cat "$STATE/pid")"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$STATE/pid"
}

print_urls() {
    # shellcheck disable=SC1091
    . "$STATE/env"
    if [ -n "${PULSAR_TLS_URL:-}" ]; then
        echo "$PULSAR_ADMIN_TLS_URL"
        echo "$PULSAR_TLS_URL"
    fi
    echo "$PULSAR_ADMIN_URL"
    echo "$PULSAR_URL"
}

cmd="${1:-}"; [ $# -gt 0 ] && shift
case "$cmd" in
install)
    install
    ;;
start)
    token="" cert="" key="" ca=""
    while [ $# -gt 0 ]; do
        case "$1" in
            --token) token=1; shift ;;
            --tls-cert) cert="$2"; shift 2 ;;
            --tls-key) key="$2"; shift 2 ;;
            --tls-ca) ca="$2"; shift 2 ;;
            *) die "unknown option $1" 2 ;;
        esac
    done
    if [ -n "$cert" ] && [ -z "$key" ]; then die "--tls-cert needs --tls-key" 2; fi
    [ -z "$ca" ] && ca="$cert"
    install
    stop_broker
    rm -rf "$STATE"; mkdir -p "$STATE"
    BROKER_PORT="$(free_port)" WEB_PORT="$(free_port)" BROKER_TLS_PORT="" WEB_TLS_PORT=""
    if [ -n "$cert" ]; then BROKER_TLS_PORT="$(free_port)" WEB_TLS_PORT="$(free_port)"; fi
    printf 'BROKER_PORT=%s\nWEB_PORT=%s\nBROKER_TLS_PORT=%s\nWEB_TLS_PORT=%s\n' \
        "$BROKER_PORT" "$WEB_PORT" "$BROKER_TLS_PORT" "$WEB_TLS_PORT" > "$STATE/ports"
    if [ -n "$token" ]; then
        head -c 32 /dev/urandom > "$STATE/secret.key"
        mint_token > "$STATE/token"
    fi
    write_config "$token" "$cert" "$key" "$ca"
    {
        echo "PULSAR_URL=pulsar://127.0.0.1:$BROKER_PORT"
        echo "PULSAR_ADMIN_URL=http://127.0.0.1:$WEB_PORT"
        if [ -n "$cert" ]; then
            echo "PULSAR_TLS_URL=pulsar+ssl://127.0.0.1:$BROKER_TLS_PORT"
            echo "PULSAR_ADMIN_TLS_URL=https://127.0.0.1:$WEB_TLS_PORT"
        fi
        [ -n "$token" ] && echo "PULSAR_TOKEN_FILE=$STATE/token"
        echo "PULSAR_PID_FILE=$STATE/pid"
    } > "$STATE/env"
    launch --wipe-data
    # PULSAR_STOP_WITH_PID: stop the broker and remove its state when that
    # process ends (tests: no JVM outlives the test binary that started it).
    if [ -n "${PULSAR_STOP_WITH_PID:-}" ]; then
        (
            while kill -0 "$PULSAR_STOP_WITH_PID" 2>/dev/null && [ -d "$STATE" ]; do sleep 1; done
            if [ -f "$STATE/pid" ]; then kill -9 "$(cat "$STATE/pid")" 2>/dev/null || true; rm -rf "$STATE"; fi
        ) </dev/null >/dev/null 2>&1 &
        disown
    fi
    echo "Apache Pulsar standalone up (pid $(cat "$STATE/pid"), heap $HEAP, state $STATE); stop with: $0 stop" >&2
    print_urls
    ;;
restart)
    [ -f "$STATE/ports" ] || die "nothing to restart in $STATE (start first)" 2
    install
    stop_broker
    launch ""
    print_urls
    ;;
kill)
    if running; then kill -9 "$(cat "$STATE/pid")"; fi
    rm -f "$STATE/pid"
    ;;
stop)
    stop_broker
    rm -rf "$STATE"
    echo "stopped" >&2
    ;;
perf)
    [ -f "$STATE/client.conf" ] || die "no broker in $STATE (start first)" 2
    install
    # shellcheck disable=SC2046
    exec java -Xmx1g $(jvm_opts | sed -n 2,3p) -Dlog4j.configurationFile="$ROOT/scripts/pulsar/perf-log4j2.yaml" \
        -cp "$(libdir)/*" "$PERF_MAIN" "$STATE/client.conf" "$@"
    ;;
admin-token)
    cat "$STATE/token"
    ;;
*)
    echo "usage: $0 install | start [--token] [--tls-cert F --tls-key F [--tls-ca F]] | stop | kill | restart | perf ARGS... | admin-token" >&2
    exit 2
    ;;
esac
