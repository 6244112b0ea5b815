"""Demo load for the compose stack: a pretend web shop instrumented with the OpenTelemetry
Python SDK, sending traces, metrics and logs over OTLP to otelgw, so every panel of the otelgw
dashboard has something to show.

Each simulated request is a SERVER span (`GET /cart`, `POST /checkout`, …) with CLIENT/INTERNAL
children, an INFO log record inside it (so logs carry the trace id), an ERROR log and an error
status on ~5% of them, and measurements taken inside the span (so histogram points carry
exemplars that link to the trace):
  demo.requests            counter   {http.route, http.response.status_code}
  demo.request.duration    histogram ms {http.route}
  demo.cart.items          up-down counter
  demo.user.logins         counter   {user.id}: one of DEMO_USERS ids, on purpose too many
                           distinct values, so otelgw's cardinality_limit has something to limit

Configuration (environment):
  OTEL_EXPORTER_OTLP_ENDPOINT   where otelgw listens (default http://otelgw:4317, gRPC)
  OTEL_SERVICE_NAME             default demo-shop
  DEMO_RATE                     simulated requests per second (default 5)
  DEMO_DURATION_SECONDS         stop after this long; 0 = run until stopped (default 0)
  DEMO_METRIC_INTERVAL_MS       metric export interval (default 5000)
  DEMO_USERS                    distinct user ids (default 5000)
On exit (duration reached, SIGTERM or SIGINT) it flushes everything and prints one JSON line
with what it sent.
"""
import json
import logging
import os
import random
import signal
import sys
import time

from opentelemetry import metrics, trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

ENDPOINT = os.environ.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otelgw:4317")
RATE = float(os.environ.get("DEMO_RATE", "5"))
DURATION = float(os.environ.get("DEMO_DURATION_SECONDS", "0"))
METRIC_INTERVAL_MS = int(os.environ.get("DEMO_METRIC_INTERVAL_MS", "5000"))
USERS = int(os.environ.get("DEMO_USERS", "5000"))

ROUTES = [("GET", "/cart"), ("GET", "/products/{id}"), ("POST", "/checkout"), ("GET", "/healthz")]

resource = Resource.create({
    "service.name": os.environ.get("OTEL_SERVICE_NAME", "demo-shop"),
    "service.namespace": "demo",
    "service.version": "0.1.0",
})
insecure = ENDPOINT.startswith("http://")

tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(insecure=insecure)))
tracer = tracer_provider.get_tracer("otelgw.demo", "0.1.0")

meter_provider = MeterProvider(
    resource=resource,
    metric_readers=[PeriodicExportingMetricReader(
        OTLPMetricExporter(insecure=insecure), export_interval_millis=METRIC_INTERVAL_MS)],
)
meter = meter_provider.get_meter("otelgw.demo", "0.1.0")
requests_total = meter.create_counter("demo.requests", unit="1", description="Requests served")
duration = meter.create_histogram("demo.request.duration", unit="ms", description="Request duration")
cart_items = meter.create_up_down_counter("demo.cart.items", unit="1", description="Items in carts")
logins = meter.create_counter("demo.user.logins", unit="1", description="Logins per user (high cardinality on purpose)")

logger_provider = LoggerProvider(resource=resource)
logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(insecure=insecure)))
set_logger_provider(logger_provider)
log = logging.getLogger("demo.shop")
log.setLevel(logging.INFO)
log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=logger_provider))

stop = False


def on_signal(_signum, _frame):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)

sent = {"requests": 0, "errors": 0}


def one_request(rng):
    method, route = rng.choice(ROUTES)
    failed = rng.random() < 0.05
    started = time.perf_counter()
    with tracer.start_as_current_span(
        f"{method} {route}",
        kind=SpanKind.SERVER,
        attributes={"http.request.method": method, "http.route": route,
                    "user.email": f"user{rng.randrange(USERS)}@example.com"},
    ) as span:
        with tracer.start_as_current_span("db.query", kind=SpanKind.CLIENT,
                                          attributes={"db.system": "postgresql"}):
            time.sleep(rng.uniform(0.001, 0.01))
        if route == "/checkout":
            with tracer.start_as_current_span("payment.charge", kind=SpanKind.CLIENT):
                time.sleep(rng.uniform(0.005, 0.02))
        status = 500 if failed else 200
        span.set_attribute("http.response.status_code", status)
        if failed:
            span.set_status(Status(StatusCode.ERROR, "upstream timeout"))
            log.error("%s %s failed: upstream timeout", method, route)
            sent["errors"] += 1
        else:
            log.info("%s %s served", method, route)
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        # measured inside the span: the histogram point keeps this trace as an exemplar
        duration.record(elapsed_ms, {"http.route": route})
        requests_total.add(1, {"http.route": route, "http.response.status_code": status})
        cart_items.add(rng.choice([1, -1, 2]))
        logins.add(1, {"user.id": f"u{rng.randrange(USERS)}"})
    sent["requests"] += 1


def main():
    rng = random.Random(int(os.environ.get("DEMO_SEED", "0")) or None)
    deadline = time.monotonic() + DURATION if DURATION > 0 else None
    interval = 1.0 / RATE if RATE > 0 else 1.0
    next_at = time.monotonic()
    while not stop and (deadline is None or time.monotonic() < deadline):
        one_request(rng)
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    ok = [
        tracer_provider.force_flush(10_000),
        meter_provider.force_flush(10_000),
        logger_provider.force_flush(10_000),
    ]
    print(json.dumps({"endpoint": ENDPOINT, "flushed": [bool(x) for x in ok], **sent}), flush=True)
    tracer_provider.shutdown()
    meter_provider.shutdown()
    logger_provider.shutdown()
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
