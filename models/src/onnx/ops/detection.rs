//! Detection mappings: `NonMaxSuppression`, folded at import when all its
//! inputs are compile-time constants (its output shape depends on the values).

use crate::onnx::{MappingRegistry, NodeCtx};
use crate::MapError;
use kiln_ir::ops::detection::{non_max_suppression, NmsParams};

/// The value of input `i` (absent: `None`), or `Unsupported` when it is only known at run time.
fn fold_input(ctx: &mut NodeCtx, i: usize) -> Result<Option<kiln_ir::Tensor>, MapError> {
    let Some(v) = ctx.opt_input(i)? else {
        return Ok(None);
    };
    match ctx.try_const(v)? {
        Some(t) => Ok(Some((*t).clone())),
        None => Err(MapError::Unsupported(format!(
            "NonMaxSuppression with a run-time input {i}: its output shape depends on the values"
        ))),
    }
}

/// A scalar input's value; `None` when absent or empty.
fn scalar(t: Option<kiln_ir::Tensor>) -> Result<Option<f64>, MapError> {
    match t {
        Some(t) if !t.is_empty() => Ok(Some(t.to_f64_vec()[0])),
        _ => Ok(None),
    }
}

fn nms(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let boxes = fold_input(ctx, 0)?.ok_or_else(|| crate::map_err!("missing boxes"))?;
    let scores = fold_input(ctx, 1)?.ok_or_else(|| crate::map_err!("missing scores"))?;
    let max = scalar(fold_input(ctx, 2)?)?.unwrap_or(0.0);
    let p = NmsParams {
        max_per_class: max as i64,
        iou_threshold: scalar(fold_input(ctx, 3)?)?.unwrap_or(0.0),
        score_threshold: scalar(fold_input(ctx, 4)?)?,
        center_point_box: ctx.attrs().int_or("center_point_box", 0)?,
    };
    let out = non_max_suppression(&boxes, &scores, p)?;
    ctx.const_output(0, out)
}

pub fn register(r: &mut MappingRegistry) {
    r.add("", "NonMaxSuppression", 10, nms);
}
