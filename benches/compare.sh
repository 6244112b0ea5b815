#!/usr/bin/env bash
# Side-by-side load bench: the same pre-encoded workload against otelgw and rotel, each pinned
# to core 0 with taskset, the load generator (with its null sink) on core 1. Prints a table and
# the otelgw/rotel ratios. Usage:
#   benches/compare.sh [signal=traces] [items=512] [seconds=10] [rate=0 (saturate)] [connections=4]
# OVERLAY=<yaml> merges a second config over benches/configs/otelgw-bench.yaml (e.g.
# benches/configs/otelgw-bench-issue-pipeline.yaml: memory_limiter and batch in every pipeline).
# TRANSPORT=http sends OTLP/HTTP protobuf instead of OTLP/gRPC (the exporters stay gRPC);
# COMPRESSION=gzip|zstd compresses the requests once up front (exports stay uncompressed); over
# gRPC the loader then sends pre-built compressed frames on a plain HTTP/2 connection.
# SINKLESS=1 is for overlays whose pipeline ends in a pulled exporter (e.g.
# benches/configs/otelgw-bench-cardinality-prometheus.yaml): no null sink; sent = received is
# checked against otelgw's `otelcol_receiver_accepted_*` and its Prometheus endpoint (GW_PROM_PORT)
# is scraped once at the end; rotel runs with its `blackhole` exporter (it has no Prometheus one).
set -euo pipefail
cd "$(dirname "$0")/.."
signal="${1:-traces}"; items="${2:-512}"; secs="${3:-10}"; rate="${4:-0}"; conns="${5:-4}"
eval "$(tests/setup-deps.sh)"
cargo build --release --quiet --features loadgen --bin otelgw --bin otelgw-loadgen
gw=target/release/otelgw; lg=target/release/otelgw-loadgen
tmp="$(mktemp -d)"; trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

results=()
transport="${TRANSPORT:-grpc}"
run_one() { # label pid grpc_port sink_port http_port
  local target="grpc://127.0.0.1:$3"
  [ "$transport" = http ] && target="http://127.0.0.1:$5"
  local sinkarg=(--sink "127.0.0.1:$4"); [ -n "${SINKLESS:-}" ] && sinkarg=()
  "$lg" run --target "$target" --compression "${COMPRESSION:-none}" --signal "$signal" --items "$items" --duration "$secs" \
    --rate "$rate" --connections "$conns" --pid "$2" "${sinkarg[@]}" --label "$1" \
    > "$tmp/$1.out" &
  local lpid=$!; taskset -cp 1 "$lpid" >/dev/null; wait "$lpid"
  cat "$tmp/$1.out" >&2
  results+=("$(grep '^RESULT ' "$tmp/$1.out" | sed 's/^RESULT //')")
}

# otelgw
sink=$(port); g=$(port); h=$(port); a=$(port); pp=$(port)
SINK=127.0.0.1:$sink GW_GRPC_PORT=$g GW_HTTP_PORT=$h GW_ADMIN_PORT=$a GW_PROM_PORT=$pp taskset -c 0 "$gw" --config benches/configs/otelgw-bench.yaml ${OVERLAY:+--config "$OVERLAY"} 2>"$tmp/otelgw.log" &
gpid=$!; wait_port "$g"; sleep 1
idle_otelgw=$(awk '/VmRSS/{print $2/1024}' /proc/$gpid/status)
run_one otelgw "$gpid" "$g" "$sink" "$h"
if [ -n "${SINKLESS:-}" ]; then
  # what the gateway accepted stands in for what a sink received; the scrape shows the series
  results[-1]=$(python3 - "${results[-1]}" "$a" "$pp" <<'PY'
import json, re, sys, urllib.request
r = json.loads(sys.argv[1])
admin = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[2]}/metrics", timeout=10).read().decode()
noun = {"traces": "spans", "metrics": "metric_points", "logs": "log_records"}[r["signal"]]
pat = re.compile(rf"^otelcol_receiver_accepted_{noun}(_total)?(\{{[^}}]*\}})? (\S+)$")
r["received"] = int(sum(float(m.group(3)) for m in map(pat.match, admin.splitlines()) if m))
scrape = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[3]}/metrics", timeout=10).read().decode()
series = sum(1 for l in scrape.splitlines() if l and not l.startswith("#"))
print(f"otelgw: accepted {r['received']}, Prometheus endpoint serves {series} samples", file=sys.stderr)
print(json.dumps(r))
PY
)
fi
kill -TERM "$gpid"; wait "$gpid" || true

# rotel (its OTLP exporter to the same kind of null sink)
sink=$(port); g=$(port); h=$(port)
rotel_exporter=(--exporter otlp --otlp-exporter-endpoint "http://127.0.0.1:$sink" --otlp-exporter-protocol grpc
  --otlp-exporter-compression none)
[ -n "${SINKLESS:-}" ] && rotel_exporter=(--exporter blackhole)
taskset -c 0 "$OTELGW_TEST_ROTEL" start --otlp-grpc-endpoint "127.0.0.1:$g" --otlp-http-endpoint "127.0.0.1:$h" \
  "${rotel_exporter[@]}" 2>"$tmp/rotel.log" &
rpid=$!; wait_port "$g"; sleep 1
idle_rotel=$(awk '/VmRSS/{print $2/1024}' /proc/$rpid/status)
run_one rotel "$rpid" "$g" "$sink" "$h"
kill -TERM "$rpid"; wait "$rpid" || true

ceil=$(taskset -c 0 "$lg" ceiling --signal "$signal" --items "$items" --duration 5 | grep '^RESULT ' | sed 's/^RESULT //')

python3 - "$idle_otelgw" "$idle_rotel" "${results[@]}" "$ceil" <<'PY'
import json, sys
idle = {"otelgw": float(sys.argv[1]), "rotel": float(sys.argv[2])}
rows = [json.loads(a) for a in sys.argv[3:]]
by = {r["label"]: r for r in rows}
print(f"\n| {'':14} | items/s | items/CPU-s | CPU s | RSS peak MiB | RSS idle MiB | p50 ms | p99 ms | errors | sent=received |")
print("|" + "---|" * 10)
for r in rows:
    l = r["label"]
    if l == "codec-ceiling":
        print(f"| {l:14} | {r['items_per_s']:.0f} | {r['items_per_cpu_s']:.0f} | | | | | | | |")
        continue
    ok = r.get("received") == r["items"] if r.get("received") is not None else "n/a"
    print(f"| {l:14} | {r['items_per_s']:.0f} | {r['items_per_cpu_s']:.0f} | {r['cpu_s']:.2f} | {r['rss_peak_mib']:.1f} | {idle.get(l, 0):.1f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {sum(r['errors'].values())} | {ok} |")
o, ro, c = by.get("otelgw"), by.get("rotel"), by.get("codec-ceiling")
if o and ro and ro["items_per_cpu_s"] > 0:
    print(f"\notelgw/rotel items per CPU-second: {o['items_per_cpu_s'] / ro['items_per_cpu_s']:.2f}x;"
          f" items/s: {o['items_per_s'] / max(ro['items_per_s'], 1):.2f}x;"
          f" RSS peak: {o['rss_peak_mib'] / max(ro['rss_peak_mib'], 0.1):.2f}x")
if o and c:
    print(f"otelgw items per CPU-second / codec ceiling: {o['items_per_cpu_s'] / c['items_per_cpu_s']:.0%}")
PY
