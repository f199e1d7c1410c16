//! Golden tests of the printed form of lowered expressions.

use crate::expr::lower;
use crate::{text, Graph};

/// Lowers every node of a text-form graph and prints the expressions.
fn printed(src: &str) -> String {
    let g: Graph = text::parse(src).unwrap();
    let out: Vec<String> = g
        .nodes()
        .iter()
        .map(|n| {
            lower(&g, n)
                .unwrap()
                .map_or("none".into(), |e| e.to_string())
        })
        .collect();
    out.join("\n")
}

#[test]
fn golden_printed_forms() {
    let got = printed(
        "graph t {
  input a: f32[4,3]
  input b: f32[3,5]
  input bias: f32[5]
  input x: f32[1,4,6,6]
  input w: f32[8,2,3,3]
  node mm = MatMul(a, b) -> c: f32[4,5]
  node g = Gemm{alpha=0.5, transA=1}(c, c, bias) -> d: f32[5,5]
  node r = Reshape{shape=[2,10]}(c) -> e: f32[2,10]
  node cv = Conv{group=2, pads=[1,1,1,1], strides=[2,2]}(x, w) -> y: f32[1,8,3,3]
  node rm = ReduceMean{axes=[1], keepdims=0}(c) -> m: f32[4]
  node ad = Add(c, bias) -> s: f32[4,5]
  node cl = Clip{min=0.0, max=6.0}(s) -> t: f32[4,5]
  node sg = Sigmoid(t) -> u: f32[4,5]
  node sm = Softmax(u) -> v: f32[4,5]
  output v
}",
    );
    let want = "\
c: f32[4,5] <- a: f32[4,3], b: f32[3,5]
c[i, j] = sum(k: 0..3) a[i, k] * b[k, j]
d: f32[5,5] <- c: f32[4,5], c: f32[4,5], bias: f32[5]
d[i, j] = 0.5 * (sum(k: 0..4) c[k, i] * c[k, j]) + bias[j]
e: f32[2,10] <- c: f32[4,5]
e[d0, d1] = c[(10*d0 + d1) / 5, (10*d0 + d1) % 5]
y: f32[1,8,3,3] <- x: f32[1,4,6,6], w: f32[8,2,3,3]
y[n, m, oh, ow] = sum(c: 0..2, kh: 0..3, kw: 0..3) guard(x[n, 2*(m / 4) + c, 2*oh + kh - 1, 2*ow + kw - 1], 0) * w[m, c, kh, kw]
m: f32[4] <- c: f32[4,5]
m[d0] = (sum(r1: 0..5) c[d0, r1]) / 5
s: f32[4,5] <- c: f32[4,5], bias: f32[5]
s[d0, d1] = c[d0, d1] + bias[d1]
t: f32[4,5] <- s: f32[4,5]
t[d0, d1] = min(max(s[d0, d1], 0), 6)
u: f32[4,5] <- t: f32[4,5]
u[d0, d1] = select(t[d0, d1] < 0, exp(neg(abs(t[d0, d1]))) * recip(1 + exp(neg(abs(t[d0, d1])))), recip(1 + exp(neg(abs(t[d0, d1])))))
none";
    assert_eq!(got, want);
}

/// A hand-built expression with parenthesised subtraction and a cast.
#[test]
fn golden_precedence_and_casts() {
    use crate::expr::*;
    use crate::{DType, TensorType};
    let ty = TensorType::new(DType::F32, vec![3]);
    let x = || ScalarExpr::access(0, vec![AffineExpr::iter(0).offset(1)]);
    let sub = ScalarExpr::binary(BinaryOp::Sub, ScalarExpr::Const(1.0), x());
    let body = ScalarExpr::binary(BinaryOp::Mul, x(), sub);
    let body = ScalarExpr::select(
        ScalarExpr::cmp(CmpOp::Gt, x(), ScalarExpr::Const(-0.5)),
        ScalarExpr::cast(DType::I32, body),
        ScalarExpr::Const(-2.0),
    );
    let e = TensorExpr {
        name: "y".into(),
        output: ty.clone(),
        inputs: vec![Operand {
            name: "x".into(),
            ty: TensorType::new(DType::F32, vec![4]),
        }],
        iters: vec![Iter::new("i", 3)],
        reduce: None,
        body,
        epilogue: None,
    };
    let want = "y: f32[3] <- x: f32[4]\ny[i] = select(x[i + 1] > -0.5, i32(x[i + 1] * (1 - x[i + 1])), -2)";
    assert_eq!(e.to_string(), want);
    let t = crate::Tensor::from_vec(vec![4], vec![0.0f32, 2.5, -1.0, 0.25]).unwrap();
    let y = eval(&e, &[&t]).unwrap();
    assert_eq!(y.as_slice::<f32>().unwrap(), &[-3.0, -2.0, 0.0]);
}

/// Malformed expressions and mismatched inputs are errors, not panics.
#[test]
fn bad_expressions_are_errors() {
    use crate::expr::*;
    use crate::{DType, Tensor, TensorType};
    let ty = TensorType::new(DType::F32, vec![3]);
    let mk = |index: Vec<AffineExpr>, extent| TensorExpr {
        name: "y".into(),
        output: TensorType::new(DType::F32, vec![extent]),
        inputs: vec![Operand {
            name: "x".into(),
            ty: ty.clone(),
        }],
        iters: vec![Iter::new("i", extent)],
        reduce: None,
        body: ScalarExpr::access(0, index),
        epilogue: None,
    };
    let x = Tensor::from_vec(vec![3], vec![1.0f32, 2.0, 3.0]).unwrap();
    // Out-of-bounds read, unknown iterator, wrong subscript count, wrong shape.
    assert!(eval(&mk(vec![AffineExpr::iter(0).offset(1)], 3), &[&x]).is_err());
    assert!(eval(&mk(vec![AffineExpr::iter(5)], 3), &[&x]).is_err());
    assert!(eval(&mk(vec![], 3), &[&x]).is_err());
    let mut bad = mk(vec![AffineExpr::iter(0)], 3);
    bad.output.shape = vec![4];
    assert!(bad.check().is_err());
    assert!(eval(&mk(vec![AffineExpr::iter(0)], 3), &[]).is_err());
    let y = Tensor::from_vec(vec![2], vec![1.0f32, 2.0]).unwrap();
    assert!(eval(&mk(vec![AffineExpr::iter(0)], 3), &[&y]).is_err());
    let mut acc = mk(vec![AffineExpr::iter(0)], 3);
    acc.body = ScalarExpr::Acc;
    assert!(acc.check().is_err());
}
