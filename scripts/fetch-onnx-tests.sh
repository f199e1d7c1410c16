#!/usr/bin/env bash
# Fetches the official ONNX node tests (onnx 1.22.0 wheel: onnx/backend/test/data/node,
# 1,765 cases) into .conformance/node. Later onnx wheels no longer ship them.
# Needs python3 with pip, and unzip or python's zipfile. Idempotent.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.conformance"
if [ -f "$dest/node/.complete" ]; then
  echo "conformance data already in $dest/node ($(ls "$dest/node" | wc -l) cases)"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download onnx==1.22.0 --no-deps --only-binary=:all: -d "$tmp" -q
wheel="$(ls "$tmp"/onnx-1.22.0-*.whl | head -n1)"
rm -rf "$dest/node"
mkdir -p "$dest"
python3 - "$wheel" "$dest" <<'PY'
import sys, zipfile, os
wheel, dest = sys.argv[1], sys.argv[2]
prefix = "onnx/backend/test/data/node/"
with zipfile.ZipFile(wheel) as z:
    for n in z.namelist():
        if n.startswith(prefix) and not n.endswith("/"):
            out = os.path.join(dest, "node", n[len(prefix):])
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with z.open(n) as src, open(out, "wb") as dst:
                dst.write(src.read())
PY
touch "$dest/node/.complete"
echo "fetched $(ls "$dest/node" | wc -l) conformance cases into $dest/node"
