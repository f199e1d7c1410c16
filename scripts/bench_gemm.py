#!/usr/bin/env python3
"""f32 GEMM: Kiln (codegen/benches/gemm.rs) vs numpy/OpenBLAS, interleaved.

For each round, size and thread count, runs the Kiln bench binary for that one
point, then numpy's matmul in this process (threads capped with threadpoolctl),
so both see the same machine noise. Prints per-point medians over the rounds
and the ratio Kiln / OpenBLAS.

For OpenBLAS's AVX-512 kernels run it as
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 scripts/bench_gemm.py
Options: --rounds 3 --sizes 256,512,1024,2048 --threads 1,2 --min-time 0.5
--kiln-exe PATH (skip the cargo build).
Needs numpy and threadpoolctl (pip install numpy threadpoolctl).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_kiln_bench():
    """Builds the bench binary (release) and returns its path."""
    out = subprocess.run(
        ["cargo", "bench", "-p", "kiln-codegen", "--bench", "gemm", "--no-run",
         "--message-format=json"],
        cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True)
    for line in out.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") \
                and msg["target"]["name"] == "gemm" and "bench" in msg["target"]["kind"]:
            return msg["executable"]
    sys.exit("bench_gemm.py: no gemm bench executable in cargo's output")


def kiln_point(exe, n, threads, min_time):
    out = subprocess.run(
        [exe, "--sizes", str(n), "--threads", str(threads), "--min-time", str(min_time)],
        check=True, stdout=subprocess.PIPE, text=True).stdout
    fields = dict(kv.split("=", 1) for kv in out.split()[1:])
    return float(fields["gflops"]), fields["isa"]


def numpy_point(n, threads, min_time):
    rng = np.random.default_rng(n)
    a = rng.uniform(0.5, 1.5, (n, n)).astype(np.float32)
    b = rng.uniform(0.5, 1.5, (n, n)).astype(np.float32)
    c = np.empty((n, n), np.float32)
    with threadpool_limits(limits=threads, user_api="blas"):
        np.matmul(a, b, out=c)  # warm-up
        times = []
        start = time.perf_counter()
        while len(times) < 3 or (time.perf_counter() - start < min_time and len(times) < 1000):
            t = time.perf_counter()
            np.matmul(a, b, out=c)
            times.append(time.perf_counter() - t)
    return 2.0 * n ** 3 / statistics.median(times) / 1e9


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sizes", default="256,512,1024,2048")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--min-time", type=float, default=0.5)
    p.add_argument("--kiln-exe", help="a built bench binary (default: build it with cargo)")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    thread_counts = [int(t) for t in args.threads.split(",")]

    exe = args.kiln_exe or build_kiln_bench()
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    for info in blas:
        print(f"# numpy {np.__version__}: {info.get('internal_api')} {info.get('version')} "
              f"core={info.get('architecture')} threads={info.get('num_threads')}")
    print(f"# OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')} "
          f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '(unset)')}")

    kiln = {}
    blas_gf = {}
    isa = "?"
    for r in range(args.rounds):
        for n in sizes:
            for t in thread_counts:
                gf, isa = kiln_point(exe, n, t, args.min_time)
                kiln.setdefault((n, t), []).append(gf)
                blas_gf.setdefault((n, t), []).append(numpy_point(n, t, args.min_time))
                print(f"# round {r + 1} n={n} threads={t}: kiln {gf:.1f} "
                      f"openblas {blas_gf[(n, t)][-1]:.1f} GFLOP/s", flush=True)

    print(f"\nf32 GEMM n^3, GFLOP/s medians over {args.rounds} rounds (kiln isa: {isa})\n")
    print("| n | threads | Kiln | OpenBLAS | Kiln / OpenBLAS |")
    print("|---:|---:|---:|---:|---:|")
    for n in sizes:
        for t in thread_counts:
            k = statistics.median(kiln[(n, t)])
            o = statistics.median(blas_gf[(n, t)])
            print(f"| {n} | {t} | {k:.1f} | {o:.1f} | {k / o:.2f} |")


if __name__ == "__main__":
    main()
