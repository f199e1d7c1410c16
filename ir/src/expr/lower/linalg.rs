//! MatMul (numpy matmul: 1-D operands promoted, batch dims broadcast) and
//! Gemm (`alpha * A' * B' + beta * C`, the bias in the epilogue), both as a
//! sum over `k`, for float dtypes.

use super::elementwise::plain_float;
use super::{Ctx, Rule};
use crate::expr::scalar::{BinaryOp, ScalarExpr as S};
use crate::expr::tensor::{Iter, ReduceKind, Reduction};
use crate::expr::{AffineExpr as A, TensorExpr};
use crate::Result;
use std::collections::HashMap;

/// Subscripts for the batch dims `shape` of an operand, right-aligned to the
/// first `n_batch` output iterators `out` (broadcast dims read index 0).
fn batch_index(shape: &[usize], out: &[usize], n_batch: usize) -> Vec<A> {
    let off = n_batch - shape.len().min(n_batch);
    shape
        .iter()
        .enumerate()
        .map(|(d, &n)| {
            if n == 1 && out[off + d] != 1 {
                A::constant(0)
            } else {
                A::iter(off + d)
            }
        })
        .collect()
}

/// A reduction over `k` of `A * B` with the given iterator names.
fn summed(c: &Ctx, names: &[String], k: usize, a: Vec<A>, b: Vec<A>) -> TensorExpr {
    let mut e = c.expr(
        names,
        S::binary(BinaryOp::Mul, S::access(0, a), S::access(1, b)),
    );
    e.reduce = Some(Reduction {
        kind: ReduceKind::Sum,
        iters: vec![Iter::new("k", k)],
    });
    e
}

fn matmul(c: &Ctx) -> Result<Option<TensorExpr>> {
    if c.inputs.len() != 2 || !plain_float(c.ty(0).dtype) || !plain_float(c.ty(1).dtype) {
        return Ok(None);
    }
    let (sa, sb, out) = (&c.ty(0).shape, &c.ty(1).shape, &c.output.ty.shape);
    let (ra, rb, r) = (sa.len(), sb.len(), out.len());
    if ra == 0 || rb == 0 {
        return Ok(None);
    }
    let k = sa[ra - 1];
    let has_i = ra >= 2;
    let has_j = rb >= 2;
    let n_batch = r - has_i as usize - has_j as usize;
    let ki = A::iter(r);
    let mut names: Vec<String> = (0..n_batch).map(|d| format!("b{d}")).collect();
    let mut ia = batch_index(&sa[..ra.saturating_sub(2)], out, n_batch);
    let mut ib = batch_index(&sb[..rb.saturating_sub(2)], out, n_batch);
    if has_i {
        names.push("i".into());
        ia.push(A::iter(n_batch));
    }
    ia.push(ki.clone());
    ib.push(ki);
    if has_j {
        names.push("j".into());
        ib.push(A::iter(r - 1));
    }
    Ok(Some(summed(c, &names, k, ia, ib)))
}

fn gemm(c: &Ctx) -> Result<Option<TensorExpr>> {
    let n = c.inputs.len();
    if !(2..=3).contains(&n) || !c.inputs.iter().all(|o| plain_float(o.ty.dtype)) {
        return Ok(None);
    }
    let (sa, out) = (&c.ty(0).shape, &c.output.ty.shape);
    if sa.len() != 2 || out.len() != 2 {
        return Ok(None);
    }
    let ta = c.attrs.int_or("transA", 0)? != 0;
    let tb = c.attrs.int_or("transB", 0)? != 0;
    let (alpha, beta) = (
        c.attrs.float_or("alpha", 1.0)?,
        c.attrs.float_or("beta", 1.0)?,
    );
    let k = if ta { sa[0] } else { sa[1] };
    let (i, j, kk) = (A::iter(0), A::iter(1), A::iter(2));
    let ia = if ta {
        vec![kk.clone(), i]
    } else {
        vec![i, kk.clone()]
    };
    let ib = if tb { vec![j, kk] } else { vec![kk, j] };
    let names = ["i".to_string(), "j".to_string()];
    let mut e = summed(c, &names, k, ia, ib);
    let scaled = |x: S, s: f64| {
        if s == 1.0 {
            x
        } else {
            S::binary(BinaryOp::Mul, S::Const(s), x)
        }
    };
    let mut ep = scaled(S::Acc, alpha);
    if n == 3 && beta != 0.0 {
        ep = S::binary(BinaryOp::Add, ep, scaled(c.broadcast(2), beta));
    }
    e.epilogue = (ep != S::Acc).then_some(ep);
    Ok(Some(e))
}

pub(super) fn register(r: &mut HashMap<&'static str, Rule>) {
    r.insert("MatMul", matmul as Rule);
    r.insert("Gemm", gemm as Rule);
}
