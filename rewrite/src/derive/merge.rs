//! Traversal merging: two contractions over the same iteration space that
//! share one operand become one contraction over concatenated operands.
//!
//! `Y1[o, j: 0..n1] = sum(r) A[f(o, r)] * B1[g(o, j, r)]` and
//! `Y2[o, j: 0..n2] = sum(r) A[f(o, r)] * B2[g(o, j, r)]` (same `A` read,
//! `j` only in `B`'s dim `d`, read there as `j`) ≡
//! `C = concat_d(B1, B2)`, `M[o, j: 0..n1+n2] = sum(r) A[f] * C[g]`,
//! `Y1[o, j] = M[o, j]`, `Y2[o, j] = M[o, j + n1]`. With constant weights
//! `C` folds at compile time; the slices are the memory-bound remainder.
//! Q, K and V projections of one input become one matmul.

use super::cleanup::inline_copies;
use super::util::{factor_access, factors, plain_iter};
use super::{Derived, Program};
use kiln_ir::expr::{Access, AffineExpr, BinaryOp, Iter, Operand, ScalarExpr, TensorExpr};
use kiln_ir::TensorType;

/// A stage `sum A[..] * B[..]` split into its two plain reads.
fn two_reads(e: &TensorExpr) -> Option<[&Access; 2]> {
    let r = e.reduce.as_ref()?;
    if e.epilogue.is_some() || r.kind != kiln_ir::expr::ReduceKind::Sum {
        return None;
    }
    match factors(&e.body).as_slice() {
        [f, g] => match (factor_access(f)?, factor_access(g)?) {
            ((a, false), (b, false)) => Some([a, b]),
            _ => None,
        },
        _ => None,
    }
}

/// The plan of a merge: shared read, the differing output iterator `d`, the
/// dim `dd` of `B` it indexes, and the two `B` reads.
struct Plan<'a> {
    d: usize,
    dd: usize,
    b1: &'a Access,
    b2: &'a Access,
}

fn plan<'a>(e1: &'a TensorExpr, e2: &'a TensorExpr) -> Option<Plan<'a>> {
    let (r1, r2) = (two_reads(e1)?, two_reads(e2)?);
    let ext = |e: &TensorExpr| e.all_iters().iter().map(|i| i.extent).collect::<Vec<_>>();
    let (x1, x2) = (ext(e1), ext(e2));
    if x1.len() != x2.len()
        || e1.iters.len() != e2.iters.len()
        || e1.output.dtype != e2.output.dtype
    {
        return None;
    }
    let diff: Vec<usize> = (0..x1.len()).filter(|&i| x1[i] != x2[i]).collect();
    let name = |e: &TensorExpr, a: &Access| e.inputs[a.input].clone();
    for (s1, s2) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        let (a1, a2) = (r1[s1], r2[s2]);
        if name(e1, a1) != name(e2, a2) || a1.index != a2.index {
            continue;
        }
        let (b1, b2) = (r1[1 - s1], r2[1 - s2]);
        let (o1, o2) = (name(e1, b1), name(e2, b2));
        if b1.index != b2.index || o1.name == o2.name || o1.name == name(e1, a1).name {
            continue;
        }
        let d = match diff.as_slice() {
            [d] if *d < e1.iters.len() => *d,
            [] => e1.iters.len().checked_sub(1)?,
            _ => continue,
        };
        if a1.index.iter().any(|s| s.uses(d)) {
            continue;
        }
        let dd = b1.index.iter().position(|s| plain_iter(s) == Some(d))?;
        let uses = b1.index.iter().filter(|s| s.uses(d)).count();
        let (sh1, sh2) = (&o1.ty.shape, &o2.ty.shape);
        let same_rest = sh1.len() == sh2.len()
            && (0..sh1.len()).all(|k| k == dd || sh1[k] == sh2[k])
            && o1.ty.dtype == o2.ty.dtype;
        if uses == 1 && same_rest && sh1[dd] == x1[d] && sh2[dd] == x2[d] {
            return Some(Plan { d, dd, b1, b2 });
        }
    }
    None
}

