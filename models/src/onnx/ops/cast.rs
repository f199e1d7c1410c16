//! Cast and CastLike onto Kiln `Cast` (attribute `to`, a dtype).
//!
//! Opsets before 6 name the target type with a string (`"FLOAT"`), later
//! ones with a `TensorProto.DataType` code. CastLike takes the dtype of its
//! second input. `saturate` (float8/float4 targets) and `round_mode`
//! (float8 e8m0 targets) carry over. String targets are unsupported.

use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::tensor::dtype_from_onnx;
use crate::onnx::{MappingRegistry, NodeCtx};
use crate::{map_err, MapError};
use kiln_ir::{Attr, DType, Op};

/// The target dtype of a Cast node.
fn target(ctx: &NodeCtx) -> Result<DType, MapError> {
    let code = match ctx.attrs().get("to") {
        Some(Attr::Int(c)) => {
            i32::try_from(*c).map_err(|_| map_err!("Cast `to` {c} is invalid"))?
        }
        Some(Attr::Str(s)) => DataType::from_str_name(s)
            .ok_or_else(|| map_err!("Cast `to` names an unknown type `{s}`"))?
            as i32,
        _ => return Err(map_err!("Cast needs an int attribute `to`")),
    };
    dtype_from_onnx(code).map_err(|e| match e {
        MapError::Unsupported(m) => MapError::Unsupported(format!("Cast to {m}")),
        e => e,
    })
}

fn emit_cast(ctx: &mut NodeCtx, to: DType) -> Result<(), MapError> {
    let x = ctx.input(0)?;
    let mut op = Op::new("Cast").with("to", Attr::DType(to));
    if ctx.attrs().int_or("saturate", 1)? == 0 {
        op = op.with("saturate", Attr::Int(0));
    }
    if let Some(m) = ctx.attrs().opt_str("round_mode")? {
        op = op.with("round_mode", Attr::Str(m.to_string()));
    }
    ctx.emit(op, &[x])?;
    Ok(())
}

fn cast(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let to = target(ctx)?;
    emit_cast(ctx, to)
}

fn cast_like(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let to = ctx.input_type(1)?.dtype;
    emit_cast(ctx, to)
}

pub fn register(r: &mut MappingRegistry) {
    r.add("", "Cast", 1, cast);
    r.add("", "CastLike", 15, cast_like);
}
