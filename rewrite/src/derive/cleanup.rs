//! Clean-up after a derivation: a stage that only copies another tensor
//! (`X[i] = Y[f(i)]`, no reduction) and is not a result is substituted
//! into its readers (`Z[..X[s]..]` ≡ `Z[..Y[f(s)]..]`) and dropped, so
//! repeated merges do not leave chains of slices.

use super::util::{map_expr_reads, prune_inputs, read};
use super::Program;
use kiln_ir::expr::{Access, ScalarExpr, TensorExpr};

/// The copied read of a pure copy stage.
fn copy_of(e: &TensorExpr) -> Option<&Access> {
    match (&e.reduce, &e.epilogue, &e.body) {
        (None, None, ScalarExpr::Access(a)) => Some(a),
        _ => None,
    }
}

/// `z` with its reads of `x` (a copy stage) replaced by reads of the source.
fn substitute_copy(z: &TensorExpr, x: &TensorExpr, src: &Access) -> Option<TensorExpr> {
    let k = z.inputs.iter().position(|o| o.name == x.name)?;
    if z.inputs[k].ty != x.output
        || guards(&z.body, k)
        || z.epilogue.as_ref().is_some_and(|e| guards(e, k))
    {
        return None;
    }
    let mut out = z.clone();
    out.inputs.push(x.inputs[src.input].clone());
    let to = out.inputs.len() - 1;
    let out = map_expr_reads(&out, &|a, g| {
        if a.input != k {
            return read(a.clone(), g);
        }
        let index = src
            .index
            .iter()
            .map(|s| s.substitute(&|i| a.index[i].clone()))
            .collect();
        read(Access { input: to, index }, g)
    });
    Some(prune_inputs(&out))
}

/// True if `s` guards a read of input `k` (`InBounds`).
fn guards(s: &ScalarExpr, k: usize) -> bool {
    match s {
        ScalarExpr::InBounds(a) => a.input == k,
        ScalarExpr::Unary(_, x) | ScalarExpr::Cast(_, x) => guards(x, k),
        ScalarExpr::Binary(_, a, b) | ScalarExpr::Cmp(_, a, b) => guards(a, k) || guards(b, k),
        ScalarExpr::Select(c, t, e) => guards(c, k) || guards(t, k) || guards(e, k),
        _ => false,
    }
}

/// Substitutes copy stages that are not results into all their readers.
pub fn inline_copies(p: &Program) -> Program {
    let mut p = p.clone();
    let mut k = 0;
    while k < p.stages.len() {
        let x = p.stages[k].clone();
        let is_result = p.outputs.iter().any(|o| o.name == x.name);
        let Some(src) = copy_of(&x).cloned() else {
            k += 1;
            continue;
        };
        let readers: Vec<usize> = (k + 1..p.stages.len())
            .filter(|&z| p.stages[z].inputs.iter().any(|o| o.name == x.name))
            .collect();
        let new: Option<Vec<TensorExpr>> = readers
            .iter()
            .map(|&z| substitute_copy(&p.stages[z], &x, &src))
            .collect();
        match new {
            Some(new) if !is_result && !readers.is_empty() => {
                for (z, e) in readers.into_iter().zip(new) {
                    p.stages[z] = e;
                }
                p.stages.remove(k);
            }
            _ => k += 1,
        }
    }
    p
}
