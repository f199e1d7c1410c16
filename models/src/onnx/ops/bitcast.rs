//! `BitCast` (opset 26) and `TensorScatter` (opset 24) mappings.

use crate::onnx::{MappingRegistry, NodeCtx};
use crate::{map_err, MapError};
use kiln_ir::{Attr, Op, Tensor};

fn bitcast(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let to = ctx.dtype_attr("to")?;
    let x = ctx.input(0)?;
    ctx.emit(Op::new("BitCast").with("to", Attr::DType(to)), &[x])?;
    Ok(())
}

fn tensor_scatter(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let cache = ctx.input_type(0)?;
    let batch = *cache
        .shape
        .first()
        .ok_or_else(|| map_err!("TensorScatter cache must have rank >= 1"))?;
    let wi = match ctx.opt_input(2)? {
        Some(v) => v,
        None => ctx.constant(Tensor::from_i64s(&vec![0; batch]))?,
    };
    let mut op = Op::new("TensorScatter");
    op.attrs = ctx.attrs().clone();
    let ins = [ctx.input(0)?, ctx.input(1)?, wi];
    ctx.emit(op, &ins)?;
    Ok(())
}

pub fn register(r: &mut MappingRegistry) {
    r.add("", "BitCast", 26, bitcast);
    r.add("", "TensorScatter", 24, tensor_scatter);
}