/// `C[.., j, ..] = guard(B1[.., j, ..], 0) + guard(B2[.., j - n1, ..], 0)`.
fn concat(name: &str, o1: &Operand, o2: &Operand, dd: usize) -> TensorExpr {
    let mut shape = o1.ty.shape.clone();
    shape[dd] += o2.ty.shape[dd];
    let iters: Vec<Iter> = shape
        .iter()
        .enumerate()
        .map(|(k, &n)| Iter::new(format!("d{k}"), n))
        .collect();
    let idx: Vec<AffineExpr> = (0..shape.len()).map(AffineExpr::iter).collect();
    let mut idx2 = idx.clone();
    idx2[dd] = idx2[dd].clone().offset(-(o1.ty.shape[dd] as i64));
    let body = ScalarExpr::binary(
        BinaryOp::Add,
        ScalarExpr::guarded(0, idx, 0.0),
        ScalarExpr::guarded(1, idx2, 0.0),
    );
    TensorExpr {
        name: name.to_string(),
        output: TensorType::new(o1.ty.dtype, shape),
        inputs: vec![o1.clone(), o2.clone()],
        iters,
        reduce: None,
        body,
        epilogue: None,
    }
}

/// `Y[o] = M[o with iterator d shifted by off]`.
fn slice(like: &TensorExpr, m: &TensorExpr, d: usize, off: i64) -> TensorExpr {
    let mut idx: Vec<AffineExpr> = (0..like.iters.len()).map(AffineExpr::iter).collect();
    idx[d] = idx[d].clone().offset(off);
    TensorExpr {
        name: like.name.clone(),
        output: like.output.clone(),
        inputs: vec![Operand {
            name: m.name.clone(),
            ty: m.output.clone(),
        }],
        iters: like.iters.clone(),
        reduce: None,
        body: ScalarExpr::access(0, idx),
        epilogue: None,
    }
}

/// Stages `i < j` merged, or `None`.
pub fn merge(p: &Program, i: usize, j: usize) -> Option<Program> {
    let (e1, e2) = (&p.stages[i], &p.stages[j]);
    let between = &p.stages[i + 1..j];
    if between
        .iter()
        .any(|s| s.inputs.iter().any(|o| o.name == e1.name))
    {
        return None;
    }
    let pl = plan(e1, e2)?;
    let (o1, o2) = (&e1.inputs[pl.b1.input], &e2.inputs[pl.b2.input]);
    let c = concat(
        &p.fresh_name(&format!("{}_{}", o1.name, o2.name)),
        o1,
        o2,
        pl.dd,
    );
    let mut m = e1.clone();
    m.name = p.fresh_name(&format!("{}_{}", e1.name, e2.name));
    m.iters[pl.d].extent += e2.iters[pl.d].extent;
    m.output.shape[pl.d] = m.iters[pl.d].extent;
    m.inputs[pl.b1.input] = Operand {
        name: c.name.clone(),
        ty: c.output.clone(),
    };
    let n1 = e1.iters[pl.d].extent as i64;
    let (s1, s2) = (slice(e1, &m, pl.d, 0), slice(e2, &m, pl.d, n1));
    let mut stages = p.stages.clone();
    stages.remove(j);
    stages.remove(i);
    stages.splice(j - 1..j - 1, [c, m, s1, s2]);
    let out = Program {
        stages,
        ..p.clone()
    };
    Some(inline_copies(&out))
}

/// Every mergeable pair of stages.
pub fn apply(p: &Program) -> Vec<Derived> {
    let n = p.stages.len();
    let mut out = vec![];
    for i in 0..n {
        for j in i + 1..n {
            if let Some(q) = merge(p, i, j) {
                let d = format!(
                    "{} + {} share {}",
                    p.stages[i].name,
                    p.stages[j].name,
                    shared_name(&p.stages[i], &p.stages[j])
                );
                out.push(Derived {
                    detail: d,
                    program: q,
                });
            }
        }
    }
    out
}

fn shared_name(e1: &TensorExpr, e2: &TensorExpr) -> String {
    e1.inputs
        .iter()
        .find(|o| e2.inputs.contains(o))
        .map_or_else(String::new, |o| o.name.clone())
}
