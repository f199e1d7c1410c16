//! Variable substitution: two adjacent iterators of one list become one.
//!
//! With `i: 0..a`, `j: 0..b` adjacent (both output or both reduction):
//! `f(i, j)` ≡ `f(p / b, p % b)` over `p: 0..a*b`. Subscripts are then
//! simplified, and an operand read at `(p / b, p % b)` in adjacent dims of
//! extent `b` is viewed with those dims merged and read at `p`. A 1x1
//! convolution's pixels `(oh, ow)` become one `p`, making it a GEMM:
//! `Y[n, m, p] = sum(c) X[n, c, p] * W[m, c]`.

use super::iters::{fresh_iter, slot, splice, Slot};
use super::util::{merge_views, ranges, substitute};
use super::{per_stage, Derived, Program};
use kiln_ir::expr::{AffineExpr, Iter, TensorExpr};

/// Iterators `t` and `t + 1` fused into one, or `None` when they are not
/// adjacent in one list.
pub fn fuse(e: &TensorExpr, t: usize) -> Option<TensorExpr> {
    let all = e.all_iters();
    let (a, b) = (all.get(t)?, all.get(t + 1)?);
    match (slot(e, t), slot(e, t + 1)) {
        (Slot::Out(_), Slot::Out(_)) | (Slot::Red(_), Slot::Red(_)) => {}
        _ => return None,
    }
    let nb = b.extent as i64;
    let name = fresh_iter(e, &format!("{}{}", a.name, b.name));
    let p = Iter::new(name, a.extent * b.extent);
    let mut out = e.clone();
    splice(&mut out, t, 2, vec![p]);
    let def = |i: usize| {
        if i < t {
            AffineExpr::iter(i)
        } else if i == t {
            AffineExpr::iter(t).floor_div(nb)
        } else if i == t + 1 {
            AffineExpr::iter(t).modulo(nb)
        } else {
            AffineExpr::iter(i - 1)
        }
    };
    let out = merge_views(substitute(&out, &def, &ranges(&out)));
    out.check().ok().map(|_| out)
}

/// Every adjacent pair of every stage.
pub fn apply(p: &Program) -> Vec<Derived> {
    per_stage(p, |e| {
        let all = e.all_iters();
        (0..all.len().saturating_sub(1))
            .filter_map(|t| {
                let d = format!("{}: ({}, {}) -> p", e.name, all[t].name, all[t + 1].name);
                fuse(e, t).map(|x| (d, x))
            })
            .collect()
    })
}
