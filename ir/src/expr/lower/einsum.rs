//! Einsum as one tensor expression: the output labels are the iterators,
//! the labels missing from the output are a sum reduction, and the body is
//! the product of every input read at its labels (a repeated label reads a
//! diagonal; a size-1 dimension against a larger label is broadcast and
//! reads index 0). Float dtypes only; integer einsums stay on the interpreter.

use super::elementwise::plain_float;
use super::{Ctx, Rule};
use crate::expr::scalar::{BinaryOp, ScalarExpr as S};
use crate::expr::tensor::{Iter, ReduceKind, Reduction};
use crate::expr::{AffineExpr as A, TensorExpr};
use crate::ops::linalg::einsum::indexed;
use crate::Result;
use std::collections::HashMap;

fn einsum(c: &Ctx) -> Result<Option<TensorExpr>> {
    if c.inputs.is_empty() || !c.inputs.iter().all(|o| plain_float(o.ty.dtype)) {
        return Ok(None);
    }
    let shapes: Vec<&[usize]> = c.inputs.iter().map(|o| o.ty.shape.as_slice()).collect();
    let eq = indexed(c.attrs.str_or("equation", "")?, &shapes)?;
    let summed: Vec<usize> = (0..eq.sizes.len())
        .filter(|l| !eq.output.contains(l))
        .collect();
    // Iterator of each label: output labels first, then the summed ones.
    let iter_of = |l: usize| match eq.output.iter().position(|&o| o == l) {
        Some(p) => p,
        None => eq.output.len() + summed.iter().position(|&s| s == l).unwrap_or(0),
    };
    let read = |i: usize| {
        let index = eq.inputs[i]
            .iter()
            .zip(shapes[i])
            .map(|(&l, &d)| match d == 1 && eq.sizes[l] != 1 {
                true => A::constant(0),
                false => A::iter(iter_of(l)),
            })
            .collect();
        S::access(i, index)
    };
    let mut body = read(0);
    for i in 1..c.inputs.len() {
        body = S::binary(BinaryOp::Mul, body, read(i));
    }
    let names: Vec<String> = (0..eq.output.len()).map(|d| format!("d{d}")).collect();
    let mut e = c.expr(&names, body);
    if !summed.is_empty() {
        e.reduce = Some(Reduction {
            kind: ReduceKind::Sum,
            iters: summed
                .iter()
                .enumerate()
                .map(|(k, &l)| Iter::new(format!("r{k}"), eq.sizes[l]))
                .collect(),
        });
    }
    Ok(Some(e))
}

pub(super) fn register(r: &mut HashMap<&'static str, Rule>) {
    r.insert("Einsum", einsum as Rule);
}
