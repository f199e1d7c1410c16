//! Convolutions: Conv and ConvTranspose (opsets 1, 11, 22: same attributes)
//! map one-to-one; ConvInteger (10) fills an omitted `x_zero_point` with a
//! zero constant when `w_zero_point` is given.

use crate::onnx::{MappingRegistry, NodeCtx};
use crate::MapError;
use kiln_ir::{Op, Tensor};

fn conv_integer(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let mut ins = vec![ctx.input(0)?, ctx.input(1)?];
    let (xz, wz) = (ctx.opt_input(2)?, ctx.opt_input(3)?);
    match (xz, wz) {
        (Some(x), w) => ins.extend(std::iter::once(x).chain(w)),
        (None, Some(w)) => {
            let d = ctx.input_type(0)?.dtype;
            ins.push(ctx.constant(Tensor::zeros(d, vec![]))?);
            ins.push(w);
        }
        (None, None) => {}
    }
    let op = Op {
        kind: "ConvInteger".into(),
        attrs: ctx.attrs().clone(),
    };
    ctx.emit(op, &ins)?;
    Ok(())
}

pub fn register(r: &mut MappingRegistry) {
    r.same("Conv", 1);
    r.same("ConvTranspose", 1);
    r.add("", "ConvInteger", 10, conv_integer);
}
