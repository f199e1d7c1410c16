#!/usr/bin/env bash
# Seeds the fuzz corpus with the ONNX conformance models and the shipped test models.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/fetch-onnx-tests.sh >/dev/null
mkdir -p fuzz/corpus/onnx_load
for d in .conformance/node/*/; do
  cp "$d/model.onnx" "fuzz/corpus/onnx_load/$(basename "$d").onnx"
done
cp models/tests/fuzz_regressions/*.onnx fuzz/corpus/onnx_load/ 2>/dev/null || true
echo "corpus: $(ls fuzz/corpus/onnx_load | wc -l) files"
