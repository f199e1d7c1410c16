//! Normalization ops: BatchNormalization (inference; training mode from
//! opset 14), LayerNormalization, InstanceNormalization, GroupNormalization
//! (opset 18: one scale/bias per group; 21: per channel), LpNormalization,
//! LRN, RMSNormalization and MeanVarianceNormalization.
//!
//! `stash_type` (an ONNX element type code) becomes a dtype attribute.

use super::super::tensor::dtype_from_onnx;
use crate::onnx::{MappingRegistry, NodeCtx};
use crate::{map_err, MapError};
use kiln_ir::{Attr, Attrs, Op};

/// Emits the Kiln op of the node's name with `attrs` on all present inputs.
fn emit_with(ctx: &mut NodeCtx, attrs: Attrs) -> Result<(), MapError> {
    let ins = ctx.inputs()?;
    let op = Op {
        kind: ctx.op_type().to_string(),
        attrs,
    };
    ctx.emit(op, &ins)?;
    Ok(())
}

/// Copies the named attributes that are present.
fn pick(ctx: &NodeCtx, names: &[&str]) -> Attrs {
    let mut a = Attrs::new();
    for n in names {
        if let Some(v) = ctx.attrs().get(n) {
            a.set(n, v.clone());
        }
    }
    a
}

/// Converts an ONNX `stash_type` code into a dtype attribute.
fn with_stash(ctx: &NodeCtx, mut a: Attrs) -> Result<Attrs, MapError> {
    let code = ctx.attrs().int_or("stash_type", 1)?;
    a.set("stash_type", Attr::DType(dtype_from_onnx(code as i32)?));
    Ok(a)
}

/// BatchNormalization before opset 14: inference only.
fn batchnorm_legacy(ctx: &mut NodeCtx) -> Result<(), MapError> {
    if ctx.num_outputs() > 1 {
        return Err(MapError::Unsupported(
            "BatchNormalization training outputs before opset 14".into(),
        ));
    }
    if ctx.attrs().int_or("spatial", 1)? == 0 {
        return Err(MapError::Unsupported(
            "BatchNormalization with spatial = 0".into(),
        ));
    }
    let a = pick(ctx, &["epsilon", "momentum"]);
    emit_with(ctx, a)
}

fn batchnorm(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let a = pick(ctx, &["epsilon", "momentum", "training_mode"]);
    emit_with(ctx, a)
}

fn layernorm(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let a = with_stash(ctx, pick(ctx, &["axis", "epsilon"]))?;
    emit_with(ctx, a)
}

fn instancenorm(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let a = pick(ctx, &["epsilon"]);
    emit_with(ctx, a)
}

/// Opset 18: scale and bias hold one value per group.
fn groupnorm_18(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let g = ctx.attrs().int("num_groups")?;
    for i in 1..3 {
        let t = ctx.input_type(i)?;
        if t.shape != [g as usize] {
            return Err(map_err!(
                "input {i} must have num_groups = {g} elements at opset 18, got {t}"
            ));
        }
    }
    let a = pick(ctx, &["num_groups", "epsilon"]);
    emit_with(ctx, a)
}

fn groupnorm_21(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let a = with_stash(ctx, pick(ctx, &["num_groups", "epsilon"]))?;
    emit_with(ctx, a)
}

fn rmsnorm(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let a = with_stash(ctx, pick(ctx, &["axis", "epsilon"]))?;
    emit_with(ctx, a)
}

pub fn register(r: &mut MappingRegistry) {
    r.add("", "BatchNormalization", 1, batchnorm_legacy);
    r.add("", "BatchNormalization", 14, batchnorm);
    r.add("", "LayerNormalization", 17, layernorm);
    r.add("", "InstanceNormalization", 1, instancenorm);
    r.add("", "GroupNormalization", 18, groupnorm_18);
    r.add("", "GroupNormalization", 21, groupnorm_21);
    r.add("", "RMSNormalization", 23, rmsnorm);
    r.same("LpNormalization", 1);
    r.same("LRN", 1);
    r.same("MeanVarianceNormalization", 9);
}
