"""Sends every kind of metric with the OpenTelemetry Python SDK over OTLP/gRPC, in two exports,
with the temporality given (cumulative | delta). Names are prefixed with the temporality so both
runs can share one gateway. Counter adds happen inside a sampled span, so the SDK attaches
exemplars (trace_id, span_id). Prints what it sent as JSON.

usage: metrics.py ENDPOINT TEMPORALITY
"""
import json
import sys

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

endpoint, temporality = sys.argv[1], sys.argv[2]
t = AggregationTemporality.DELTA if temporality == "delta" else AggregationTemporality.CUMULATIVE
exporter = OTLPMetricExporter(
    endpoint=endpoint,
    insecure=True,
    preferred_temporality={
        Counter: t,
        UpDownCounter: t,
        Histogram: t,
        ObservableCounter: t,
        ObservableUpDownCounter: t,
        ObservableGauge: AggregationTemporality.CUMULATIVE,
    },
)
reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
resource = Resource.create({"service.name": "metrics-svc", "service.namespace": "py", "service.instance.id": f"{temporality}-1", "host.name": "box"})
views = [
    View(instrument_name=f"{temporality}.exp_latency", aggregation=ExponentialBucketHistogramAggregation(max_size=20)),
    View(instrument_name=f"{temporality}.latency", aggregation=ExplicitBucketHistogramAggregation(boundaries=[0.1, 0.5, 1.0])),
]
mp = MeterProvider(resource=resource, metric_readers=[reader], views=views)
meter = mp.get_meter("otelgw.metrics.test", "2.0")
tracer = TracerProvider(resource=resource).get_tracer("otelgw.metrics.test")

p = temporality
requests = meter.create_counter(f"{p}.requests", unit="{request}", description="requests handled")
depth = meter.create_up_down_counter(f"{p}.queue_depth")
latency = meter.create_histogram(f"{p}.latency", unit="s")
exp_latency = meter.create_histogram(f"{p}.exp_latency", unit="s")


def temperature(_: CallbackOptions):
    yield Observation(21.5, {"room": "lab"})


meter.create_observable_gauge(f"{p}.temperature", callbacks=[temperature], unit="Cel")

with tracer.start_as_current_span("work") as span:
    requests.add(5, {"route": "/a"})
    ctx = span.get_span_context()
depth.add(10)
for v in (0.05, 0.3):
    latency.record(v, {"route": "/a"})
    exp_latency.record(v, {"route": "/a"})
ok1 = mp.force_flush(10_000)

with tracer.start_as_current_span("work2"):
    requests.add(3, {"route": "/a"})
depth.add(-4)
for v in (0.7, 2.0):
    latency.record(v, {"route": "/a"})
    exp_latency.record(v, {"route": "/a"})
ok2 = mp.force_flush(10_000)

print(json.dumps({"flushed": [bool(ok1), bool(ok2)], "trace_id": format(ctx.trace_id, "032x")}))
mp.shutdown()
