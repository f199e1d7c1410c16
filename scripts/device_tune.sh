#!/usr/bin/env bash
# Prepares `.dev/` (git-ignored) for tuning on the device host's CPU: the
# stripped release `kiln` (gzipped), the shared models not already in
# testdata/ with their inputs, and `.dev/run.sh`, which the device runs from
# the repo root: `T=16 B=35s [M=".dev/m/mlp/ ..."] [TAG=-x] bash .dev/run.sh`
# (carry `.dev`); it tunes each model and writes $OUT/records$TAG.jsonl and
# $OUT/lscpu.txt. The carried tree must stay under 64 MiB: mobilenet_v2,
# mlp and bert_tiny come from testdata/, the big CNNs are left out.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${SHARED:-../shared/models}
cargo build --release -p kiln
grep -qx "/.dev/" .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo /.dev/ >> .git/info/exclude; }
rm -rf .dev && mkdir -p .dev/m
strip -o .dev/kiln target/release/kiln && gzip .dev/kiln
for m in distilbert_tiny gru_small t5_encoder_tiny unet_small whisper_encoder_tiny; do
  mkdir -p .dev/m/$m && cp "$shared/models/$m.onnx" .dev/m/$m/
  for f in "$shared"/data/$m/*.npy; do
    case $(basename "$f") in output*|last_hidden*|pooler*) ;; *) cp "$f" .dev/m/$m/ ;; esac
  done
done
for m in mlp bert_tiny mobilenet_v2; do mkdir -p .dev/m/$m; done
cat > .dev/run.sh <<'RUN'
#!/usr/bin/env bash
set -u
gunzip -c .dev/kiln.gz > /tmp/kiln && chmod +x /tmp/kiln
lscpu > "$OUT/lscpu.txt"
T=${T:-16}; B=${B:-35s}
for d in ${M:-.dev/m/*/}; do
  m=$(basename "$d")
  src=$d$m.onnx; [ -f testdata/$m/$m.onnx ] && src=testdata/$m/$m.onnx
  args=()
  for f in "$d"*.npy testdata/$m/*.npy; do
    [ -f "$f" ] || continue
    n=$(basename "$f" .npy)
    case $n in output|last_hidden_state|pooler_output) continue;; esac
    args+=(--input "$n=$f")
  done
  echo "== $m"
  timeout 120 /tmp/kiln -q tune "$src" --threads "$T" --in-process --budget "$B" --db /tmp/tune.db "${args[@]}" 2>&1 | tail -2
done
/tmp/kiln db --db /tmp/tune.db export > "$OUT/records${TAG:-}.jsonl"
/tmp/kiln db --db /tmp/tune.db stats | tail -15
RUN
chmod +x .dev/run.sh
du -sh .dev
