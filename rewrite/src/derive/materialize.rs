//! Summation splitting into stages: one factor of a product, read through a
//! non-trivial index map, is computed first into an intermediate tensor
//! over the iterators it uses, and the product reads that tensor plainly.
//!
//! `Y[o] = sum(r) g(X[f(o, r)]) * W[..]` ≡ `T[u] = X[f(u)]`,
//! `Y[o] = sum(r) T[u] * W[..]` with `u` the iterators `f` uses (output
//! iterators, then reduction iterators). For a convolution this is im2col:
//! `T[n, oh, ow, c, kh, kw] = guard(X[n, c, s*oh + kh - p, s*ow + kw - p], 0)`,
//! after which fusing `(oh, ow)` and `(c, kh, kw)` leaves a GEMM.

use super::util::{accesses, factor_access, factors, plain_iter, prune_inputs, read};
use super::{replace_stage, Derived, Program};
use kiln_ir::expr::{Access, AffineExpr, Iter, Operand, ScalarExpr, TensorExpr};
use kiln_ir::TensorType;

/// True when the read is not already `X[i, j, ..]` over distinct iterators.
fn non_trivial(a: &Access, guarded: bool) -> bool {
    let its: Vec<Option<usize>> = a.index.iter().map(plain_iter).collect();
    let distinct = its
        .iter()
        .enumerate()
        .all(|(k, i)| i.is_some() && !its[..k].contains(i));
    guarded || !distinct
}

/// The iterators a read uses, in iterator order.
fn used_iters(a: &Access, n: usize) -> Vec<usize> {
    (0..n)
        .filter(|&i| a.index.iter().any(|s| s.uses(i)))
        .collect()
}

/// Replaces the first subexpression equal to `target` by `with`.
fn replace_first(
    s: &ScalarExpr,
    target: &ScalarExpr,
    with: &ScalarExpr,
    done: &mut bool,
) -> ScalarExpr {
    if !*done && s == target {
        *done = true;
        return with.clone();
    }
    match s {
        ScalarExpr::Binary(op, a, b) => {
            let a = replace_first(a, target, with, done);
            let b = replace_first(b, target, with, done);
            ScalarExpr::binary(*op, a, b)
        }
        _ => s.clone(),
    }
}

/// `e` with factor `factor` of its product computed into stage `tmp`.
pub fn materialize(e: &TensorExpr, factor: &ScalarExpr, tmp: &str) -> Option<[TensorExpr; 2]> {
    let (a, guarded) = factor_access(factor)?;
    if !non_trivial(a, guarded) {
        return None;
    }
    let all = e.all_iters();
    let used = used_iters(a, all.len());
    let pos = |i: usize| used.iter().position(|&u| u == i).unwrap_or(0);
    let renum = |acc: &Access, g: bool| {
        let index = acc
            .index
            .iter()
            .map(|s| s.substitute(&|i| AffineExpr::iter(pos(i))))
            .collect();
        read(Access { input: 0, index }, g)
    };
    let iters: Vec<Iter> = used.iter().map(|&i| all[i].clone()).collect();
    let src = &e.inputs[a.input];
    let ty = TensorType::new(src.ty.dtype, iters.iter().map(|i| i.extent).collect());
    let t = TensorExpr {
        name: tmp.to_string(),
        output: ty.clone(),
        inputs: vec![src.clone()],
        iters,
        reduce: None,
        body: super::util::map_reads(factor, &renum),
        epilogue: None,
    };
    let mut y = e.clone();
    y.inputs.push(Operand {
        name: tmp.to_string(),
        ty,
    });
    let plain = ScalarExpr::access(
        y.inputs.len() - 1,
        used.iter().map(|&i| AffineExpr::iter(i)).collect(),
    );
    let mut done = false;
    y.body = replace_first(&e.body, factor, &plain, &mut done);
    let y = prune_inputs(&y);
    (done && t.check().is_ok() && y.check().is_ok()).then_some([t, y])
}

/// Every non-trivially indexed factor of every stage's product.
pub fn apply(p: &Program) -> Vec<Derived> {
    let mut out = vec![];
    for (k, e) in p.stages.iter().enumerate() {
        if accesses(e).is_empty() {
            continue;
        }
        for f in factors(&e.body) {
            let Some((a, _)) = factor_access(f) else {
                continue;
            };
            let base = format!("{}_{}", e.inputs[a.input].name, e.name);
            let tmp = p.fresh_name(&base);
            if let Some([t, y]) = materialize(e, f, &tmp) {
                out.push(Derived {
                    detail: format!("{}: {} -> {tmp}", e.name, e.inputs[a.input].name),
                    program: replace_stage(p, k, vec![t, y]),
                });
            }
        }
    }
    out
}
