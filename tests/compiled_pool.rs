//! Pooling nodes (MaxPool, AveragePool, LpPool, GlobalMaxPool, GlobalLpPool)
//! compile to the pool kernel, not the interpreter fallback, and give the
//! interpreter's result at 1, 2 and 3 threads over 1-D, 2-D and 3-D inputs,
//! pads, strides, dilations, ceil mode, auto_pad and count_include_pad.

use kiln::ir::{Graph, Tensor};
use kiln_runtime::{compile, CompileOptions};
use std::collections::HashMap;

/// One pooling node: op, attributes (text form, without braces), input shape.
struct Case {
    op: &'static str,
    attrs: String,
    input: Vec<usize>,
}

fn c(op: &'static str, attrs: &str, input: &[usize]) -> Case {
    Case {
        op,
        attrs: attrs.to_string(),
        input: input.to_vec(),
    }
}

fn list(v: &[usize]) -> String {
    v.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
}

/// The node's output shape, worked out here from the ONNX rules (a second
/// opinion on the importer's inference, which `parse` checks it against).
fn out_shape(case: &Case, k: &[usize], s: &[usize], d: &[usize], pads: &[usize]) -> Vec<usize> {
    let n = case.input.len() - 2;
    let mut out = case.input[..2].to_vec();
    for a in 0..n {
        let x = case.input[a + 2];
        let span = (k[a] - 1) * d[a] + 1;
        let o = if case.op.starts_with("Global") {
            1
        } else if case.attrs.contains("SAME") {
            x.div_ceil(s[a])
        } else {
            let padded = x + pads[a] + pads[a + n];
            let mut o = (padded - span) / s[a] + 1;
            if case.attrs.contains("ceil_mode=1") {
                o = (padded - span).div_ceil(s[a]) + 1;
                if (o - 1) * s[a] >= x + pads[a] {
                    o -= 1;
                }
            }
            o
        };
        out.push(o);
    }
    out
}

/// Reads an int list attribute out of the case's text (default `dflt`).
fn ints(case: &Case, name: &str, dflt: Vec<usize>) -> Vec<usize> {
    let Some(at) = case.attrs.find(&format!("{name}=[")) else {
        return dflt;
    };
    let rest = &case.attrs[at + name.len() + 2..];
    let body = &rest[..rest.find(']').unwrap()];
    body.split(',').map(|v| v.trim().parse().unwrap()).collect()
}

fn graph(case: &Case) -> Graph {
    let n = case.input.len() - 2;
    let k = ints(case, "kernel_shape", case.input[2..].to_vec());
    let s = ints(case, "strides", vec![1; n]);
    let d = ints(case, "dilations", vec![1; n]);
    let pads = ints(case, "pads", vec![0; 2 * n]);
    let out = out_shape(case, &k, &s, &d, &pads);
    let attrs = if case.attrs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", case.attrs)
    };
    let src = format!(
        "graph pool {{
  input x: f32[{}]
  node p = {}{attrs}(x) -> y: f32[{}]
  output y
}}",
        list(&case.input),
        case.op,
        list(&out),
    );
    kiln::ir::text::parse(&src).unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn cases() -> Vec<Case> {
    vec![
        c("MaxPool", "kernel_shape=[3, 3], strides=[2, 2]", &[1, 4, 31, 31]),
        c("MaxPool", "kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1", &[2, 3, 28, 28]),
        c("MaxPool", "kernel_shape=[3, 3], pads=[1, 1, 1, 1]", &[1, 5, 14, 14]),
        c("MaxPool", "kernel_shape=[2, 3], strides=[1, 3], pads=[0, 2, 1, 0], dilations=[2, 1]", &[1, 3, 9, 40]),
        c("MaxPool", "kernel_shape=[3, 3], strides=[2, 2], auto_pad=\"SAME_UPPER\"", &[1, 2, 15, 18]),
        c("MaxPool", "kernel_shape=[4], strides=[3], pads=[1, 2]", &[2, 3, 50]),
        c("MaxPool", "kernel_shape=[2, 2, 3], strides=[1, 2, 2], pads=[0, 1, 1, 1, 0, 1]", &[1, 2, 5, 7, 20]),
        c("AveragePool", "kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 0, 2]", &[1, 4, 17, 33]),
        c("AveragePool", "kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1", &[2, 2, 12, 19]),
        c("AveragePool", "kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1", &[1, 3, 15, 15]),
        c("AveragePool", "kernel_shape=[3, 3], strides=[1, 1], auto_pad=\"SAME_LOWER\", count_include_pad=1", &[1, 2, 8, 21]),
        c("AveragePool", "kernel_shape=[5], strides=[2], pads=[2, 2]", &[1, 6, 67]),
        c("AveragePool", "kernel_shape=[2, 3, 3], strides=[2, 1, 2], pads=[1, 1, 1, 0, 1, 1], count_include_pad=1", &[1, 2, 6, 8, 19]),
        c("LpPool", "kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], p=2", &[1, 3, 13, 20]),
        c("LpPool", "kernel_shape=[2, 2], p=3", &[2, 2, 9, 9]),
        c("GlobalMaxPool", "", &[2, 5, 9, 23]),
        c("GlobalLpPool", "p=2", &[1, 4, 6, 7]),
        c("GlobalMaxPool", "", &[1, 3, 4, 5, 6]),
    ]
}

