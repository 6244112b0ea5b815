#!/usr/bin/env bash
# Builds the otelgw image with podman from a prebuilt static binary
# (deploy/docker/Dockerfile.prebuilt), checks what `podman image inspect` says of it (user,
# entrypoint, command, exposed ports, health check, size), then runs the image's exact
# entrypoint, command and baked-in config from its exported root filesystem — chrooted, as its
# user, in a network namespace of its own (so the fixed ports 4317/4318/8888/9464/13133 are free) —
# and checks that it answers its health check and accepts OTLP. Podman here builds images but
# cannot run them (no cgroups for crun), hence the chroot.
# Usage: tests/deploy/image.sh <static otelgw binary>
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${1:?usage: image.sh <static otelgw binary>}"
command -v podman >/dev/null || { echo "image: podman is not installed (tests/setup-deps.sh installs it)" >&2; exit 1; }
work="$(mktemp -d)"
tag="localhost/otelgw-test:$$"
cleanup() {
  set +e
  [ -n "${pid:-}" ] && kill -9 "$pid" 2>/dev/null
  umount "$work/root/proc" 2>/dev/null
  [ -n "${cid:-}" ] && podman rm -f "$cid" >/dev/null 2>&1
  podman rmi -f "$tag" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "image: $*" >&2; exit 1; }

# a static binary runs in an empty image
if file "$bin" | grep -q "dynamically linked"; then fail "$bin is dynamically linked"; fi

mkdir -p "$work/ctx"
cp "$bin" "$work/ctx/otelgw"
cp pipelines/gateway.yaml "$work/ctx/config.yaml"
cp /etc/ssl/certs/ca-certificates.crt "$work/ctx/ca-certificates.crt"
# --format docker keeps HEALTHCHECK (the OCI format has no field for it)
podman build -q --format docker -f deploy/docker/Dockerfile.prebuilt -t "$tag" "$work/ctx" >/dev/null
podman image inspect "$tag" > "$work/inspect.json"
python3 - "$work/inspect.json" <<'PY'
import json, sys
img = json.load(open(sys.argv[1]))[0]
c = img["Config"]
problems = []
def want(what, got, expected):
    if got != expected:
        problems.append(f"{what}: {got!r}, expected {expected!r}")
want("user", c.get("User"), "65532:65532")
want("entrypoint", c.get("Entrypoint"), ["/otelgw"])
want("cmd", c.get("Cmd"), ["--config", "/etc/otelgw/config.yaml"])
want("exposed ports", sorted((c.get("ExposedPorts") or {}).keys()),
     ["13133/tcp", "4317/tcp", "4318/tcp", "8888/tcp", "9464/tcp"])
# podman reports a docker-format HEALTHCHECK beside Config, not in it
hc = c.get("Healthcheck") or img.get("Healthcheck") or {}
want("healthcheck", hc.get("Test"),
     ["CMD", "/otelgw", "healthcheck", "--config", "/etc/otelgw/config.yaml"])
size = img.get("Size", 0)
if not 0 < size < 64 * 1024 * 1024:
    problems.append(f"size {size} bytes: expected under 64 MiB")
if problems:
    print("image: " + "\n".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"image: user 65532, entrypoint /otelgw, 5 ports, healthcheck, {size / 1048576:.1f} MiB")
PY

cid="$(podman create "$tag")"
mkdir -p "$work/root"
podman export "$cid" | tar -x -C "$work/root"
cmd="$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))[0]["Config"]; print(" ".join(c["Entrypoint"]+c["Cmd"]))' "$work/inspect.json")"
hc="$(python3 -c 'import json,sys; i=json.load(open(sys.argv[1]))[0]; h=i["Config"].get("Healthcheck") or i["Healthcheck"]; print(" ".join(h["Test"][1:]))' "$work/inspect.json")"

# the container's view: its root, its user, its own network (loopback only) and /proc
unshare --net --mount --fork bash -s -- "$work/root" "$cmd" "$hc" <<'SH'
set -euo pipefail
root="$1"; cmd="$2"; hc="$3"
ip link set lo up
mkdir -p "$root/proc" && mount -t proc proc "$root/proc"
as_image() { chroot --userspec=65532:65532 "$root" "$@"; }
# chroot execs the entrypoint: $! is otelgw itself, as in a container (PID of the entrypoint)
# shellcheck disable=SC2086
chroot --userspec=65532:65532 "$root" $cmd > "$root/../otelgw.log" 2>&1 &
pid=$!
ok=""
for _ in $(seq 1 100); do
  # shellcheck disable=SC2086
  if as_image $hc >/dev/null 2>&1; then ok=1; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$ok" ] || { echo "image: the health check never passed; log:" >&2; cat "$root/../otelgw.log" >&2; exit 1; }
echo "image: the image's HEALTHCHECK passes"
body='{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"image-check","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}'
code="$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' --data "$body" http://127.0.0.1:4318/v1/traces)"
[ "$code" = 200 ] || { echo "image: OTLP/HTTP answered $code; log:" >&2; cat "$root/../otelgw.log" >&2; exit 1; }
echo "image: accepts OTLP/HTTP on 4318"
kill -TERM "$pid"
# the baked-in config drains for up to shutdown_timeout (25 s) to backends that do not exist here
for _ in $(seq 1 400); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then echo "image: did not stop on SIGTERM" >&2; kill -9 "$pid"; exit 1; fi
wait "$pid" || { echo "image: exited non-zero after SIGTERM; log:" >&2; cat "$root/../otelgw.log" >&2; exit 1; }
umount "$root/proc"
SH
echo "image: ok"
