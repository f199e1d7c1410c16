//! 1-D and 3-D `Conv` and 1/2/3-D `ConvTranspose` compile to their dense
//! kernels (not the JIT, not the interpreter), with the bias, a residual and
//! an activation fused, and give the interpreter's result at 1, 2 and 3 threads.

use kiln::ir::{Attr, Attrs, Graph, Op, Tensor, TensorType};
use kiln_runtime::{compile, CompileOptions};
use std::collections::HashMap;

/// A test case: input shape, weight shape, attributes.
type Case = (Vec<usize>, Vec<usize>, Vec<(&'static str, Attr)>);

fn values(n: usize, k: f32) -> Vec<f32> {
    (0..n).map(|i| (i as f32 * k).sin() + 0.05).collect()
}

fn ints(v: &[i64]) -> Attr {
    Attr::Ints(v.to_vec())
}

/// `x -> op(x, w, b) [-> Add(·, r)] [-> Relu]`; the op's kind, input and weight shapes, attributes.
fn graph(
    kind: &str,
    xs: &[usize],
    ws: &[usize],
    attrs: &[(&str, Attr)],
    res: bool,
    relu: bool,
) -> Graph {
    let mut g = Graph::new("t");
    let x = g
        .add_input("x", TensorType::new(kiln::ir::DType::F32, xs.to_vec()))
        .unwrap();
    let wn: usize = ws.iter().product();
    let w = g
        .add_const(
            "w",
            Tensor::from_vec(ws.to_vec(), values(wn, 0.37)).unwrap(),
        )
        .unwrap();
    let groups = attrs
        .iter()
        .find(|(k, _)| *k == "group")
        .map_or(1, |(_, v)| match v {
            Attr::Int(g) => *g as usize,
            _ => 1,
        });
    let c_out = if kind == "Conv" {
        ws[0]
    } else {
        ws[1] * groups
    };
    let b = g
        .add_const(
            "b",
            Tensor::from_vec(vec![c_out], values(c_out, 1.3)).unwrap(),
        )
        .unwrap();
    let mut op = Op::new(kind);
    let mut a = Attrs::new();
    for (k, v) in attrs {
        a = a.with(k, v.clone());
    }
    op.attrs = a;
    let mut y = g.add_node("op", op, &[x, w, b], &["y"]).unwrap()[0];
    if res {
        let ty = g.value(y).ty.clone();
        let r = g.add_input("r", ty).unwrap();
        y = g.add_node("add", Op::new("Add"), &[y, r], &["z"]).unwrap()[0];
    }
    if relu {
        y = g.add_node("relu", Op::new("Relu"), &[y], &["out"]).unwrap()[0];
    }
    g.set_outputs(vec![y]);
    g
}

fn feeds(g: &Graph) -> HashMap<String, Tensor> {
    g.inputs()
        .iter()
        .map(|&i| {
            let v = g.value(i);
            let data = values(v.ty.numel(), 0.77);
            let t = Tensor::from_vec(v.ty.shape.clone(), data).unwrap();
            (v.name.clone(), t)
        })
        .collect()
}

/// Compiles `g` at 1..=3 threads: one kernel named from `prefix`, matching the interpreter.
fn check(g: &Graph, prefix: &str) {
    let f = feeds(g);
    let want = kiln::run(g, &f).unwrap();
    let w = want[0].to_f64_vec();
    let scale = w.iter().fold(1f64, |m, v| m.max(v.abs()));
    for threads in 1..=3 {
        let exe = compile(g, &CompileOptions::default().with_threads(threads)).unwrap();
        let r = exe.report();
        assert_eq!(r.kernels.len(), 1, "{:?}", r.kernels);
        assert!(r.kernels[0].kernel.starts_with(prefix), "{:?}", r.kernels);
        let got = exe.run(&f).unwrap()[0].to_f64_vec();
        assert_eq!(got.len(), w.len());
        for (i, (a, b)) in got.iter().zip(&w).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * scale,
                "{prefix} t{threads} [{i}]: {a} vs {b}"
            );
        }
    }
}

