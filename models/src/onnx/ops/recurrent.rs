//! Recurrent layers: RNN, GRU, LSTM (opsets 7 and later; `layout` from 14).
//!
//! ONNX inputs `X, W, R, B, sequence_lens, initial_h[, initial_c, P]` become
//! Kiln inputs `X, W, R[, B[, initial_h[, initial_c[, P]]]]`: the constant
//! `sequence_lens` moves to an attribute (a run-time value is unsupported),
//! and an omitted optional input followed by a present one becomes zeros.

use crate::onnx::{MappingRegistry, NodeCtx};
use crate::MapError;
use kiln_ir::{Attr, Op, Tensor};

fn recurrent(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let mut attrs = ctx.attrs().clone();
    if let Some(lens) = ctx.const_ints(4)? {
        attrs.set("sequence_lens", Attr::Ints(lens));
    }
    let x = ctx.input_type(0)?;
    let r = ctx.input_type(2)?;
    let (dirs, hidden) = (
        r.shape.first().copied().unwrap_or(1),
        r.shape.get(2).copied().unwrap_or(0),
    );
    let gates = r.shape.get(1).copied().unwrap_or(0) / hidden.max(1);
    let batch = if attrs.int_or("layout", 0)? == 0 {
        x.shape.get(1)
    } else {
        x.shape.first()
    }
    .copied()
    .unwrap_or(0);
    let state = if attrs.int_or("layout", 0)? == 0 {
        vec![dirs, batch, hidden]
    } else {
        vec![batch, dirs, hidden]
    };
    // ONNX slot -> shape of zeros that stands in for it.
    let slots: [(usize, Vec<usize>); 4] = [
        (3, vec![dirs, 2 * gates * hidden]),
        (5, state.clone()),
        (6, state),
        (7, vec![dirs, 3 * hidden]),
    ];
    let mut ins = vec![ctx.input(0)?, ctx.input(1)?, ctx.input(2)?];
    let last = slots
        .iter()
        .rposition(|(k, _)| ctx.opt_input(*k).ok().flatten().is_some());
    for (j, (k, shape)) in slots.iter().enumerate() {
        if last.is_none_or(|l| j > l) {
            break;
        }
        match ctx.opt_input(*k)? {
            Some(v) => ins.push(v),
            None => {
                let z = Tensor::zeros(x.dtype, shape.clone());
                ins.push(ctx.constant(z)?);
            }
        }
    }
    let op = Op {
        kind: ctx.op_type().to_string(),
        attrs,
    };
    ctx.emit(op, &ins)?;
    Ok(())
}

pub fn register(r: &mut MappingRegistry) {
    for op in ["RNN", "GRU", "LSTM"] {
        r.add("", op, 7, recurrent);
    }
}
