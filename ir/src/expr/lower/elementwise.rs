//! Element-wise ops with numpy broadcasting: unary math and activations,
//! Clip, binary arithmetic, variadic Max/Min, comparisons, Where and Cast.
//!
//! Arithmetic lowers for f16/bf16/f32/f64 only (integer ops wrap in the
//! interpreter; the expression's f64 arithmetic would not); comparisons,
//! Where and Cast lower for every dtype whose values f64 holds exactly.

use super::{Ctx, Rule};
use crate::expr::scalar::{BinaryOp, CmpOp, ScalarExpr as S, UnaryOp};
use crate::expr::TensorExpr;
use crate::{Attr, DType, Result};
use std::collections::HashMap;

/// The float dtypes arithmetic lowers for.
pub(super) fn plain_float(d: DType) -> bool {
    matches!(d, DType::F16 | DType::BF16 | DType::F32 | DType::F64)
}

/// Dtypes whose every value f64 represents exactly.
pub(super) fn exact_in_f64(d: DType) -> bool {
    use DType::*;
    plain_float(d) || matches!(d, I8 | I16 | I32 | U8 | U16 | U32 | Bool)
}

/// `Some(expr)` over the output when every input has a float dtype.
fn float_pointwise(c: &Ctx, body: S) -> Result<Option<TensorExpr>> {
    let ok = c.inputs.iter().all(|o| plain_float(o.ty.dtype));
    Ok(ok.then(|| c.pointwise(body)))
}

/// `1 / (1 + e)` with `e = exp(-|x|)`, times `e` for `x < 0` (so a large
/// negative `x` gives `e^x`, not 0 from an overflowed `exp(-x)`).
pub(super) fn sigmoid(x: S) -> S {
    let e = S::unary(
        UnaryOp::Exp,
        S::unary(UnaryOp::Neg, S::unary(UnaryOp::Abs, x.clone())),
    );
    let s = S::unary(
        UnaryOp::Recip,
        S::binary(BinaryOp::Add, S::Const(1.0), e.clone()),
    );
    let neg = S::cmp(CmpOp::Lt, x, S::Const(0.0));
    S::select(neg, S::binary(BinaryOp::Mul, e, s.clone()), s)
}

/// The body of a one-input op applied to `x`.
fn unary_body(kind: &str, x: S) -> Option<S> {
    let u = |op| S::unary(op, x.clone());
    Some(match kind {
        "Relu" => S::binary(BinaryOp::Max, x, S::Const(0.0)),
        "Sigmoid" => sigmoid(x),
        "Tanh" => u(UnaryOp::Tanh),
        "Exp" => u(UnaryOp::Exp),
        "Log" => u(UnaryOp::Log),
        "Sqrt" => u(UnaryOp::Sqrt),
        "Erf" => u(UnaryOp::Erf),
        "Neg" => u(UnaryOp::Neg),
        "Abs" => u(UnaryOp::Abs),
        "Reciprocal" => u(UnaryOp::Recip),
        "Floor" => u(UnaryOp::Floor),
        "Ceil" => u(UnaryOp::Ceil),
        "Sin" => u(UnaryOp::Sin),
        "Cos" => u(UnaryOp::Cos),
        _ => return None,
    })
}

fn unary(c: &Ctx) -> Result<Option<TensorExpr>> {
    if c.inputs.len() != 1 {
        return Ok(None);
    }
    match unary_body(&c.node.op.kind, c.broadcast(0)) {
        Some(b) => float_pointwise(c, b),
        None => Ok(None),
    }
}

/// A Clip bound as a number (`None` when absent).
fn clip_bound(c: &Ctx, name: &str) -> Option<f64> {
    match c.attrs.get(name) {
        Some(Attr::Float(v)) => Some(*v),
        Some(Attr::Int(v)) => Some(*v as f64),
        _ => None,
    }
}

