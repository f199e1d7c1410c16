//! 3×3 stride-1 `Conv`s that the default `ConvVariant::Auto` runs on
//! Winograd F(4×4, 3×3) compile to one conv kernel with the bias, a residual
//! and an activation fused, and match the interpreter at 1, 2 and 3 threads
//! (tolerance 1e-4 of the largest output: Winograd's f32 error is about 1e-5).
//! That these descriptors run on Winograd by default is asserted in
//! `codegen/tests/winograd.rs` (`auto_takes_winograd_where_measured`).

use kiln::ir::{Attr, Attrs, Graph, Op, Tensor, TensorType};
use kiln_runtime::{compile, CompileOptions};
use std::collections::HashMap;

fn values(n: usize, k: f32) -> Vec<f32> {
    (0..n).map(|i| (i as f32 * k).sin() + 0.05).collect()
}

/// `x -> Conv(x, w, b) [-> Add(·, r)] [-> Relu]`, 3×3 stride 1 with `pads`.
fn graph(xs: [usize; 4], c_out: usize, pads: [i64; 4], res: bool, relu: bool) -> Graph {
    let mut g = Graph::new("t");
    let x = g
        .add_input("x", TensorType::new(kiln::ir::DType::F32, xs.to_vec()))
        .unwrap();
    let ws = vec![c_out, xs[1], 3, 3];
    let wn: usize = ws.iter().product();
    let scale = 1.0 / (xs[1] as f32 * 9.0).sqrt();
    let wv = values(wn, 0.37).iter().map(|v| v * scale).collect();
    let w = g.add_const("w", Tensor::from_vec(ws, wv).unwrap()).unwrap();
    let bv = values(c_out, 1.3);
    let b = g
        .add_const("b", Tensor::from_vec(vec![c_out], bv).unwrap())
        .unwrap();
    let mut op = Op::new("Conv");
    op.attrs = Attrs::new().with("pads", Attr::Ints(pads.to_vec()));
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
            (
                v.name.clone(),
                Tensor::from_vec(v.ty.shape.clone(), data).unwrap(),
            )
        })
        .collect()
}

#[test]
fn winograd_convolutions_match_the_interpreter() {
    let cases = [
        ([2, 64, 13, 11], 40, [1, 0, 2, 1]),
        ([1, 128, 7, 7], 32, [1, 1, 1, 1]),
        ([1, 80, 10, 9], 17, [0, 2, 0, 1]),
    ];
    for (xs, c_out, pads) in cases {
        for (res, relu) in [(false, false), (true, true), (false, true)] {
            let g = graph(xs, c_out, pads, res, relu);
            let f = feeds(&g);
            let want = kiln::run(&g, &f).unwrap()[0].to_f64_vec();
            let scale = want.iter().fold(1f64, |m, v| m.max(v.abs()));
            for threads in 1..=3 {
                let exe = compile(&g, &CompileOptions::default().with_threads(threads)).unwrap();
                let r = exe.report();
                assert_eq!(r.kernels.len(), 1, "{:?}", r.kernels);
                assert!(
                    r.kernels[0].kernel.starts_with("conv2d[3x3"),
                    "{:?}",
                    r.kernels
                );
                let got = exe.run(&f).unwrap()[0].to_f64_vec();
                assert_eq!(got.len(), want.len());
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-4 * scale,
                        "{xs:?} res {res} relu {relu} t{threads} [{i}]: {a} vs {b}"
                    );
                }
            }
        }
    }
}
