#!/usr/bin/env python3
"""Lists every distinct Conv layer of the shared models (and the repo's test
models) for the per-layer benchmark `codegen/benches/conv_layers.rs`.

Writes codegen/benches/conv_layers.json: one entry per distinct geometry
(batch 1, NCHW; 1-D convs as height 1), with the models and node names that
use it. Needs onnx (pip install onnx).
usage: python3 scripts/conv_layers.py [MODELS_DIR]
"""
import json
import os
import sys

import onnx
from onnx import shape_inference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def models(shared):
    out = [(n, os.path.join(ROOT, "testdata", n, f"{n}.onnx")) for n in ("mobilenet_v2",)]
    d = os.path.join(shared, "models")
    if os.path.isdir(d):
        have = {n for n, _ in out}
        out += [(f[:-5], os.path.join(d, f)) for f in sorted(os.listdir(d))
                if f.endswith(".onnx") and f[:-5] not in have]
    return out


def shapes(m):
    g = shape_inference.infer_shapes(m).graph
    s = {}
    for v in list(g.input) + list(g.value_info) + list(g.output):
        dims = [d.dim_value for d in v.type.tensor_type.shape.dim]
        s[v.name] = dims
    for t in g.initializer:
        s[t.name] = list(t.dims)
    return s


def layer(node, s):
    a = {x.name: (list(x.ints) if x.ints else x.i) for x in node.attribute}
    x, w = s.get(node.input[0]), s.get(node.input[1])
    if not x or not w or len(x) not in (3, 4) or 0 in x:
        return None
    one_d = len(x) == 3
    if one_d:
        x = [x[0], x[1], 1, x[2]]
        w = [w[0], w[1], 1, w[2]]
    k = a.get("kernel_shape", w[2:])
    if one_d and len(k) == 1:
        k = [1] + k
    pads = a.get("pads", [0] * (2 if one_d else 4))
    if one_d:
        pads = [0, pads[0], 0, pads[1]]
    strides = a.get("strides", [1] * (1 if one_d else 2))
    dil = a.get("dilations", [1] * (1 if one_d else 2))
    if one_d:
        strides, dil = [1] + strides, [1] + dil
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", 0):
        return None
    return dict(c_in=x[1], h=x[2], w=x[3], c_out=w[0], kh=k[0], kw=k[1],
                stride_h=strides[0], stride_w=strides[1], pad_top=pads[0], pad_left=pads[1],
                pad_bottom=pads[2], pad_right=pads[3], dilation_h=dil[0], dilation_w=dil[1],
                groups=a.get("group", 1), one_d=one_d)


def main():
    shared = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(ROOT), "shared", "models")
    found = {}
    for name, path in models(shared):
        m = onnx.load(path)
        s = shapes(m)
        for n in m.graph.node:
            if n.op_type != "Conv":
                continue
            lay = layer(n, s)
            if lay is None:
                continue
            key = json.dumps(lay, sort_keys=True)
            found.setdefault(key, dict(lay, uses=[]))["uses"].append(f"{name}:{n.name}")
    out = os.path.join(ROOT, "codegen", "benches", "conv_layers.json")
    with open(out, "w") as f:
        f.write("[\n" + ",\n".join(json.dumps(v) for v in found.values()) + "\n]\n")
    print(f"{len(found)} distinct conv layers -> {out}")


if __name__ == "__main__":
    main()
