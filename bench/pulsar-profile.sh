#!/usr/bin/env bash
# Where the bare `pulsar`-crate loop spends its CPU (benchmark P2's floor):
# `perf record` (cpu-clock, DWARF call graphs) of tools/bench pulsar-bare on one
# Apache Pulsar standalone, the same settings as bench/pulsar-perf.sh's max
# rate (PRODUCERS producers, 1 KiB, IN_FLIGHT sends in flight, unbatched or
# BATCH messages per batch). Prints the self time grouped by where the code
# comes from (the pulsar crate, tokio, prost, the allocator, the kernel, …)
# and the top symbols, as markdown; then who calls memcpy/memmove (the
# largest share on this machine: the crate moves its command structs and
# futures by value).
# Usage: [PIN=1] [BATCH=100] bench/pulsar-profile.sh [SECONDS] [PRODUCERS] [IN_FLIGHT]
set -Eeuo pipefail
trap 'echo "$0: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
SECS="${1:-15}"
PRODUCERS="${2:-4}"
IN_FLIGHT="${3:-1000}"
command -v perf >/dev/null || { echo "$0: needs perf (Debian: linux-perf)" >&2; exit 2; }
. bench/lib.sh
build_release bench
bash scripts/pulsar-standalone.sh install
pulsar_bench_setup
WORK="$(mktemp -d /tmp/lg-bench-profile.XXXXXX)"
trap 'pulsar_bench_teardown; rm -rf "$WORK"' EXIT
BIN="${CARGO_TARGET_DIR:-target}/release"
batch=()
[ -n "${BATCH:-}" ] && batch=(--batch "$BATCH" --batch-delay-ms 5)

fresh_broker
# The broker's JVM is cold: one unmeasured run first.
"${CLIENT_CPU[@]}" "$BIN/pulsar-bare" --url "$URL" --topic warm --producers "$PRODUCERS" --in-flight "$IN_FLIGHT" \
    --size 1024 --seconds 10 "${batch[@]}" >/dev/null
"${CLIENT_CPU[@]}" perf record -q -e cpu-clock -F 499 --call-graph dwarf,8192 -o "$WORK/perf.data" -- \
    "$BIN/pulsar-bare" --url "$URL" --topic prof --producers "$PRODUCERS" --in-flight "$IN_FLIGHT" \
    --size 1024 --seconds "$SECS" "${batch[@]}" > "$WORK/bare.json" 2>/dev/null
perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio -q --percent-limit 0 2>/dev/null \
    > "$WORK/report.txt"
memmove="$(grep -o '__mem[a-z]*_avx[0-9a-z_]*\|__memmove[a-z0-9_]*' "$WORK/report.txt" | head -n1)"
python3 - "$WORK/report.txt" "$WORK/bare.json" "$PRODUCERS" "$IN_FLIGHT" "${BATCH:-}" <<'PY'
import json, re, sys
from collections import defaultdict
report, bare, producers, in_flight, batch = sys.argv[1:6]
b = json.loads(open(bare).read().strip().splitlines()[-1])
rows = []
for line in open(report):
    m = re.match(r"\s*([0-9.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)", line)
    if m:
        rows.append((float(m.group(1)), m.group(2), m.group(3), m.group(4).strip()))
def origin(dso, kind, sym):
    if kind == "k" or dso.startswith("[kernel"):
        return "kernel (syscalls: socket writes/reads, epoll, futex; loopback TCP)"
    s = sym
    for prefix, name in [
        ("pulsar::", "pulsar crate"), ("<pulsar::", "pulsar crate"),
        ("tokio::", "tokio"), ("<tokio::", "tokio"), ("tokio_util", "tokio"),
        ("prost", "prost (protobuf encode/decode)"), ("<prost", "prost (protobuf encode/decode)"),
        ("crc32c", "crc32c"), ("futures", "futures (channels, streams)"), ("<futures", "futures (channels, streams)"),
        ("asynchronous_codec", "framing codec"), ("<asynchronous_codec", "framing codec"),
        ("mi_", "allocator (mimalloc/libc)"), ("_mi_", "allocator (mimalloc/libc)"), ("malloc", "allocator (mimalloc/libc)"),
        ("free", "allocator (mimalloc/libc)"), ("cfree", "allocator (mimalloc/libc)"), ("_int_", "allocator (mimalloc/libc)"),
        ("__memmove", "memcpy/memset"), ("__memset", "memcpy/memset"), ("__memcpy", "memcpy/memset"),
        ("bytes::", "bytes"), ("<bytes::", "bytes"),
        ("core::", "core/alloc (std)"), ("alloc::", "core/alloc (std)"), ("<alloc::", "core/alloc (std)"), ("<core::", "core/alloc (std)"),
        ("std::", "core/alloc (std)"), ("hashbrown", "core/alloc (std)"),
        ("pulsar_bare", "the loop itself"), ("bench::", "the loop itself"),
    ]:
        if s.startswith(prefix):
            return name
    if dso.startswith("libc"):
        return "libc (other)"
    return "other"
by = defaultdict(float)
for pct, dso, kind, sym in rows:
    by[origin(dso, kind, sym)] += pct
total = sum(by.values()) or 1
mode = f"batched {batch}/5ms" if batch else "unbatched"
print(f"pulsar-bare: {producers} producers, 1 KiB, {in_flight} in flight, {mode}: "
      f"{b['acked']} acked in {b.get('seconds', '?')} s ({b.get('rate_msgs_per_s', 0):.0f} msg/s)\n")
print("| where the CPU went (self time) | share |\n|---|---:|")
for k, v in sorted(by.items(), key=lambda kv: -kv[1]):
    print(f"| {k} | {100 * v / total:.1f} % |")
print("\n| top symbols | dso | share |\n|---|---|---:|")
for pct, dso, kind, sym in sorted(rows, key=lambda r: -r[0])[:25]:
    print(f"| `{sym[:110]}` | {dso} | {pct:.2f} % |")
PY
if [ -n "$memmove" ]; then
    echo
    echo "Callers of \`$memmove\` (share of all samples):"
    echo
    echo '```'
    perf report -i "$WORK/perf.data" --no-children --stdio -S "$memmove" -g caller,0.5,callee,function,percent 2>/dev/null |
        grep -E -- '--[0-9.]+%--' | head -n 15 | cut -c1-160
    echo '```'
fi
