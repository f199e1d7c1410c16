//! Linear algebra: MatMul, Gemm, Einsum, Det (MatMulInteger lives in quant.rs).
//!
//! All map one-to-one onto the Kiln ops of the same name (attributes
//! unchanged); Gemm's optional `C` is simply left out when absent.

use crate::onnx::MappingRegistry;

pub fn register(r: &mut MappingRegistry) {
    r.same("MatMul", 1);
    r.same("Gemm", 1);
    r.same("Einsum", 12);
    r.same("Det", 11);
}
