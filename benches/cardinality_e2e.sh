#!/usr/bin/env bash
# End-to-end cost of the cardinality limiter: the same metrics workload against otelgw without
# and with `cardinality_limit` (benches/configs/otelgw-bench{,-cardinality}.yaml), gateway
# pinned to core 0, load generator and null sink on core 1, alternating runs. Prints items per
# CPU-second for both and the ratio. Usage:
#   benches/cardinality_e2e.sh [items=1000] [seconds=10] [rounds=2]
set -euo pipefail
cd "$(dirname "$0")/.."
items="${1:-1000}"; secs="${2:-10}"; rounds="${3:-2}"
cargo build --release --quiet --features loadgen --bin otelgw --bin otelgw-loadgen
gw=target/release/otelgw; lg=target/release/otelgw-loadgen
tmp="$(mktemp -d)"; trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

run() { # label config
  local sink g h a gpid lpid
  sink=$(port); g=$(port); h=$(port); a=$(port)
  SINK=127.0.0.1:$sink GW_GRPC_PORT=$g GW_HTTP_PORT=$h GW_ADMIN_PORT=$a taskset -c 0 "$gw" --config "$2" 2>"$tmp/$1.log" &
  gpid=$!; wait_port "$g"; sleep 1
  "$lg" run --target "grpc://127.0.0.1:$g" --signal metrics --items "$items" --duration "$secs" \
    --connections 4 --pid "$gpid" --sink "127.0.0.1:$sink" --label "$1" > "$tmp/$1.out" &
  lpid=$!; taskset -cp 1 "$lpid" >/dev/null; wait "$lpid"
  grep '^RESULT ' "$tmp/$1.out" | sed 's/^RESULT //' >> "$tmp/results"
  kill -TERM "$gpid"; wait "$gpid" || true
}
for _ in $(seq "$rounds"); do
  run off benches/configs/otelgw-bench.yaml
  run on benches/configs/otelgw-bench-cardinality.yaml
done
cat "$tmp/results" | python3 -c "import json,sys; [print(r[\"label\"], round(r[\"items_per_cpu_s\"])) for r in map(json.loads, sys.stdin)]"
python3 - "$tmp/results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
agg = {}
for r in rows:
    a = agg.setdefault(r["label"], {"items": 0, "cpu": 0.0, "secs": 0.0, "ok": True})
    a["items"] += r["items"]; a["cpu"] += r["cpu_s"]; a["secs"] += r["items"] / max(r["items_per_s"], 1)
    a["ok"] &= r.get("received") == r["items"]
print(f"| limiter | items/s | items/CPU-s | sent=received |")
print("|---|---|---|---|")
for l in ("off", "on"):
    a = agg[l]
    print(f"| {l} | {a['items']/a['secs']:.0f} | {a['items']/a['cpu']:.0f} | {a['ok']} |")
on, off = agg["on"], agg["off"]
print(f"\nwith/without limiter, items per CPU-second: {(on['items']/on['cpu'])/(off['items']/off['cpu']):.2f}")
PY
