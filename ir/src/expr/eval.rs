//! The naive evaluator: nested loops over the iterators, f64 arithmetic and
//! accumulation, one rounding to the output dtype at the end. It checks
//! lowerings against the reference interpreter; it is not meant to be fast.

use super::affine::AffineExpr;
use super::scalar::{Access, BinaryOp, CmpOp, ScalarExpr, UnaryOp};
use super::tensor::{ReduceKind, TensorExpr};
use crate::{dispatch_dtype, ensure, op_err, strides, DType, Elem, Result, Tensor};

/// An input flattened to f64 with its shape and strides.
struct Input {
    shape: Vec<usize>,
    strides: Vec<usize>,
    data: Vec<f64>,
}

/// Evaluates `e` on `inputs` (types must match `e.inputs`).
pub fn eval(e: &TensorExpr, inputs: &[&Tensor]) -> Result<Tensor> {
    e.check()?;
    ensure!(
        inputs.len() == e.inputs.len(),
        "{} expects {} inputs, got {}",
        e.name,
        e.inputs.len(),
        inputs.len()
    );
    for (t, o) in inputs.iter().zip(&e.inputs) {
        ensure!(
            t.ty() == o.ty,
            "{}: input `{}` must be {}, got {}",
            e.name,
            o.name,
            o.ty,
            t.ty()
        );
    }
    let ins: Vec<Input> = inputs
        .iter()
        .map(|t| Input {
            shape: t.shape().to_vec(),
            strides: strides(t.shape()),
            data: t.to_f64_vec(),
        })
        .collect();
    let out_ext: Vec<usize> = e.iters.iter().map(|i| i.extent).collect();
    let red_ext: Vec<usize> = e
        .reduce
        .iter()
        .flat_map(|r| r.iters.iter().map(|i| i.extent))
        .collect();
    let n = e.output.numel();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0i64; out_ext.len() + red_ext.len()];
    for _ in 0..n {
        out.push(point(e, &ins, &mut idx, out_ext.len(), &red_ext)?);
        advance(&mut idx[..out_ext.len()], &out_ext);
    }
    let t = Tensor::from_vec(e.output.shape.clone(), out)?;
    Ok(round_to(&t, e.output.dtype))
}

/// Converts an f64 tensor to `d` with the dtype's own f64 conversion.
fn round_to(t: &Tensor, d: DType) -> Tensor {
    let v = t.to_f64_vec();
    let data = dispatch_dtype!(d, T => T::wrap(v.iter().map(|&x| T::from_f64(x)).collect()));
    Tensor::new(t.shape().to_vec(), data).unwrap_or_else(|_| t.cast(d))
}

/// Advances a row-major multi-index; wraps to zeros after the last one.
fn advance(idx: &mut [i64], ext: &[usize]) {
    for d in (0..ext.len()).rev() {
        idx[d] += 1;
        if (idx[d] as usize) < ext[d] {
            return;
        }
        idx[d] = 0;
    }
}

/// The output value at the output iterators in `idx[..n_out]`.
fn point(
    e: &TensorExpr,
    ins: &[Input],
    idx: &mut [i64],
    n_out: usize,
    red: &[usize],
) -> Result<f64> {
    let Some(r) = &e.reduce else {
        return scalar(&e.body, ins, idx, 0.0);
    };
    let mut acc = r.kind.identity();
    let count: usize = red.iter().product();
    for _ in 0..count {
        let v = scalar(&e.body, ins, idx, 0.0)?;
        acc = combine(r.kind, acc, v);
        advance(&mut idx[n_out..], red);
    }
    match &e.epilogue {
        Some(ep) => scalar(ep, ins, idx, acc),
        None => Ok(acc),
    }
}

fn combine(k: ReduceKind, acc: f64, v: f64) -> f64 {
    match k {
        ReduceKind::Sum => acc + v,
        ReduceKind::Prod => acc * v,
        ReduceKind::Max => nan_or(acc, v, f64::max),
        ReduceKind::Min => nan_or(acc, v, f64::min),
    }
}

fn nan_or(a: f64, b: f64, f: fn(f64, f64) -> f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        f(a, b)
    }
}

/// Flat offset of an access, or `None` when a subscript is out of bounds.
fn offset(a: &Access, ins: &[Input], idx: &[i64]) -> Result<Option<usize>> {
    let t = ins
        .get(a.input)
        .ok_or_else(|| op_err!("access to missing input {}", a.input))?;
    let mut off = 0usize;
    for ((s, &d), &st) in a.index.iter().zip(&t.shape).zip(&t.strides) {
        let v = sub(s, idx)?;
        if v < 0 || v as usize >= d {
            return Ok(None);
        }
        off += v as usize * st;
    }
    Ok(Some(off))
}

fn sub(s: &AffineExpr, idx: &[i64]) -> Result<i64> {
    s.eval(idx)
        .ok_or_else(|| op_err!("cannot evaluate subscript {s:?}"))
}

fn read(a: &Access, ins: &[Input], idx: &[i64]) -> Result<f64> {
    match offset(a, ins, idx)? {
        Some(o) => Ok(ins[a.input].data[o]),
        None => {
            let at: Vec<i64> = a.index.iter().map(|s| s.eval(idx).unwrap_or(-1)).collect();
            Err(op_err!(
                "read of input {} at {at:?} is out of bounds",
                a.input
            ))
        }
    }
}

fn scalar(e: &ScalarExpr, ins: &[Input], idx: &[i64], acc: f64) -> Result<f64> {
    let go = |x: &ScalarExpr| scalar(x, ins, idx, acc);
    Ok(match e {
        ScalarExpr::Const(c) => *c,
        ScalarExpr::Access(a) => read(a, ins, idx)?,
        ScalarExpr::InBounds(a) => offset(a, ins, idx)?.is_some() as u8 as f64,
        ScalarExpr::Acc => acc,
        ScalarExpr::Unary(op, x) => unary(*op, go(x)?),
        ScalarExpr::Binary(op, a, b) => binary(*op, go(a)?, go(b)?),
        ScalarExpr::Cmp(op, a, b) => compare(*op, go(a)?, go(b)?) as u8 as f64,
        ScalarExpr::Select(c, t, f) => {
            if go(c)? != 0.0 {
                go(t)?
            } else {
                go(f)?
            }
        }
        ScalarExpr::Cast(d, x) => {
            let v = go(x)?;
            dispatch_dtype!(*d, T => T::from_f64(v).to_f64())
        }
    })
}

fn unary(op: UnaryOp, x: f64) -> f64 {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Abs => x.abs(),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Erf => libm::erf(x),
        UnaryOp::Recip => 1.0 / x,
        UnaryOp::Floor => x.floor(),
        UnaryOp::Ceil => x.ceil(),
        UnaryOp::Sin => x.sin(),
        UnaryOp::Cos => x.cos(),
    }
}

fn binary(op: BinaryOp, a: f64, b: f64) -> f64 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Max => nan_or(a, b, f64::max),
        BinaryOp::Min => nan_or(a, b, f64::min),
        BinaryOp::Pow => a.powf(b),
    }
}

fn compare(op: CmpOp, a: f64, b: f64) -> bool {
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
    }
}
