//! Constants inside patterns are checked by value, through the analysis's
//! constant data (never by node identity): [`scalar`] reads a class's value
//! when it holds one number (any shape of one element, or every element
//! equal, as exporters broadcast scalars), [`near`] compares it with the
//! relative tolerance [`TOL`].

use crate::analysis::TGraph;
use crate::lang::TNode;
use egg::Id;
use kiln_ir::Tensor;
use std::sync::Arc;

/// Relative tolerance for pattern constants: exporters write f32 values
/// (`1.4142135` for √2, `0.70710677` for 1/√2), 6e-8 from the exact value;
/// 1e-6 accepts any f32 rounding and nothing that changes the math.
pub(crate) const TOL: f64 = 1e-6;

/// The constant tensor of a class, whatever its size.
pub(crate) fn const_of(eg: &TGraph, class: Id) -> Option<Arc<Tensor>> {
    eg[class].nodes.iter().find_map(|n| match n {
        TNode::Const(c) => Some(eg.analysis.consts[*c as usize].clone()),
        _ => None,
    })
}

/// The f32 elements of a constant class.
pub(crate) fn f32s_of(eg: &TGraph, class: Id) -> Option<Vec<f32>> {
    const_of(eg, class)?
        .as_slice::<f32>()
        .ok()
        .map(<[f32]>::to_vec)
}

/// The one number a constant class holds (all elements equal), if any.
pub(crate) fn scalar(eg: &TGraph, class: Id) -> Option<f64> {
    let v = eg[class].data.value.as_ref()?.to_f64_vec();
    let first = *v.first()?;
    v.iter().all(|&x| x == first).then_some(first)
}

/// True when `x` is within [`TOL`] (relative) of `want`.
pub(crate) fn near(x: Option<f64>, want: f64) -> bool {
    x.is_some_and(|x| (x - want).abs() <= TOL * want.abs().max(1e-30))
}

/// True when class `c` is the constant `want` (see [`near`]).
pub(crate) fn is_const(eg: &TGraph, c: Id, want: f64) -> bool {
    near(scalar(eg, c), want)
}
