//! Comparisons (Equal, Less, Greater, LessOrEqual, GreaterOrEqual), logic
//! (And, Or, Xor, Not, BitwiseNot), IsNaN, IsInf and Where: one-to-one onto
//! the Kiln ops of the same names. Opsets before 7 broadcast through
//! `broadcast`/`axis` attributes; Kiln imports opset 7 and later (numpy
//! broadcasting), so those attributes are dropped.

use super::unary::emit_filtered;
use crate::onnx::{MappingRegistry, NodeCtx};
use crate::MapError;

fn map_op(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let kind = ctx.op_type().to_string();
    let keep: &[&str] = if kind == "IsInf" {
        &["detect_positive", "detect_negative"]
    } else {
        &[]
    };
    emit_filtered(ctx, &kind, keep)
}

pub fn register(r: &mut MappingRegistry) {
    for op in [
        "Equal",
        "Less",
        "Greater",
        "LessOrEqual",
        "GreaterOrEqual",
        "And",
        "Or",
        "Xor",
        "Not",
        "BitwiseNot",
        "IsNaN",
        "IsInf",
        "Where",
    ] {
        r.add("", op, 1, map_op);
    }
}
