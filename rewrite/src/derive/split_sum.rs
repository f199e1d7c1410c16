//! Summation splitting, in one expression and into two stages.
//!
//! - `split-reduction`: `sum(k: 0..a*b) f(k)` ≡ `sum(ko: 0..a, ki: 0..b) f(ko*b + ki)`
//!   (`a` the smallest prime factor of the extent);
//! - `rfactor`: `Y[o] = e(sum(r, s) f)` ≡ `T[o, r] = sum(s) f`,
//!   `Y[o] = e(sum(r) T[o, r])` — a partial result stored in an
//!   intermediate tensor (the first reduction iterator becomes an output
//!   iterator of the first stage; iterator numbers stay the same). `T` keeps
//!   the output's dtype, so a float partial sum is rounded once more.

use super::iters::{fresh_iter, slot, splice, Slot};
use super::util::{prune_inputs, ranges, substitute};
use super::{per_stage, replace_stage, Derived, Program};
use kiln_ir::expr::{AffineExpr, Iter, Operand, Reduction, ScalarExpr, TensorExpr};
use kiln_ir::TensorType;

fn smallest_factor(n: usize) -> Option<usize> {
    (2..n)
        .take_while(|f| f * f <= n)
        .find(|f| n.is_multiple_of(*f))
}

/// Reduction iterator `t` split into `(ko, ki)`, or `None`.
pub fn split_reduction(e: &TensorExpr, t: usize) -> Option<TensorExpr> {
    let it = e.all_iters().get(t).copied()?.clone();
    if !matches!(slot(e, t), Slot::Red(_)) {
        return None;
    }
    let a = smallest_factor(it.extent)?;
    let b = it.extent / a;
    let mut out = e.clone();
    let outer = Iter::new(fresh_iter(e, &format!("{}o", it.name)), a);
    let inner = Iter::new(fresh_iter(e, &format!("{}i", it.name)), b);
    splice(&mut out, t, 1, vec![outer, inner]);
    let def = |i: usize| match i.cmp(&t) {
        std::cmp::Ordering::Less => AffineExpr::iter(i),
        std::cmp::Ordering::Equal => AffineExpr::default()
            .plus_iter(b as i64, t)
            .plus_iter(1, t + 1),
        std::cmp::Ordering::Greater => AffineExpr::iter(i + 1),
    };
    let out = substitute(&out, &def, &ranges(&out));
    out.check().ok().map(|_| out)
}

/// The two stages of an rfactor of `e` (first reduction iterator outer), or `None`.
pub fn rfactor(e: &TensorExpr, tmp: &str) -> Option<[TensorExpr; 2]> {
    let r = e.reduce.as_ref()?;
    if r.iters.len() < 2 {
        return None;
    }
    let mut t = e.clone();
    t.name = tmp.to_string();
    t.iters.push(r.iters[0].clone());
    t.output.shape.push(r.iters[0].extent);
    t.reduce = Some(Reduction {
        kind: r.kind,
        iters: r.iters[1..].to_vec(),
    });
    t.epilogue = None;
    let t = prune_inputs(&t);
    let mut y = e.clone();
    y.reduce = Some(Reduction {
        kind: r.kind,
        iters: vec![r.iters[0].clone()],
    });
    let ty = TensorType::new(e.output.dtype, t.output.shape.clone());
    y.inputs.push(Operand {
        name: tmp.to_string(),
        ty,
    });
    let index = (0..=e.iters.len()).map(AffineExpr::iter).collect();
    y.body = ScalarExpr::access(y.inputs.len() - 1, index);
    let y = prune_inputs(&y);
    (t.check().is_ok() && y.check().is_ok()).then_some([t, y])
}

/// `split-reduction` at every splittable reduction iterator.
pub fn apply_split(p: &Program) -> Vec<Derived> {
    per_stage(p, |e| {
        let all = e.all_iters();
        (e.iters.len()..all.len())
            .filter_map(|t| {
                let d = format!("{}: split {}", e.name, all[t].name);
                split_reduction(e, t).map(|x| (d, x))
            })
            .collect()
    })
}

/// `rfactor` of every stage with two or more reduction iterators.
pub fn apply_rfactor(p: &Program) -> Vec<Derived> {
    (0..p.stages.len())
        .filter_map(|k| {
            let e = &p.stages[k];
            let tmp = p.fresh_name(&format!("{}_part", e.name));
            let [t, y] = rfactor(e, &tmp)?;
            let d = format!("{}: partial sums {tmp}", e.name);
            Some(Derived {
                detail: d,
                program: replace_stage(p, k, vec![t, y]),
            })
        })
        .collect()
}
