#!/usr/bin/env python3
"""The ONNX node suite through the CLI, as a user would run it.

For every case in .conformance/node (./scripts/fetch-onnx-tests.sh fetches
them), converts each input and expected output of test_data_set_0 from
TensorProto to .npy, runs `kiln run model.onnx --input NAME=FILE.npy ...
--expect NAME=FILE.npy ...` (compiled by default, --interpret for the
reference interpreter) and counts the cases whose command succeeds: the
model imports and compiles with the given inputs bound where it needs their
values, runs, and every output is within --tolerance x max |expected|.

usage: python3 scripts/conformance_cli.py [--interpret] [--jobs 2]
       [--tolerance 1e-3] [--filter SUBSTRING] [--failures FILE]
Needs numpy and onnx (pip install numpy onnx); builds kiln in release.
"""
import argparse
import concurrent.futures as cf
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NODE = os.path.join(ROOT, ".conformance", "node")


# ml_dtypes arrays (bfloat16, float8, float4, int4, int2): numpy.save
# writes them as void or `f1` types, which name no dtype; Kiln's .npy dialect
# (kiln_ir::npy) names them as ml_dtypes does, one element per byte or two.
ML_DTYPES = {"bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz",
             "float8_e8m0fnu", "float4_e2m1fn", "int4", "uint4", "int2", "uint2"}


def save_npy(path, a):
    name = a.dtype.name
    if name not in ML_DTYPES:
        np.save(path, a)
        return
    order = "|" if a.dtype.itemsize == 1 else "<"
    header = "{'descr': '%s%s', 'fortran_order': False, 'shape': %r, }" % (
        order, name, tuple(int(d) for d in a.shape))
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
        f.write(np.ascontiguousarray(a).tobytes())


def to_npy(pb, path):
    t = onnx.TensorProto()
    with open(pb, "rb") as f:
        t.ParseFromString(f.read())
    save_npy(path, numpy_helper.to_array(t))
    return t.name


def case_args(case, tmp):
    """The --input/--expect arguments of a case, or None if it has no tensor data."""
    model = onnx.load(os.path.join(NODE, case, "model.onnx"), load_external_data=False)
    data = os.path.join(NODE, case, "test_data_set_0")
    if not os.path.isdir(data):
        return None
    graph_in = [i.name for i in model.graph.input]
    graph_out = [o.name for o in model.graph.output]
    args = []
    for kind, names, flag in (("input", graph_in, "--input"), ("output", graph_out, "--expect")):
        k = 0
        while os.path.exists(os.path.join(data, f"{kind}_{k}.pb")):
            npy = os.path.join(tmp, f"{kind}_{k}.npy")
            try:
                name = to_npy(os.path.join(data, f"{kind}_{k}.pb"), npy) or names[k]
            except Exception:  # sequences, optionals, maps: not tensors
                return None
            args += [flag, f"{name}={npy}"]
            k += 1
    return args


def run_case(kiln, case, opts):
    with tempfile.TemporaryDirectory() as tmp:
        try:
            args = case_args(case, tmp)
        except Exception as e:  # noqa: BLE001 - a case the onnx package cannot read
            return case, "unsupported", str(e)
        if args is None:
            return case, "unsupported", "non-tensor data"
        cmd = [kiln, "-q", "run", os.path.join(NODE, case, "model.onnx"), *args,
               "--tolerance", str(opts.tolerance)]
        if opts.interpret:
            cmd.append("--interpret")
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            return case, "fail", "timeout"
        if p.returncode == 0:
            return case, "pass", ""
        last = (p.stderr.strip().splitlines() or [""])[-1]
        return case, "fail", last


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--interpret", action="store_true")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--tolerance", type=float, default=1e-3)
    ap.add_argument("--filter", default="")
    ap.add_argument("--failures", help="write failing cases and their last error line here")
    opts = ap.parse_args()
    if not os.path.exists(os.path.join(NODE, ".complete")):
        sys.exit("no conformance data: run ./scripts/fetch-onnx-tests.sh first")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    kiln = os.path.join(ROOT, "target", "release", "kiln")
    cases = sorted(c for c in os.listdir(NODE) if c.startswith("test_") and opts.filter in c)
    results = []
    with cf.ThreadPoolExecutor(opts.jobs) as ex:
        for r in ex.map(lambda c: run_case(kiln, c, opts), cases):
            results.append(r)
    count = {k: sum(1 for r in results if r[1] == k) for k in ("pass", "fail", "unsupported")}
    engine = "interpreter" if opts.interpret else "compiled"
    print(f"kiln run ({engine}): {count['pass']} passed, {count['fail']} failed, "
          f"{count['unsupported']} without tensor data, of {len(results)} cases")
    if opts.failures:
        with open(opts.failures, "w") as f:
            for case, status, msg in results:
                if status != "pass":
                    f.write(f"{case}\t{status}\t{msg}\n")


if __name__ == "__main__":
    main()
