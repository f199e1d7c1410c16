//! Boundary relaxation and tightening of a summation range.
//!
//! - `relax`: `sum(k: 0..E) A[..k..] * B[..]` ≡ `sum(k: 0..E') guard(A, 0) * guard(B, 0)`
//!   for `E' > E` (the next multiple of 8) when some factor reads outside its
//!   tensor for every `k` in `E..E'`: the extra terms are products with a zero.
//! - `tighten`: the inverse: a summation range shrinks to the part where every
//!   zero-filled guarded factor can be in bounds, and guards that are then
//!   always in bounds become plain reads.

use super::iters::{slot, Slot};
use super::util::{factor_access, factors, ranges};
use super::{per_stage, Derived, Program};
use kiln_ir::expr::index::Range;
use kiln_ir::expr::{Access, BinaryOp, ReduceKind, ScalarExpr, TensorExpr};

/// Rebuilds a product tree with every factor mapped by `f`.
fn map_factors(s: &ScalarExpr, f: &dyn Fn(&ScalarExpr) -> ScalarExpr) -> ScalarExpr {
    match s {
        ScalarExpr::Binary(BinaryOp::Mul, a, b) => {
            ScalarExpr::binary(BinaryOp::Mul, map_factors(a, f), map_factors(b, f))
        }
        _ => f(s),
    }
}

/// Every subscript of `a` can be evaluated and one dim is always out of bounds.
fn always_out(e: &TensorExpr, a: &Access, r: &[Range]) -> bool {
    let shape = &e.inputs[a.input].ty.shape;
    a.index
        .iter()
        .zip(shape)
        .any(|(s, &n)| s.range(r).is_some_and(|(lo, hi)| hi < 0 || lo >= n as i64))
}

fn always_in(e: &TensorExpr, a: &Access, r: &[Range]) -> bool {
    let shape = &e.inputs[a.input].ty.shape;
    a.index
        .iter()
        .zip(shape)
        .all(|(s, &n)| s.range(r).is_some_and(|(lo, hi)| lo >= 0 && hi < n as i64))
}

fn is_sum(e: &TensorExpr) -> bool {
    e.reduce.as_ref().is_some_and(|r| r.kind == ReduceKind::Sum)
}

fn set_extent(e: &mut TensorExpr, t: usize, n: usize) {
    if let (Slot::Red(k), Some(r)) = (slot(e, t), e.reduce.as_mut()) {
        r.iters[k].extent = n;
    }
}

/// Reduction iterator `t` extended to the next multiple of 8, or `None`.
pub fn relax(e: &TensorExpr, t: usize) -> Option<TensorExpr> {
    let ext = e.all_iters().get(t)?.extent;
    let wide = ext.div_ceil(8) * 8;
    if !is_sum(e) || !matches!(slot(e, t), Slot::Red(_)) || wide == ext || ext == 0 {
        return None;
    }
    let fs = factors(&e.body);
    let using: Vec<Option<(&Access, bool)>> = fs
        .iter()
        .filter(|f| uses_iter(f, t))
        .map(|f| factor_access(f))
        .collect();
    let mut r = ranges(e);
    r[t] = (ext as i64, wide as i64 - 1);
    let zero = using
        .iter()
        .any(|u| u.is_some_and(|(a, _)| always_out(e, a, &r)));
    if !zero || using.iter().any(Option::is_none) {
        return None;
    }
    let mut out = e.clone();
    out.body = map_factors(&e.body, &|f| match factor_access(f) {
        Some((a, false)) if uses_iter(f, t) => ScalarExpr::guarded(a.input, a.index.clone(), 0.0),
        _ => f.clone(),
    });
    set_extent(&mut out, t, wide);
    out.check().ok().map(|_| out)
}

fn uses_iter(f: &ScalarExpr, t: usize) -> bool {
    let mut u = false;
    f.visit_accesses(&mut |a| u |= a.index.iter().any(|s| s.uses(t)));
    u
}

/// The smallest extent of reduction iterator `t` beyond which some guarded
/// factor is always out of bounds.
fn tight_extent(e: &TensorExpr, t: usize) -> usize {
    let ext = e.all_iters()[t].extent;
    let guarded: Vec<&Access> = factors(&e.body)
        .into_iter()
        .filter_map(factor_access)
        .filter(|(_, g)| *g)
        .map(|(a, _)| a)
        .collect();
    let mut r = ranges(e);
    let mut n = ext;
    while n > 1 {
        r[t] = (n as i64 - 1, n as i64 - 1);
        if !guarded.iter().any(|a| always_out(e, a, &r)) {
            break;
        }
        n -= 1;
    }
    n
}

/// Reduction iterator `t` (or none) tightened and needless guards removed; `None` if nothing changes.
pub fn tighten(e: &TensorExpr, t: Option<usize>) -> Option<TensorExpr> {
    if !is_sum(e) {
        return None;
    }
    let mut out = e.clone();
    if let Some(t) = t {
        if !matches!(slot(e, t), Slot::Red(_)) {
            return None;
        }
        set_extent(&mut out, t, tight_extent(e, t));
    }
    let r = ranges(&out);
    let probe = out.clone();
    out.body = map_factors(&out.body, &|f| match factor_access(f) {
        Some((a, true)) if always_in(&probe, a, &r) => ScalarExpr::Access(a.clone()),
        _ => f.clone(),
    });
    (out != *e && out.check().is_ok()).then_some(out)
}

/// `relax` at every reduction iterator of every stage.
pub fn apply_relax(p: &Program) -> Vec<Derived> {
    per_stage(p, |e| {
        let all = e.all_iters();
        (e.iters.len()..all.len())
            .filter_map(|t| {
                relax(e, t).map(|x| (format!("{}: {} extended", e.name, all[t].name), x))
            })
            .collect()
    })
}

/// `tighten` at every reduction iterator of every stage, and guard removal alone.
pub fn apply_tighten(p: &Program) -> Vec<Derived> {
    per_stage(p, |e| {
        let all = e.all_iters();
        let mut v: Vec<(String, TensorExpr)> = (e.iters.len()..all.len())
            .filter_map(|t| {
                tighten(e, Some(t)).map(|x| (format!("{}: {} tightened", e.name, all[t].name), x))
            })
            .collect();
        if let Some(x) = tighten(e, None) {
            v.push((format!("{}: guards removed", e.name), x));
        }
        v
    })
}
