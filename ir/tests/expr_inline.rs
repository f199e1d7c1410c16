//! Differential tests of `kiln_ir::expr::inline`: two-op chains written in
//! the text form are fused into one expression, whose naive evaluation must
//! match the reference interpreter on random inputs.

use kiln_ir::expr::{eval, inline, lower, TensorExpr};
use kiln_ir::{interp, text, Graph, Tensor};
use std::collections::HashMap;

fn random(t: &kiln_ir::TensorType, seed: &mut u64) -> Tensor {
    let v: Vec<f64> = (0..t.numel())
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            let u = (*seed >> 11) as f64 / (1u64 << 53) as f64;
            if t.dtype.is_float() {
                (0.1 + u) * if u > 0.5 { 1.0 } else { -1.0 }
            } else {
                (u * 5.0).floor() - 2.0
            }
        })
        .collect();
    Tensor::from_vec(t.shape.clone(), v).unwrap().cast(t.dtype)
}

/// Fuses the graph's nodes front to back (each into the next) and compares
/// with the interpreter; returns the fused expression, or None if refused.
fn fuse_and_check(src: &str) -> Option<TensorExpr> {
    let g: Graph = text::parse(src).unwrap();
    let mut fused = lower(&g, &g.nodes()[0]).unwrap().unwrap();
    for n in &g.nodes()[1..] {
        let consumer = lower(&g, n).unwrap().unwrap();
        let at = consumer.inputs.iter().position(|o| o.name == fused.name)?;
        fused = inline(&consumer, at, &fused, 4.0)?;
    }
    let mut seed = 0x2545f4914f6cdd1d;
    let feeds: HashMap<String, Tensor> = g
        .inputs()
        .iter()
        .map(|&i| (g.value(i).name.clone(), random(&g.value(i).ty, &mut seed)))
        .collect();
    let want = interp::run(&g, &feeds).unwrap().remove(0);
    let args: Vec<&Tensor> = fused.inputs.iter().map(|o| &feeds[&o.name]).collect();
    let got = eval(&fused, &args).unwrap();
    assert_eq!(got.ty(), want.ty());
    for (a, b) in got.to_f64_vec().iter().zip(want.to_f64_vec()) {
        assert!(
            (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
            "{a} vs {b}\n{fused}"
        );
    }
    Some(fused)
}

#[test]
fn elementwise_chain_with_broadcast_and_shared_input() {
    let e = fuse_and_check(
        "graph t {
  input x: f32[4,6]
  input b: f32[6]
  node a = Add(x, b) -> s: f32[4,6]
  node d = Div(s, b) -> q: f32[4,6]
  node f = Erf(q) -> r: f32[4,6]
  node m = Mul(r, x) -> y: f32[4,6]
  output y
}",
    )
    .unwrap();
    assert_eq!(e.inputs.len(), 2, "x and b are shared, not duplicated");
}

#[test]
fn producer_inlines_into_a_reduction_and_a_transpose() {
    fuse_and_check(
        "graph t {
  input x: f32[3,5,2]
  node e = Exp(x) -> a: f32[3,5,2]
  node t = Transpose{perm=[2,0,1]}(a) -> b: f32[2,3,5]
  node r = ReduceSum{axes=[2], keepdims=1}(b) -> y: f32[2,3,1]
  output y
}",
    )
    .unwrap();
}

#[test]
fn consumer_becomes_the_epilogue_of_a_reduction() {
    let e = fuse_and_check(
        "graph t {
  input a: f32[4,3]
  input w: f32[3,5]
  input bias: f32[5]
  node mm = MatMul(a, w) -> c: f32[4,5]
  node ad = Add(c, bias) -> s: f32[4,5]
  node re = Relu(s) -> y: f32[4,5]
  output y
}",
    )
    .unwrap();
    assert!(e.epilogue.is_some() && e.reduce.is_some());
}

#[test]
fn casts_survive_fusion() {
    fuse_and_check(
        "graph t {
  input a: f32[7]
  node c = Cast{to=bool}(a) -> p: bool[7]
  node d = Cast{to=f32}(p) -> q: f32[7]
  node s = Add(q, a) -> y: f32[7]
  output y
}",
    )
    .unwrap();
}

#[test]
fn refuses_two_reductions_and_heavy_recomputation() {
    assert!(fuse_and_check(
        "graph t {
  input x: f32[4,6]
  node r = ReduceSum{axes=[1], keepdims=1}(x) -> a: f32[4,1]
  node s = ReduceMax{axes=[0], keepdims=1}(a) -> y: f32[1,1]
  output y
}"
    )
    .is_none());
    assert!(fuse_and_check(
        "graph t {
  input x: f32[1,6]
  input z: f32[40,6]
  node e = Exp(x) -> a: f32[1,6]
  node s = Add(a, z) -> y: f32[40,6]
  output y
}"
    )
    .is_none());
}

#[test]
fn a_value_read_twice_is_inlined_everywhere() {
    let e = fuse_and_check(
        "graph t {
  input x: f32[5]
  node e = Exp(x) -> a: f32[5]
  node m = Mul(a, a) -> y: f32[5]
  output y
}",
    )
    .unwrap();
    assert_eq!(e.inputs.len(), 1);
}
