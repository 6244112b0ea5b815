"""Sends spans with the real OpenTelemetry Python SDK over OTLP/gRPC, named as the OTel demo's
frontend names them (with query strings and product ids) plus health checks, then prints (as
JSON on stdout) what it sent: name, trace id, span id and http.route of each span.

usage: send_spans.py ENDPOINT
"""
import json
import sys

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

endpoint = sys.argv[1]
tp = TracerProvider(resource=Resource.create({"service.name": "frontend"}))
tp.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
tracer = tp.get_tracer("otelgw.ottl.test")

sent = []
for name, route in [
    ("GET /api/products?currencyCode=USD", "/api/products"),
    ("GET /api/products/OLJCESPC7Z", "/api/products/{productId}"),
    ("GET /healthz", "/healthz"),
    ("POST /api/cart", "/api/cart"),
    ("GET /healthz", "/healthz"),
]:
    with tracer.start_as_current_span(name, attributes={"http.route": route}) as span:
        ctx = span.get_span_context()
        sent.append({"name": name, "route": route, "trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"})

ok = tp.force_flush(10_000)
tp.shutdown()
print(json.dumps({"flushed": ok, "spans": sent}))
