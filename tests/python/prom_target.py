"""A scrape target built with the Prometheus Python client (`prometheus_client`): every metric
type (counter, gauge, histogram, summary, info, enum/stateset, gauge histogram), exemplars,
`_created`, and OpenMetrics when the scraper asks for it (the client negotiates by `Accept`).
Some values come from a JSON state file the test rewrites, so it can make a counter reset and a
series disappear: {"jobs": <counter value>, "rooms": {"<room>": <temperature>, ...}}.

usage: prom_target.py PORT STATE_FILE   (exits by itself after 15 minutes)
"""
import json
import sys
import time

from prometheus_client import REGISTRY, Counter, Enum, Histogram, Info, Summary, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeHistogramMetricFamily, GaugeMetricFamily

port, state_path = int(sys.argv[1]), sys.argv[2]
TRACE = {"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331"}


class Controlled:
    """Values from the state file, read at every scrape."""

    def collect(self):
        with open(state_path) as f:
            st = json.load(f)
        jobs = CounterMetricFamily("jobs_processed", "Jobs processed.", labels=["queue"])
        jobs.add_metric(["q1"], st["jobs"], created=1700000000.5)
        yield jobs
        rooms = GaugeMetricFamily("room_temperature_celsius", "Temperature by room.", labels=["room"], unit="celsius")
        for room, t in sorted(st["rooms"].items()):
            rooms.add_metric([room], t)
        yield rooms
        yield GaugeHistogramMetricFamily(
            "queue_wait_seconds", "Time waiting in the queue.", buckets=[("0.5", 1), ("+Inf", 3)], gsum_value=2.5
        )


REGISTRY.register(Controlled())
latency = Histogram("request_latency_seconds", "Request latency.", ["route"], buckets=[0.1, 0.5, 1.0])
for v in (0.05, 0.3, 0.7, 2.0):
    latency.labels("/a").observe(v, exemplar=TRACE)
payload = Summary("payload_bytes", "Payload sizes.")
for v in (100, 300):
    payload.observe(v)
requests = Counter("http_requests", "Requests served.", ["code"])
requests.labels("200").inc(7, exemplar=TRACE)
requests.labels("500").inc(2)
Info("build", "Build information.").info({"version": "1.2.3", "revision": "abc"})
Enum("worker_state", "Worker state.", states=["idle", "busy"]).state("busy")

start_http_server(port, addr="127.0.0.1")
time.sleep(900)  # the server thread is a daemon: the process ends with this sleep
