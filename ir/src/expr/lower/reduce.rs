//! Reductions along axes (ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSum with `axes`,
//! `keepdims`, `noop_with_empty_axes`) and GlobalAveragePool, for float
//! dtypes. Means divide the sum in the epilogue.

use super::elementwise::plain_float;
use super::{Ctx, Rule};
use crate::expr::scalar::{BinaryOp, ScalarExpr as S, UnaryOp};
use crate::expr::tensor::{Iter, ReduceKind, Reduction};
use crate::expr::{AffineExpr as A, TensorExpr};
use crate::ops::util::norm_axes;
use crate::Result;
use std::collections::HashMap;

/// An expression reducing input 0 over the dims in `mask`; kept reduced
/// dims become extent-1 output iterators when `keep`.
fn reduce_over(c: &Ctx, mask: &[bool], keep: bool, kind: ReduceKind) -> TensorExpr {
    let shape = &c.ty(0).shape;
    let n_out = c.output.ty.rank();
    let (mut names, mut index, mut red) = (vec![], vec![], vec![]);
    for (d, (&n, &m)) in shape.iter().zip(mask).enumerate() {
        if m {
            index.push(A::iter(n_out + red.len()));
            red.push(Iter::new(format!("r{d}"), n));
        } else {
            index.push(A::iter(names.len()));
        }
        if !m || keep {
            names.push(format!("d{d}"));
        }
    }
    let mut e = c.expr(&names, S::access(0, index));
    e.reduce = Some(Reduction { kind, iters: red });
    e
}

/// Divides the reduced value by the number of reduced elements.
fn mean_epilogue(e: &mut TensorExpr) {
    let n = e.reduce_points();
    e.epilogue = Some(S::binary(BinaryOp::Div, S::Acc, S::Const(n as f64)));
}

fn reduce(c: &Ctx) -> Result<Option<TensorExpr>> {
    let kind = match c.node.op.kind.as_str() {
        "ReduceSum" | "ReduceMean" | "ReduceL1" | "ReduceL2" | "ReduceSumSquare"
        | "ReduceLogSum" => ReduceKind::Sum,
        "ReduceMax" => ReduceKind::Max,
        "ReduceMin" => ReduceKind::Min,
        "ReduceProd" => ReduceKind::Prod,
        _ => return Ok(None),
    };
    if c.inputs.len() != 1 || !plain_float(c.ty(0).dtype) {
        return Ok(None);
    }
    let rank = c.ty(0).rank();
    let keep = c.attrs.int_or("keepdims", 1)? != 0;
    let noop = c.attrs.int_or("noop_with_empty_axes", 0)? != 0;
    let axes = c.attrs.opt_ints("axes")?.unwrap_or_default();
    let mut mask = vec![axes.is_empty() && !noop; rank];
    for a in norm_axes(&axes, rank)? {
        mask[a] = true;
    }
    let mut e = reduce_over(c, &mask, keep, kind);
    let square = |x: S| S::binary(BinaryOp::Mul, x.clone(), x);
    match c.node.op.kind.as_str() {
        "ReduceMean" => mean_epilogue(&mut e),
        "ReduceL1" => e.body = S::unary(UnaryOp::Abs, e.body),
        "ReduceSumSquare" => e.body = square(e.body),
        "ReduceL2" => {
            e.body = square(e.body);
            e.epilogue = Some(S::unary(UnaryOp::Sqrt, S::Acc));
        }
        "ReduceLogSum" => e.epilogue = Some(S::unary(UnaryOp::Log, S::Acc)),
        _ => {}
    }
    Ok(Some(e))
}

fn global_average_pool(c: &Ctx) -> Result<Option<TensorExpr>> {
    if c.inputs.len() != 1 || !plain_float(c.ty(0).dtype) || c.ty(0).rank() < 3 {
        return Ok(None);
    }
    let mask: Vec<bool> = (0..c.ty(0).rank()).map(|d| d >= 2).collect();
    let mut e = reduce_over(c, &mask, true, ReduceKind::Sum);
    mean_epilogue(&mut e);
    Ok(Some(e))
}

pub(super) fn register(r: &mut HashMap<&'static str, Rule>) {
    for k in [
        "ReduceSum",
        "ReduceMean",
        "ReduceMax",
        "ReduceMin",
        "ReduceProd",
        "ReduceL1",
        "ReduceL2",
        "ReduceSumSquare",
        "ReduceLogSum",
    ] {
        r.insert(k, reduce as Rule);
    }
    r.insert("GlobalAveragePool", global_average_pool as Rule);
}
