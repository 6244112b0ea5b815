"""Exports one span every 50 ms over OTLP/gRPC (plaintext) with the real Python SDK for SECONDS,
through one long-lived channel, and prints {"ok": n, "failed": m} (the exporter's own verdicts).

usage: export_loop.py ENDPOINT SECONDS
"""
import json
import sys
import time

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

endpoint, seconds = sys.argv[1], float(sys.argv[2])
exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=5)
memory = InMemorySpanExporter()
tp = TracerProvider()
tp.add_span_processor(SimpleSpanProcessor(memory))
tracer = tp.get_tracer("otelgw.python.loop")
ok = failed = 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    memory.clear()
    with tracer.start_as_current_span("loop"):
        pass
    if exporter.export(memory.get_finished_spans()) == SpanExportResult.SUCCESS:
        ok += 1
    else:
        failed += 1
    time.sleep(0.05)
print(json.dumps({"ok": ok, "failed": failed}))