#[test]
fn conv1d_runs_on_the_conv_kernel() {
    let cases: Vec<Case> = vec![
        // Whisper-like: k3 p1, then stride 2; wide rows split into pixel blocks.
        (
            vec![1, 12, 700],
            vec![16, 12, 3],
            vec![("pads", ints(&[1, 1]))],
        ),
        (
            vec![2, 8, 301],
            vec![8, 8, 3],
            vec![("pads", ints(&[1, 1])), ("strides", ints(&[2]))],
        ),
        // Grouped, dilated, asymmetric pads; depthwise; pointwise.
        (
            vec![2, 6, 40],
            vec![9, 2, 4],
            vec![
                ("group", Attr::Int(3)),
                ("dilations", ints(&[2])),
                ("pads", ints(&[3, 1])),
            ],
        ),
        (
            vec![1, 5, 33],
            vec![5, 1, 5],
            vec![("group", Attr::Int(5)), ("pads", ints(&[2, 2]))],
        ),
        (vec![2, 7, 19], vec![4, 7, 1], vec![]),
        (
            vec![1, 3, 50],
            vec![4, 3, 5],
            vec![
                ("auto_pad", Attr::Str("SAME_UPPER".into())),
                ("strides", ints(&[3])),
            ],
        ),
    ];
    for (xs, ws, attrs) in &cases {
        for (res, relu) in [(false, false), (true, true)] {
            check(&graph("Conv", xs, ws, attrs, res, relu), "conv1d[");
        }
    }
}

#[test]
fn conv3d_runs_on_the_conv3d_kernel() {
    let cases: Vec<Case> = vec![
        (
            vec![1, 3, 5, 6, 7],
            vec![4, 3, 3, 3, 3],
            vec![("pads", ints(&[1, 1, 1, 1, 1, 1]))],
        ),
        (
            vec![2, 4, 6, 5, 9],
            vec![6, 2, 2, 3, 2],
            vec![
                ("group", Attr::Int(2)),
                ("strides", ints(&[2, 1, 2])),
                ("dilations", ints(&[1, 2, 1])),
                ("pads", ints(&[0, 2, 1, 1, 0, 0])),
            ],
        ),
        (
            vec![1, 2, 3, 20, 30],
            vec![3, 2, 1, 3, 3],
            vec![("pads", ints(&[0, 1, 1, 0, 1, 1]))],
        ),
    ];
    for (xs, ws, attrs) in &cases {
        for (res, relu) in [(false, false), (true, true)] {
            check(&graph("Conv", xs, ws, attrs, res, relu), "conv3d[");
        }
    }
}

#[test]
fn conv_transpose_runs_on_its_kernel() {
    let cases: Vec<Case> = vec![
        (
            vec![2, 4, 9],
            vec![4, 3, 3],
            vec![("strides", ints(&[2])), ("output_padding", ints(&[1]))],
        ),
        (
            vec![1, 8, 10, 12],
            vec![8, 4, 2, 2],
            vec![("strides", ints(&[2, 2]))],
        ),
        (
            vec![2, 6, 5, 7],
            vec![6, 2, 3, 3],
            vec![
                ("group", Attr::Int(3)),
                ("strides", ints(&[2, 1])),
                ("pads", ints(&[1, 0, 0, 1])),
                ("dilations", ints(&[1, 2])),
            ],
        ),
        (
            vec![1, 3, 4, 5],
            vec![3, 2, 3, 3],
            vec![("strides", ints(&[2, 2])), ("output_shape", ints(&[9, 12]))],
        ),
        (
            vec![1, 4, 3, 4, 4],
            vec![4, 2, 2, 2, 2],
            vec![
                ("strides", ints(&[2, 2, 2])),
                ("pads", ints(&[0, 1, 0, 0, 1, 0])),
            ],
        ),
    ];
    for (xs, ws, attrs) in &cases {
        for (res, relu) in [(false, false), (true, true)] {
            check(
                &graph("ConvTranspose", xs, ws, attrs, res, relu),
                "conv_transpose",
            );
        }
    }
}
