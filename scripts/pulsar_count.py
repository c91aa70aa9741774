"""Independent cross-check: the official Pulsar client subscribes to a topic,
prints READY, then counts distinct messages per producer from our stamp
property until nothing arrives for IDLE seconds; prints one JSON line.

    python scripts/pulsar_count.py URL TOPIC SUBSCRIPTION IDLE_SECONDS
"""
import base64
import json
import sys
import time

import pulsar


def varint(b, at):
    v, shift = 0, 0
    while True:
        v |= (b[at] & 0x7F) << shift
        at += 1
        if b[at - 1] < 0x80:
            return v, at
        shift += 7


url, topic, sub, idle = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
client = pulsar.Client(url, operation_timeout_seconds=10)
consumer = client.subscribe(topic, sub, consumer_type=pulsar.ConsumerType.Shared)
print("READY", flush=True)
seen = {}
deliveries = 0
last = time.time()
started = False
while True:
    try:
        msg = consumer.receive(timeout_millis=200)
    except Exception:  # timeout
        if started and time.time() - last > idle:
            break
        if not started and time.time() - last > 120:
            break
        continue
    started = True
    last = time.time()
    deliveries += 1
    stamp = msg.properties().get("lg-stamp", "")
    consumer.acknowledge(msg)
    if not stamp:
        continue
    # base64url(run tag u32, producer varint, seq varint, sent i64,
    # lateness zigzag varint; little-endian): see docs/measurement.md, "End to end".
    raw = base64.urlsafe_b64decode(stamp + "=" * (-len(stamp) % 4))
    at = 4
    producer, at = varint(raw, at)
    seq, at = varint(raw, at)
    seen.setdefault(producer, set()).add(seq)
client.close()
print(json.dumps({
    "deliveries": deliveries,
    "unique": sum(len(s) for s in seen.values()),
    "producers": len(seen),
}), flush=True)
