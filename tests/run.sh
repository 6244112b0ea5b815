#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the real peers (idempotent), then runs every
# unit and integration test, and ends with one summary line. Fails loudly on the first broken step.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== installing test peers (python OTel SDK venvs, rotel)"
eval "$(tests/setup-deps.sh)"
echo "== release build (the integration tests run the binary users run)"
cargo build --locked --release --bin otelgw
export OTELGW_BIN="$PWD/target/release/otelgw"
echo "== static build (the binary the container image ships; tests/deploy/image.sh)"
OTELGW_STATIC_BIN="$(tests/deploy/build-static.sh)"
export OTELGW_STATIC_BIN
echo "== cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
cargo test --locked --lib --bins --tests -- --test-threads="${OTELGW_TEST_THREADS:-4}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')
echo "tests: ${passed} passed, ${failed} failed"
if [ "$rc" -ne 0 ]; then
  echo "cargo test failed (exit $rc)" >&2
  exit "$rc"
fi
if [ "$passed" -eq 0 ]; then
  echo "no test ran" >&2
  exit 1
fi
