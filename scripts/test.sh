#!/usr/bin/env bash
# Runs every test: fetches the ONNX conformance data if missing, then the whole
# workspace's tests (unit, integration, golden, conformance, doc tests), and
# ends with one summary line over all test binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/fetch-onnx-tests.sh
# A one-shot build: incremental caches only cost disk (CI's disk is small).
export CARGO_INCREMENTAL=0
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked "$@" 2>&1 | tee "$log" || status=$?
awk '
  /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
  /^conformance\[[a-z]+\]: / { cp += $2; cf += $4 }
  END { printf "tests: %d passed, %d failed\n", p + cp, f + cf }
' "$log"
exit "$status"
