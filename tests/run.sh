#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the real peers (idempotent), then runs every
# unit, integration and doc test. Fails loudly on the first broken step.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== installing test peers (python OTel SDK venvs, rotel)"
eval "$(tests/setup-deps.sh)"
echo "== cargo test"
cargo test --locked --all-features -- --test-threads="${OTELGW_TEST_THREADS:-4}"
