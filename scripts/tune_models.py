#!/usr/bin/env python3
"""Issue 11's tuning bar: `kiln tune` on every model, then the tuned and the
untuned compile benchmarked against each other, interleaved.

For each model: `kiln tune MODEL --budget B --threads T --db DB --json`
(a fresh database per run unless --db is given), then `rounds` alternating
runs of `kiln bench --no-db` and `kiln bench --db DB` (median of --iters
each); prints per model the tune's own check (untuned/tuned ms, kept), the
bench medians and ratio tuned/untuned (below 1: tuning helped), the compile
time with a warm database minus without, and trials/seconds spent.

usage: python3 scripts/tune_models.py [--budget 10m] [--threads 2] [--rounds 3]
       [--iters 30] [--models mlp,shared/gru_small] [--db PATH] [--kiln-exe PATH]
Models: as scripts/bench_models.py (testdata + ../shared/models when present).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_models  # noqa: E402  (model lists and kiln build)


def run_json(cmd):
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)


def input_args(inputs):
    args = []
    for k, v in inputs.items():
        args += ["--input", f"{k}={v}"]
    return args


def bench(exe, path, inputs, threads, iters, db_args):
    cmd = [exe, "-q", "bench", path, "--threads", str(threads), "--iters", str(iters),
           "--warmup", "5", "--json"] + input_args(inputs) + db_args
    r = run_json(cmd)
    return r["median_ms"], r["compile_ms"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", default="10m")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--models", default="")
    ap.add_argument("--db", default="")
    ap.add_argument("--kiln-exe", default="")
    a = ap.parse_args()
    exe = a.kiln_exe or bench_models.build_kiln()
    models = bench_models.repo_models() + bench_models.shared_models()
    if a.models:
        want = set(a.models.split(","))
        models = [m for m in models if m[0] in want or m[0].split("/")[-1] in want]
    cpu = subprocess.run(["lscpu"], stdout=subprocess.PIPE, text=True).stdout
    model_name = next((l.split(":", 1)[1].strip() for l in cpu.splitlines()
                       if l.startswith("Model name")), "?")
    print(f"# CPU: {model_name}; threads {a.threads}; budget {a.budget}")
    print("| model | trials | tune s | tune check untuned/tuned ms | kept | bench untuned ms | "
          "bench tuned ms | ratio | warm-db compile +ms |")
    print("|---|---:|---:|---|---|---:|---:|---:|---:|")
    ratios = []
    for name, path, inputs in models:
        db = a.db or os.path.join(tempfile.mkdtemp(prefix="kiln-tune-"), "tuning.db")
        t = run_json([exe, "-q", "tune", path, "--budget", a.budget, "--threads",
                      str(a.threads), "--db", db, "--json"] + input_args(inputs))
        un, tu, cu, ct = [], [], [], []
        for _ in range(a.rounds):
            m, c = bench(exe, path, inputs, a.threads, a.iters, ["--no-db"])
            un.append(m)
            cu.append(c)
            m, c = bench(exe, path, inputs, a.threads, a.iters, ["--db", db])
            tu.append(m)
            ct.append(c)
        u, v = statistics.median(un), statistics.median(tu)
        ratios.append(v / u)
        print(f"| {name} | {t['trials']} | {t['seconds']:.0f} | {t['untuned_ms']:.3f}/"
              f"{t['tuned_ms']:.3f} | {t['kept']} | {u:.3f} | {v:.3f} | {v / u:.3f} | "
              f"{statistics.median(ct) - statistics.median(cu):+.0f} |", flush=True)
    if ratios:
        g = statistics.geometric_mean(ratios)
        print(f"\ngeomean tuned/untuned {g:.3f}; worst {max(ratios):.3f}")


if __name__ == "__main__":
    main()
