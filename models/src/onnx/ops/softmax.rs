//! Softmax, LogSoftmax, Hardmax and the losses NegativeLogLikelihoodLoss and
//! SoftmaxCrossEntropyLoss.
//!
//! Before opset 13 the softmax ops flatten the input to 2-D at `axis`
//! (default 1); they map to the Kiln op with `coerce_2d` = 1. From 13 on they
//! work along one axis (default -1). The losses map one-to-one.

use crate::onnx::{MappingRegistry, NodeCtx};
use crate::MapError;
use kiln_ir::{Attr, Op};

/// Opsets 1-12: coerce-to-2-D semantics, axis default 1.
fn softmax_legacy(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let axis = ctx.attrs().int_or("axis", 1)?;
    let op = Op::new(ctx.op_type())
        .with("axis", Attr::Int(axis))
        .with("coerce_2d", Attr::Int(1));
    let x = ctx.input(0)?;
    ctx.emit(op, &[x])?;
    Ok(())
}

pub fn register(r: &mut MappingRegistry) {
    for op in ["Softmax", "LogSoftmax", "Hardmax"] {
        r.add("", op, 1, softmax_legacy);
        r.same(op, 13);
    }
    r.same("NegativeLogLikelihoodLoss", 12);
    r.same("SoftmaxCrossEntropyLoss", 12);
}
