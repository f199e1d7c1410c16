//! Helpers shared by the derivations: mapping reads and subscripts of an
//! expression, substituting iterators, iterator ranges, merging adjacent
//! dimensions of an operand (a row-major view), pruning unread inputs.

use kiln_ir::expr::index::Range;
use kiln_ir::expr::{Access, AffineExpr, Atom, BinaryOp, Operand, ScalarExpr, TensorExpr};

pub use kiln_ir::expr::inline::map_reads;

/// The same read kind (`Access` or `InBounds`) of `a`.
pub fn read(a: Access, guard: bool) -> ScalarExpr {
    if guard {
        ScalarExpr::InBounds(a)
    } else {
        ScalarExpr::Access(a)
    }
}

/// Rewrites every read of body and epilogue through `f`.
pub fn map_expr_reads(e: &TensorExpr, f: &dyn Fn(&Access, bool) -> ScalarExpr) -> TensorExpr {
    let mut out = e.clone();
    out.body = map_reads(&e.body, f);
    out.epilogue = e.epilogue.as_ref().map(|x| map_reads(x, f));
    out
}

/// Every access (guards included) of body and epilogue.
pub fn accesses(e: &TensorExpr) -> Vec<Access> {
    let mut v = vec![];
    e.body.visit_accesses(&mut |a| v.push(a.clone()));
    if let Some(x) = &e.epilogue {
        x.visit_accesses(&mut |a| v.push(a.clone()));
    }
    v
}

/// Inclusive ranges of all iterators (outputs, then reductions).
pub fn ranges(e: &TensorExpr) -> Vec<Range> {
    e.all_iters()
        .iter()
        .map(|i| (0, i.extent as i64 - 1))
        .collect()
}

/// Replaces iterator `i` by `def(i)` in every subscript; the caller then
/// fixes the iterator lists. Subscripts are simplified with `ranges` (the
/// ranges of the new iterators).
pub fn substitute(
    e: &TensorExpr,
    def: &dyn Fn(usize) -> AffineExpr,
    ranges: &[Range],
) -> TensorExpr {
    map_expr_reads(e, &|a, g| {
        let index = a
            .index
            .iter()
            .map(|s| s.substitute(def).simplified(Some(ranges)))
            .collect();
        read(
            Access {
                input: a.input,
                index,
            },
            g,
        )
    })
}

/// Number of division and modulo atoms (at any depth).
pub fn quasi_atoms(e: &AffineExpr) -> usize {
    e.terms
        .iter()
        .map(|(_, a)| match a {
            Atom::Iter(_) => 0,
            Atom::FloorDiv(x, _) | Atom::Mod(x, _) => 1 + quasi_atoms(x),
        })
        .sum()
}

/// Merges dims `d` and `d + 1` of input `input` into one (a view): every
/// read's subscripts `(s, t)` become `s * n + t` with `n` the extent of dim
/// `d + 1`. `None` unless every `t` stays in `0..n` (then in-bounds checks
/// keep their meaning).
pub fn merge_dims(e: &TensorExpr, input: usize, d: usize) -> Option<TensorExpr> {
    let shape = &e.inputs.get(input)?.ty.shape;
    let n = *shape.get(d + 1)? as i64;
    let r = ranges(e);
    for a in accesses(e).iter().filter(|a| a.input == input) {
        let (lo, hi) = a.index[d + 1].range(&r)?;
        if lo < 0 || hi >= n {
            return None;
        }
    }
    let mut out = map_expr_reads(e, &|a, g| {
        if a.input != input {
            return read(a.clone(), g);
        }
        let mut index = a.index.clone();
        let t = index.remove(d + 1);
        index[d] = AffineExpr::default()
            .add_scaled(&index[d], n)
            .add_scaled(&t, 1)
            .simplified(Some(&r));
        read(
            Access {
                input: a.input,
                index,
            },
            g,
        )
    });
    let ty = &mut out.inputs[input].ty;
    ty.shape[d] *= ty.shape.remove(d + 1);
    Some(out)
}

/// Merges adjacent dims of every input while that removes division or
/// modulo atoms or folds away a unit dimension (a view; see [`merge_dims`]).
pub fn merge_views(mut e: TensorExpr) -> TensorExpr {
    loop {
        let mut changed = false;
        for input in 0..e.inputs.len() {
            let rank = e.inputs[input].ty.rank();
            for d in 0..rank.saturating_sub(1) {
                if worth_merging(&e, input, d) {
                    if let Some(m) = merge_dims(&e, input, d) {
                        e = m;
                        changed = true;
                        break;
                    }
                }
            }
        }
        if !changed {
            return e;
        }
    }
}

fn worth_merging(e: &TensorExpr, input: usize, d: usize) -> bool {
    let shape = &e.inputs[input].ty.shape;
    let reads: Vec<Access> = accesses(e)
        .into_iter()
        .filter(|a| a.input == input)
        .collect();
    if reads.is_empty() {
        return false;
    }
    let unit =
        |k: usize| shape[k] == 1 && reads.iter().all(|a| a.index[k] == AffineExpr::default());
    if unit(d) || unit(d + 1) {
        return true;
    }
    let n = shape[d + 1] as i64;
    reads.iter().all(|a| {
        let before = quasi_atoms(&a.index[d]) + quasi_atoms(&a.index[d + 1]);
        let merged = AffineExpr::default()
            .add_scaled(&a.index[d], n)
            .add_scaled(&a.index[d + 1], 1)
            .simplified(Some(&ranges(e)));
        quasi_atoms(&merged) < before
    })
}

/// Drops inputs no read uses and renumbers the reads.
pub fn prune_inputs(e: &TensorExpr) -> TensorExpr {
    let used: Vec<bool> = (0..e.inputs.len())
        .map(|k| accesses(e).iter().any(|a| a.input == k))
        .collect();
    let mut to = vec![usize::MAX; e.inputs.len()];
    let mut inputs: Vec<Operand> = vec![];
    for (k, o) in e.inputs.iter().enumerate() {
        if used[k] {
            to[k] = inputs.len();
            inputs.push(o.clone());
        }
    }
    let mut out = map_expr_reads(e, &|a, g| {
        read(
            Access {
                input: to[a.input],
                index: a.index.clone(),
            },
            g,
        )
    });
    out.inputs = inputs;
    out
}

/// The factors of a product tree (`a * b * c`), or the body itself.
pub fn factors(s: &ScalarExpr) -> Vec<&ScalarExpr> {
    match s {
        ScalarExpr::Binary(BinaryOp::Mul, a, b) => {
            let mut v = factors(a);
            v.extend(factors(b));
            v
        }
        _ => vec![s],
    }
}

/// The access of a plain read or of a zero-filled guard `guard(X[..], 0)`.
pub fn factor_access(s: &ScalarExpr) -> Option<(&Access, bool)> {
    match s {
        ScalarExpr::Access(a) => Some((a, false)),
        ScalarExpr::Select(c, t, f) => match (&**c, &**t, &**f) {
            (ScalarExpr::InBounds(g), ScalarExpr::Access(a), ScalarExpr::Const(z))
                if g == a && *z == 0.0 =>
            {
                Some((a, true))
            }
            _ => None,
        },
        _ => None,
    }
}

/// `Some(i)` when the subscript is exactly iterator `i`.
pub fn plain_iter(s: &AffineExpr) -> Option<usize> {
    match s.terms.as_slice() {
        [(1, Atom::Iter(i))] if s.constant == 0 => Some(*i),
        _ => None,
    }
}
