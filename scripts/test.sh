#!/usr/bin/env bash
# Runs every test: fetches the ONNX conformance data if missing, then the whole
# workspace's tests (unit, integration, golden, conformance, doc tests).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/fetch-onnx-tests.sh
cargo test --workspace --locked "$@"
