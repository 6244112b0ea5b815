#!/usr/bin/env bash
# Prometheus' own scrape of the 100k-sample bench page (benches/prometheus_native/page.rs) next
# to otelgw's prometheus receiver scraping the same page, in one run: both scrape a static copy
# every 5 s; Prometheus also scrapes otelgw's `scrape_duration_seconds` (a `filter` keeps only
# that series); after 60 s it prints both averages and their ratio.
#   benches/prometheus_scrape.sh
# scrape_duration_seconds is wall time: Prometheus' covers fetch, parse and the TSDB append;
# otelgw's covers fetch, parse, relabel/shape and the OTLP translation (not the pipeline).
set -euo pipefail
cd "$(dirname "$0")/.."
prom="${OTELGW_TEST_PROMETHEUS:-$(command -v prometheus)}"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
cargo bench --bench prometheus_native_allocs -- --write-page "$work/metrics" >/dev/null 2>&1
cargo build --release --bin otelgw >/dev/null 2>&1
mkdir -p "$work/page" && mv "$work/metrics" "$work/page/metrics"
python3 -m http.server --bind 127.0.0.1 19101 --directory "$work/page" >/dev/null 2>&1 &
pids+=($!)
cat > "$work/otelgw.yaml" <<YAML
receivers:
  prometheus:
    config:
      scrape_configs:
        - job_name: via_otelgw
          scrape_interval: 5s
          scrape_timeout: 5s
          static_configs: [{targets: ['127.0.0.1:19101']}]
processors:
  filter:
    metrics:
      metric: ['name != "scrape_duration_seconds"']
exporters:
  prometheus: {endpoint: 127.0.0.1:19189}
service:
  telemetry: {metrics: {level: none}}
  pipelines:
    metrics: {receivers: [prometheus], processors: [filter], exporters: [prometheus]}
YAML
./target/release/otelgw --config "$work/otelgw.yaml" >"$work/otelgw.log" 2>&1 &
pids+=($!)
cat > "$work/prometheus.yml" <<YAML
scrape_configs:
  - job_name: direct
    scrape_interval: 5s
    scrape_timeout: 5s
    static_configs: [{targets: ['127.0.0.1:19101']}]
  - job_name: otelgw
    scrape_interval: 5s
    honor_labels: true
    static_configs: [{targets: ['127.0.0.1:19189']}]
YAML
"$prom" --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
  --web.listen-address=127.0.0.1:19190 >"$work/prometheus.log" 2>&1 &
pids+=($!)
sleep 65
q() { curl -s --get --data-urlencode "query=$1" http://127.0.0.1:19190/api/v1/query \
  | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "nan")'; }
direct="$(q 'avg_over_time(scrape_duration_seconds{job="direct"}[60s])')"
via="$(q 'avg_over_time(scrape_duration_seconds{job="via_otelgw"}[60s])')"
samples="$(q 'scrape_samples_scraped{job="direct"}')"
echo "page: $samples samples"
echo "prometheus scrape_duration_seconds (avg 60s): $direct"
echo "otelgw     scrape_duration_seconds (avg 60s): $via"
python3 -c "print(f'otelgw / prometheus: {float(\"$via\")/float(\"$direct\"):.2f}')"
