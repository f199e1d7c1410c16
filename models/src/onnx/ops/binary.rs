//! Binary element-wise arithmetic: Add, Sub, Mul, Div, Mod, Pow, BitShift,
//! Bitwise{And,Or,Xor} and the variadic Min, Max, Sum, Mean.
//!
//! Opsets before 7 used `broadcast`/`axis` attributes; Kiln imports opset 7 and
//! later, where broadcasting is numpy's, so every version maps one-to-one.

use crate::onnx::MappingRegistry;

pub fn register(r: &mut MappingRegistry) {
    for op in [
        "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean",
    ] {
        r.same(op, 1);
    }
    r.same("Mod", 10);
    r.same("BitShift", 11);
    for op in ["BitwiseAnd", "BitwiseOr", "BitwiseXor"] {
        r.same(op, 18);
    }
}
