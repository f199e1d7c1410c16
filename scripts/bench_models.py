#!/usr/bin/env python3
"""End-to-end latency: Kiln's compiled CPU path vs ONNX Runtime, interleaved.

For each model, round and thread count (1 and 2), runs `kiln bench --json`
(median of --iters runs after warm-up, inputs from the model's .npy files)
and then ONNX Runtime (graph optimisation ALL, intra-op threads = t, same
inputs, same iteration counts) in this process, so both see the same machine
noise. Prints, per model and thread count, the median over rounds of each
engine's median, and the ratio Kiln / ORT (below 1 means Kiln is faster).

Models: the repo's testdata/{mlp,mobilenet_v2,bert_tiny}, and every model of
../shared/models/models.json when that folder exists (skipped otherwise).
usage: python3 scripts/bench_models.py [--rounds 5] [--iters 50] [--warmup 10]
       [--threads 1,2] [--models mlp,bert_tiny] [--kiln-exe PATH] [--db TUNING_DB]
Needs numpy and onnxruntime (pip install numpy onnxruntime).
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "models")


def repo_models():
    """(name, onnx path, {input name: npy path}) for the repo's test models."""
    out = []
    for name in ("mlp", "mobilenet_v2", "bert_tiny"):
        d = os.path.join(ROOT, "testdata", name)
        path = os.path.join(d, f"{name}.onnx")
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        inputs = {i.name: os.path.join(d, f"{i.name}.npy") for i in sess.get_inputs()}
        out.append((name, path, inputs))
    return out


def shared_models():
    manifest = os.path.join(SHARED, "models.json")
    if not os.path.exists(manifest):
        return []
    out = []
    for name, m in json.load(open(manifest))["models"].items():
        path = os.path.join(SHARED, m["file"])
        if os.path.exists(path):
            inputs = {k: os.path.join(SHARED, v["npy"]) for k, v in m["inputs"].items()}
            out.append((f"shared/{name}", path, inputs))
    return out


def build_kiln():
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    return os.path.join(ROOT, "target", "release", "kiln")


DB_ARGS = ["--no-db"]


def kiln_median(exe, path, inputs, threads, iters, warmup):
    cmd = [exe, "-q", "bench", path, "--threads", str(threads), "--iters", str(iters),
           "--warmup", str(warmup), "--json"] + DB_ARGS
    for k, v in inputs.items():
        cmd += ["--input", f"{k}={v}"]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    r = json.loads(out)
    return r["median_ms"], r["compile_ms"]


def ort_session(path, threads):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ort_median(sess, feeds, iters, warmup):
    for _ in range(warmup):
        sess.run(None, feeds)
    ts = []
    for _ in range(iters):
        t = time.perf_counter()
        sess.run(None, feeds)
        ts.append(time.perf_counter() - t)
    return 1e3 * statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--models", default="")
    ap.add_argument("--kiln-exe", default="")
    ap.add_argument("--db", default="",
                    help="tuning database for kiln (default: none, the untuned compile)")
    a = ap.parse_args()
    global DB_ARGS
    DB_ARGS = ["--db", a.db] if a.db else ["--no-db"]
    threads = [int(t) for t in a.threads.split(",")]
    exe = a.kiln_exe or build_kiln()
    models = repo_models() + shared_models()
    if a.models:
        keep = set(a.models.split(","))
        models = [m for m in models if m[0] in keep]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"loadavg {os.getloadavg()[0]:.2f}; onnxruntime {ort.__version__}; "
          f"{a.rounds} rounds x {a.iters} iters (medians)")
    results = {}
    for r in range(a.rounds):
        for name, path, inputs in models:
            feeds = {k: np.load(v) for k, v in inputs.items()}
            for t in threads:
                k_ms, c_ms = kiln_median(exe, path, inputs, t, a.iters, a.warmup)
                o_ms = ort_median(ort_session(path, t), feeds, a.iters, a.warmup)
                e = results.setdefault((name, t), {"kiln": [], "ort": [], "compile": []})
                e["kiln"].append(k_ms)
                e["ort"].append(o_ms)
                e["compile"].append(c_ms)
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr, flush=True)
    # kiln/ort: ratio of the medians over rounds; paired: median of each
    # round's own ratio (Kiln and ONNX Runtime timed back to back, so a slow
    # phase of the machine that spans both cancels).
    print(f"{'model':22s} {'thr':>3s} {'kiln_ms':>9s} {'ort_ms':>9s} {'kiln/ort':>8s} {'paired':>7s} "
          f"{'compile_ms':>10s}")
    for (name, t), e in results.items():
        k, o = statistics.median(e["kiln"]), statistics.median(e["ort"])
        paired = statistics.median(a / b for a, b in zip(e["kiln"], e["ort"]))
        print(f"{name:22s} {t:3d} {k:9.3f} {o:9.3f} {k / o:8.2f} {paired:7.2f} "
              f"{statistics.median(e['compile']):10.1f}")


if __name__ == "__main__":
    main()