fn feeds(g: &Graph) -> HashMap<String, Tensor> {
    let v = g.value(g.inputs()[0]);
    let data = (0..v.ty.numel())
        .map(|k| ((k as f32) * 0.77).sin() * 3.0 + 0.5)
        .collect();
    let t = Tensor::from_vec(v.ty.shape.clone(), data).unwrap();
    HashMap::from([(v.name.clone(), t)])
}

#[test]
fn pooling_nodes_run_on_the_pool_kernel_and_match_the_interpreter() {
    for case in cases() {
        let g = graph(&case);
        let f = feeds(&g);
        let want = kiln::run(&g, &f).unwrap();
        let want = want[0].as_slice::<f32>().unwrap();
        for threads in [1, 2, 3] {
            let what = format!("{} {{{}}} {:?} t{threads}", case.op, case.attrs, case.input);
            let exe = compile(&g, &CompileOptions::default().with_threads(threads)).unwrap();
            let kernels: Vec<String> = exe
                .report()
                .kernels
                .iter()
                .map(|k| k.kernel.clone())
                .collect();
            assert_eq!(kernels.len(), 1, "{what}: {kernels:?}");
            assert!(kernels[0].starts_with("pool["), "{what}: {kernels:?}");
            let got = exe.run(&f).unwrap();
            let got = got[0].as_slice::<f32>().unwrap();
            assert_eq!(got.len(), want.len(), "{what}");
            for (i, (a, b)) in got.iter().zip(want).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * (b.abs() + 1.0),
                    "{what} [{i}]: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn max_pool_with_indices_stays_on_the_interpreter() {
    let src = "graph p {
  input x: f32[1,2,6,6]
  node p = MaxPool{kernel_shape=[2, 2], strides=[2, 2]}(x) -> y: f32[1,2,3,3], i: i64[1,2,3,3]
  output y
  output i
}";
    let g = kiln::ir::text::parse(src).unwrap();
    let exe = compile(&g, &CompileOptions::default().with_threads(2)).unwrap();
    let kernels: Vec<String> = exe
        .report()
        .kernels
        .iter()
        .map(|k| k.kernel.clone())
        .collect();
    assert!(
        kernels.iter().all(|k| !k.starts_with("pool[")),
        "{kernels:?}"
    );
    let f = feeds(&g);
    assert_eq!(exe.run(&f).unwrap()[0], kiln::run(&g, &f).unwrap()[0]);
}
