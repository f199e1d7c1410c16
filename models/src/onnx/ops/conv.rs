//! Convolutions: Conv and ConvTranspose (opsets 1, 11, 22: same attributes)
//! map one-to-one; ConvInteger (10) fills an omitted `x_zero_point` with a
//! zero constant when `w_zero_point` is given. Col2Im (18) takes its
//! `image_shape`/`block_shape` inputs as attributes; DeformConv (19, 22) maps
//! one-to-one (a zero bias fills an omitted `B` before a given `mask`).

use crate::onnx::{MappingRegistry, NodeCtx};
use crate::{map_err, MapError};
use kiln_ir::{Attr, Op, Tensor};

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

/// Col2Im (18): the `image_shape` and `block_shape` inputs become attributes.
fn col2im(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let mut attrs = ctx.attrs().clone();
    for (i, name) in [(1, "image_shape"), (2, "block_shape")] {
        let v = ctx
            .const_ints(i)?
            .ok_or_else(|| map_err!("Col2Im needs input {i} ({name})"))?;
        attrs.set(name, Attr::Ints(v));
    }
    let x = ctx.input(0)?;
    ctx.emit(
        Op {
            kind: "Col2Im".into(),
            attrs,
        },
        &[x],
    )?;
    Ok(())
}

/// DeformConv (19, 22): an omitted bias before a given mask becomes zeros.
fn deform_conv(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let mut ins = vec![ctx.input(0)?, ctx.input(1)?, ctx.input(2)?];
    let (b, mask) = (ctx.opt_input(3)?, ctx.opt_input(4)?);
    match (b, mask) {
        (Some(b), m) => ins.extend(std::iter::once(b).chain(m)),
        (None, Some(m)) => {
            let w = ctx.input_type(1)?;
            ins.push(ctx.constant(Tensor::zeros(w.dtype, vec![w.shape[0]]))?);
            ins.push(m);
        }
        (None, None) => {}
    }
    let op = Op {
        kind: "DeformConv".into(),
        attrs: ctx.attrs().clone(),
    };
    ctx.emit(op, &ins)?;
    Ok(())
}

pub fn register(r: &mut MappingRegistry) {
    r.add("", "Col2Im", 18, col2im);
    r.add("", "DeformConv", 19, deform_conv);
    r.same("Conv", 1);
    r.same("ConvTranspose", 1);
    r.add("", "ConvInteger", 10, conv_integer);
}
