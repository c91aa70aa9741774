"""What a user would write instead (benchmark P2): the official Python
client's async send loop, at most W sends in flight per producer, fixed-size
payloads, for a fixed time. Prints one JSON line like pulsar-bare.

    python bench/pulsar_python.py URL TOPIC PRODUCERS IN_FLIGHT SIZE SECONDS
"""
import json
import sys
import threading
import time

import pulsar

url, topic = sys.argv[1], sys.argv[2]
producers, in_flight, size, seconds = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
client = pulsar.Client(url, operation_timeout_seconds=30, io_threads=2)
payload = b"\xab" * size
lock = threading.Lock()
counts = {"acked": 0, "errors": 0}


def run(p):
    slots = threading.Semaphore(in_flight)

    def done(res, _msg_id):
        with lock:
            if res == pulsar.Result.Ok:
                counts["acked"] += 1
            else:
                counts["errors"] += 1
        slots.release()

    until = time.time() + seconds
    while time.time() < until:
        slots.acquire()
        p.send_async(payload, done)
    p.flush()


ps = [client.create_producer(topic, batching_enabled=False, block_if_queue_full=True) for _ in range(producers)]
start = time.time()
threads = [threading.Thread(target=run, args=(p,)) for p in ps]
for t in threads:
    t.start()
for t in threads:
    t.join()
secs = time.time() - start
client.close()
print(json.dumps({"acked": counts["acked"], "errors": counts["errors"], "seconds": round(secs, 3),
                  "rate_msgs_per_s": round(counts["acked"] / secs, 1)}), flush=True)
