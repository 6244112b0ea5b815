#!/usr/bin/env bash
# Runs the fuzz targets with cargo-fuzz (libFuzzer), each for a bounded time:
#   tests/fuzz/run.sh [-t SECONDS] [TARGET...]      (default: every target, 20 s each)
# Needs the nightly toolchain and cargo-fuzz; without them it says so and exits 0 (the same
# targets run as a corpus replay in plain `cargo test`: tests/it/fuzz_replay.rs). Exits non-zero
# when a target crashes; the input is left in tests/fuzz/artifacts/<target>/ (README.md: how it
# becomes a regression input). New inputs found go to a temporary corpus, so the committed seed
# corpus stays as it is.
# Environment: FUZZ_TARGET_DIR (the nightly build's target dir, default tests/fuzz/target),
# FUZZ_SANITIZER (address, the default, or none: faster, for a quick look).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
seconds=20
if [ "${1:-}" = "-t" ]; then
  seconds="${2:?-t needs seconds}"
  shift 2
fi

skip() {
  echo "fuzz: skipped: $1 (the corpus replay in cargo test still runs every target)"
  exit 0
}
command -v cargo >/dev/null || skip "no cargo"
cargo +nightly --version >/dev/null 2>&1 || skip "no nightly toolchain (rustup toolchain install nightly)"
cargo +nightly fuzz --version >/dev/null 2>&1 || skip "cargo-fuzz is not installed (cargo install cargo-fuzz --locked)"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd "$here/fuzz_targets" && ls -- *.rs | sed 's/\.rs$//')
fi
target_dir="${FUZZ_TARGET_DIR:-$here/target}"
sanitizer="${FUZZ_SANITIZER:-address}"
fuzz=(cargo +nightly fuzz)
common=(--fuzz-dir "$here" --target-dir "$target_dir" --sanitizer "$sanitizer" --debug-assertions)

echo "== fuzz: building the targets (nightly, sanitizer $sanitizer)"
start=$(date +%s)
mkdir -p "$target_dir"
if ! "${fuzz[@]}" build "${common[@]}" >"$target_dir/fuzz-build.log" 2>&1; then
  tail -40 "$target_dir/fuzz-build.log"
  echo "fuzz: build failed (log: $target_dir/fuzz-build.log)" >&2
  exit 1
fi
echo "   built in $(($(date +%s) - start)) s"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
crashed=()
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  args=(-max_total_time="$seconds" -timeout=10 -print_final_stats=1)
  [ -f "$here/dict/$t.dict" ] && args+=(-dict="$here/dict/$t.dict")
  log="$work/$t.log"
  if "${fuzz[@]}" run "${common[@]}" "$t" "$work/$t" "$here/corpus/$t" -- "${args[@]}" >"$log" 2>&1; then
    runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || true)
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1)
    echo "   $t: ok (${runs:-?} runs in ${seconds} s, $cov, $(ls "$work/$t" | wc -l) new inputs)"
  else
    crashed+=("$t")
    echo "   $t: CRASHED"
    grep -E -A2 'panicked at' "$log" | head -12 | sed 's/^/     /'
    grep -E 'Test unit written' "$log" | head -1 | sed 's/^/     /'
    tail -60 "$log" | sed 's/^/     | /'
  fi
done
echo "fuzz: ${#targets[@]} targets for ${seconds} s each, ${#crashed[@]} crashed${crashed:+: ${crashed[*]}} ($(($(date +%s) - start)) s in all)"
[ ${#crashed[@]} -eq 0 ]