fn clip(c: &Ctx) -> Result<Option<TensorExpr>> {
    if c.inputs.len() != 1 {
        return Ok(None);
    }
    let mut b = c.broadcast(0);
    if let Some(lo) = clip_bound(c, "min") {
        b = S::binary(BinaryOp::Max, b, S::Const(lo));
    }
    if let Some(hi) = clip_bound(c, "max") {
        b = S::binary(BinaryOp::Min, b, S::Const(hi));
    }
    float_pointwise(c, b)
}

fn binary_op(kind: &str) -> Option<BinaryOp> {
    Some(match kind {
        "Add" | "Sum" => BinaryOp::Add,
        "Sub" => BinaryOp::Sub,
        "Mul" => BinaryOp::Mul,
        "Div" => BinaryOp::Div,
        "Pow" => BinaryOp::Pow,
        "Max" => BinaryOp::Max,
        "Min" => BinaryOp::Min,
        _ => return None,
    })
}

/// Binary and variadic arithmetic, folded left to right.
fn arith(c: &Ctx) -> Result<Option<TensorExpr>> {
    let Some(op) = binary_op(&c.node.op.kind) else {
        return Ok(None);
    };
    if c.inputs.is_empty() || (op_is_binary(op) && c.inputs.len() != 2) {
        return Ok(None);
    }
    let mut b = c.broadcast(0);
    for i in 1..c.inputs.len() {
        b = S::binary(op, b, c.broadcast(i));
    }
    float_pointwise(c, b)
}

fn op_is_binary(op: BinaryOp) -> bool {
    !matches!(op, BinaryOp::Max | BinaryOp::Min | BinaryOp::Add)
}

fn compare(c: &Ctx) -> Result<Option<TensorExpr>> {
    let op = match c.node.op.kind.as_str() {
        "Equal" => CmpOp::Eq,
        "Less" => CmpOp::Lt,
        "LessOrEqual" => CmpOp::Le,
        "Greater" => CmpOp::Gt,
        "GreaterOrEqual" => CmpOp::Ge,
        _ => return Ok(None),
    };
    if c.inputs.len() != 2 || !exact_in_f64(c.ty(0).dtype) {
        return Ok(None);
    }
    Ok(Some(c.pointwise(S::cmp(
        op,
        c.broadcast(0),
        c.broadcast(1),
    ))))
}

fn where_(c: &Ctx) -> Result<Option<TensorExpr>> {
    if c.inputs.len() != 3 || !exact_in_f64(c.ty(1).dtype) {
        return Ok(None);
    }
    let b = S::select(c.broadcast(0), c.broadcast(1), c.broadcast(2));
    Ok(Some(c.pointwise(b)))
}

fn cast(c: &Ctx) -> Result<Option<TensorExpr>> {
    let to = c.output.ty.dtype;
    let from = c.inputs.first().map(|o| o.ty.dtype);
    // 64-bit integers to bool: any non-zero value stays non-zero in f64.
    let wide_to_bool = to == DType::Bool && matches!(from, Some(DType::I64 | DType::U64));
    if c.inputs.len() != 1
        || !(exact_in_f64(c.ty(0).dtype) || wide_to_bool)
        || !(exact_in_f64(to) || to == DType::I64)
    {
        return Ok(None);
    }
    Ok(Some(c.pointwise(S::cast(to, c.broadcast(0)))))
}

pub(super) fn register(r: &mut HashMap<&'static str, Rule>) {
    let unaries = [
        "Relu",
        "Sigmoid",
        "Tanh",
        "Exp",
        "Log",
        "Sqrt",
        "Erf",
        "Neg",
        "Abs",
        "Reciprocal",
        "Floor",
        "Ceil",
        "Sin",
        "Cos",
    ];
    for k in unaries {
        r.insert(k, unary as Rule);
    }
    for k in ["Add", "Sum", "Sub", "Mul", "Div", "Pow", "Max", "Min"] {
        r.insert(k, arith as Rule);
    }
    for k in ["Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"] {
        r.insert(k, compare as Rule);
    }
    r.insert("Clip", clip as Rule);
    r.insert("Where", where_ as Rule);
    r.insert("Cast", cast as Rule);
}
