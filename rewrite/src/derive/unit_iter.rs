//! Variable substitution: an iterator of extent 1 is the constant 0.
//!
//! `Y[.., i: 0..1, ..] = f(i)` ≡ `Y'[..] = f(0)` (Y' a view of Y without the
//! unit dimension), and `sum(r: 0..1) f(r)` ≡ `f(0)`. Operand dimensions of
//! extent 1 read at 0 are then dropped (views). This is what turns a 1x1
//! convolution's kernel taps `X[n, c, oh + kh, ow + kw] * W[m, c, kh, kw]`
//! into `X[n, c, oh, ow] * W'[m, c]`.

use super::iters::splice;
use super::util::{merge_views, ranges, substitute};
use super::{per_stage, Derived, Program};
use kiln_ir::expr::{AffineExpr, TensorExpr};

/// The expression without iterator number `t` (extent 1), or `None`.
pub fn drop_unit(e: &TensorExpr, t: usize) -> Option<TensorExpr> {
    if e.all_iters().get(t)?.extent != 1 {
        return None;
    }
    let mut out = e.clone();
    splice(&mut out, t, 1, vec![]);
    let def = |i: usize| match i.cmp(&t) {
        std::cmp::Ordering::Less => AffineExpr::iter(i),
        std::cmp::Ordering::Equal => AffineExpr::constant(0),
        std::cmp::Ordering::Greater => AffineExpr::iter(i - 1),
    };
    let mut out = substitute(&out, &def, &ranges(&out));
    if out.reduce.as_ref().is_some_and(|r| r.iters.is_empty()) && out.epilogue.is_none() {
        out.reduce = None;
    }
    let out = merge_views(out);
    out.check().ok().map(|_| out)
}

/// Every unit iterator of every stage.
pub fn apply(p: &Program) -> Vec<Derived> {
    per_stage(p, |e| {
        let all = e.all_iters();
        (0..all.len())
            .filter_map(|t| {
                drop_unit(e, t).map(|x| (format!("{}: {} = 0", e.name, all[t].name), x))
            })
            .collect()
    })
}
