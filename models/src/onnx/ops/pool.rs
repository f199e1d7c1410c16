//! Pooling: MaxPool, AveragePool, LpPool and the global pools map one-to-one
//! (older opsets only lack attributes; LpPool-1's float `p` is read as a
//! float). MaxUnpool's `output_shape` input becomes an attribute. RoiAlign-10
//! gets `coordinate_transformation_mode = output_half_pixel`; 16+ is one-to-one.

use crate::onnx::{MappingRegistry, NodeCtx};
use crate::MapError;
use kiln_ir::{Attr, Op};

fn max_unpool(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let (x, i) = (ctx.input(0)?, ctx.input(1)?);
    let mut attrs = ctx.attrs().clone();
    if let Some(s) = ctx.const_ints(2)? {
        attrs.set("output_shape", Attr::Ints(s));
    }
    let op = Op {
        kind: "MaxUnpool".into(),
        attrs,
    };
    ctx.emit(op, &[x, i])?;
    Ok(())
}

/// RoiAlign-10 had no `coordinate_transformation_mode`: it behaved as
/// `output_half_pixel`.
fn roi_align10(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let mut attrs = ctx.attrs().clone();
    attrs.set(
        "coordinate_transformation_mode",
        Attr::Str("output_half_pixel".into()),
    );
    let ins = ctx.inputs()?;
    ctx.emit(
        Op {
            kind: "RoiAlign".into(),
            attrs,
        },
        &ins,
    )?;
    Ok(())
}

pub fn register(r: &mut MappingRegistry) {
    r.add("", "RoiAlign", 10, roi_align10);
    r.same("RoiAlign", 16);
    for op in [
        "MaxPool",
        "AveragePool",
        "LpPool",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "GlobalLpPool",
    ] {
        r.same(op, 1);
    }
    r.add("", "MaxUnpool", 9, max_unpool);
}
