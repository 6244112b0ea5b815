"""Sends traces, metrics and logs with the real OpenTelemetry Python SDK, then prints (as JSON on
stdout) what it sent, so the Rust test can compare it field by field with what otelgw delivered.

usage: send.py PROTOCOL ENDPOINT   (PROTOCOL: grpc | http/protobuf | http/json)
"""
import json
import logging
import sys
import time

from opentelemetry import metrics, trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

protocol, endpoint = sys.argv[1], sys.argv[2]

if protocol == "grpc":
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    span_exp = OTLPSpanExporter(endpoint=endpoint, insecure=True)
    metric_exp = OTLPMetricExporter(endpoint=endpoint, insecure=True)
    log_exp = OTLPLogExporter(endpoint=endpoint, insecure=True)
elif protocol == "http/protobuf":
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    span_exp = OTLPSpanExporter(endpoint=endpoint + "/v1/traces")
    metric_exp = OTLPMetricExporter(endpoint=endpoint + "/v1/metrics")
    log_exp = OTLPLogExporter(endpoint=endpoint + "/v1/logs")
elif protocol == "http/json":
    from opentelemetry.exporter.otlp.json.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.json.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter

    span_exp = OTLPSpanExporter(endpoint=endpoint + "/v1/traces")
    metric_exp = OTLPMetricExporter(endpoint=endpoint + "/v1/metrics")
    log_exp = OTLPLogExporter(endpoint=endpoint + "/v1/logs")
else:
    raise SystemExit(f"unknown protocol {protocol}")

resource = Resource.create({"service.name": "py-svc", "service.namespace": "shop", "deployment.environment": "test"})

tp = TracerProvider(resource=resource)
tp.add_span_processor(SimpleSpanProcessor(span_exp))
tracer = tp.get_tracer("otelgw.python.test", "1.2.3")

lp = LoggerProvider(resource=resource)
lp.add_log_record_processor(SimpleLogRecordProcessor(log_exp))
set_logger_provider(lp)
log = logging.getLogger("py-test")
log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=lp))
log.setLevel(logging.INFO)

reader = PeriodicExportingMetricReader(metric_exp, export_interval_millis=3_600_000)
mp = MeterProvider(resource=resource, metric_readers=[reader])
meter = mp.get_meter("otelgw.python.test", "1.2.3")

t0 = time.time_ns()
with tracer.start_as_current_span(
    "parent",
    start_time=t0,
    attributes={"http.method": "GET", "retries": 3, "ratio": 0.25, "ok": True, "tags": ["a", "b"], "unicode": "héllo ✓"},
    end_on_exit=False,
) as parent:
    with tracer.start_as_current_span("child", kind=trace.SpanKind.SERVER, start_time=t0 + 1000, end_on_exit=False) as child:
        child.set_attribute("big", 9007199254740993)
        log.warning("payment failed for order %s", "o-17")
        child.end(end_time=t0 + 5000)
    parent.end(end_time=t0 + 9000)

counter = meter.create_counter("orders", unit="1", description="orders placed")
counter.add(5, {"region": "eu"})
counter.add(2, {"region": "us"})
hist = meter.create_histogram("latency", unit="ms")
for v in (3, 7, 250):
    hist.record(v, {"route": "/pay"})
updown = meter.create_up_down_counter("queue_depth")
updown.add(10)
updown.add(-4)

ok_t = tp.force_flush(10_000)
ok_m = mp.force_flush(10_000)
ok_l = lp.force_flush(10_000)

pc, cc = parent.get_span_context(), child.get_span_context()
print(json.dumps({
    "flushed": [bool(ok_t), bool(ok_m), bool(ok_l)],
    "trace_id": format(pc.trace_id, "032x"),
    "parent": {"span_id": format(pc.span_id, "016x"), "start": t0, "end": t0 + 9000},
    "child": {"span_id": format(cc.span_id, "016x"), "start": t0 + 1000, "end": t0 + 5000},
}))
tp.shutdown()
mp.shutdown()
lp.shutdown()
