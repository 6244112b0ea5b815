"""Exports one span with the real OpenTelemetry Python SDK over TLS (optionally mutual TLS) with
a bearer token, and prints the exporter's own verdict as JSON: {"result": "SUCCESS"|"FAILURE"}.

usage: send_secure.py PROTOCOL ENDPOINT CA_FILE CLIENT_CERT CLIENT_KEY TOKEN SPAN_NAME
       (PROTOCOL: grpc | http/protobuf; CLIENT_CERT/CLIENT_KEY may be "-" for none)
"""
import json
import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

protocol, endpoint, ca, cert, key, token, name = sys.argv[1:8]
headers = {"authorization": f"Bearer {token}"}

if protocol == "grpc":
    import grpc
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    def read(p):
        return open(p, "rb").read() if p != "-" else None

    creds = grpc.ssl_channel_credentials(
        root_certificates=read(ca), private_key=read(key), certificate_chain=read(cert)
    )
    exporter = OTLPSpanExporter(endpoint=endpoint, credentials=creds, headers=headers, timeout=5)
elif protocol == "http/protobuf":
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    kwargs = {}
    if cert != "-":
        kwargs = {"client_certificate_file": cert, "client_key_file": key}
    exporter = OTLPSpanExporter(
        endpoint=endpoint + "/v1/traces", certificate_file=ca, headers=headers, timeout=5, **kwargs
    )
else:
    raise SystemExit(f"unknown protocol {protocol}")

memory = InMemorySpanExporter()
tp = TracerProvider(resource=Resource.create({"service.name": "py-secure"}))
tp.add_span_processor(SimpleSpanProcessor(memory))
with tp.get_tracer("otelgw.python.secure").start_as_current_span(name):
    pass
result = exporter.export(memory.get_finished_spans())
print(json.dumps({"result": result.name}))
