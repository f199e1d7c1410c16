//! Quantization: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear,
//! QLinearMatMul, QLinearConv, MatMulInteger's zero-point gaps.
//!
//! The ONNX `output_dtype` attribute (a TensorProto code) becomes a Kiln
//! dtype attribute; float8 / int4 / int2 / float4 targets are unsupported
//! (Kiln has no such dtypes), as is a `precision` attribute.

use crate::onnx::tensor::dtype_from_onnx;
use crate::onnx::{MappingRegistry, NodeCtx};
use crate::MapError;
use kiln_ir::{Attr, Op, Tensor};

/// QuantizeLinear / DequantizeLinear (all opsets): attributes normalised,
/// `output_dtype` converted to a Kiln dtype.
fn quant_linear(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let mut attrs = ctx.attrs().clone();
    if attrs.contains("precision") {
        return Err(MapError::Unsupported("the `precision` attribute".into()));
    }
    match attrs.opt_int("output_dtype")? {
        Some(0) => {
            attrs.0.remove("output_dtype");
        }
        Some(code) => attrs.set("output_dtype", Attr::DType(dtype_from_onnx(code as i32)?)),
        None => {}
    }
    // `saturate` (float8/float4 targets) carries over to the Kiln op.
    let op = Op {
        kind: ctx.op_type().to_string(),
        attrs,
    };
    let ins = ctx.inputs()?;
    ctx.emit(op, &ins)?;
    Ok(())
}

/// MatMulInteger: an omitted `a_zero_point` before a present `b_zero_point`
/// becomes a zero constant.
fn matmul_integer(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let mut ins = vec![ctx.input(0)?, ctx.input(1)?];
    let (za, zb) = (ctx.opt_input(2)?, ctx.opt_input(3)?);
    match (za, zb) {
        (Some(a), Some(b)) => ins.extend([a, b]),
        (Some(a), None) => ins.push(a),
        (None, Some(b)) => {
            let d = ctx.input_type(0)?.dtype;
            ins.push(ctx.constant(Tensor::zeros(d, vec![]))?);
            ins.push(b);
        }
        (None, None) => {}
    }
    ctx.emit(Op::new("MatMulInteger"), &ins)?;
    Ok(())
}

pub fn register(r: &mut MappingRegistry) {
    r.add("", "QuantizeLinear", 10, quant_linear);
    r.add("", "DequantizeLinear", 10, quant_linear);
    r.same("DynamicQuantizeLinear", 11);
    r.same("QLinearMatMul", 10);
    r.same("QLinearConv", 10);
    r.add("", "MatMulInteger", 10, matmul_integer);
}
