#!/usr/bin/env bash
# Builds the static otelgw the container image ships (deploy/docker/Dockerfile.prebuilt) and
# prints its path on stdout. musl when the toolchain can target it (rustup's musl std and
# Debian's musl-tools, both installed here on demand), else glibc with +crt-static.
# Its own target dir (target/static): it never waits on, or invalidates, the main build.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="$PWD/target/static"
musl=x86_64-unknown-linux-musl
if ! rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
  rustup target add "$musl" >&2 || true
fi
if ! command -v musl-gcc >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends musl-tools) >&2 || true
fi
if rustup target list --installed 2>/dev/null | grep -qx "$musl" && command -v musl-gcc >/dev/null 2>&1; then
  CC_x86_64_unknown_linux_musl=musl-gcc cargo build --locked --release --target "$musl" --bin otelgw >&2
  built="$CARGO_TARGET_DIR/$musl/release/otelgw"
else
  echo "build-static: no musl toolchain; building glibc with +crt-static" >&2
  RUSTFLAGS="-C target-feature=+crt-static" cargo build --locked --release \
    --target x86_64-unknown-linux-gnu --bin otelgw >&2
  built="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/otelgw"
fi
# the image ships it without the line tables the release profile keeps for profiling
strip -o "$CARGO_TARGET_DIR/otelgw" "$built"
echo "$CARGO_TARGET_DIR/otelgw"
