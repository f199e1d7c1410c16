//! Reductions and scans: Reduce* (axes as an attribute before opset 18 —
//! ReduceSum 13 — and as a compile-time input after), ArgMax/ArgMin, CumSum,
//! CumProd (axis input) and TopK (k attribute before opset 10, input after).
//! Inputs that are parameters become attributes of the Kiln op.

use crate::onnx::{MappingRegistry, NodeCtx};
use crate::{map_err, MapError};
use kiln_ir::{Attr, Op};

const REDUCE_OPS: [&str; 10] = [
    "ReduceSum",
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceSumSquare",
];

/// Emits the Kiln op of the node's name on input 0 with `attrs`.
fn emit_unary(ctx: &mut NodeCtx, attrs: kiln_ir::Attrs) -> Result<(), MapError> {
    let x = ctx.input(0)?;
    let op = Op {
        kind: ctx.op_type().to_string(),
        attrs,
    };
    ctx.emit(op, &[x])?;
    Ok(())
}

/// Reduce* with `axes` given as an (optional) input 1.
fn reduce_axes_input(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let mut attrs = ctx.attrs().clone();
    if let Some(axes) = ctx.const_ints(1)? {
        attrs.set("axes", Attr::Ints(axes));
    }
    emit_unary(ctx, attrs)
}

/// Reads a one-element compile-time input as an integer.
fn scalar_input(ctx: &mut NodeCtx, i: usize, what: &str) -> Result<i64, MapError> {
    match ctx.const_ints(i)?.as_deref() {
        Some([v]) => Ok(*v),
        Some(v) => Err(map_err!("{what} must hold one value, got {}", v.len())),
        None => Err(map_err!("{what} input is missing")),
    }
}

/// CumSum/CumProd: the axis input becomes the `axis` attribute.
fn cumulative(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let axis = scalar_input(ctx, 1, "axis")?;
    let attrs = ctx.attrs().clone().with("axis", Attr::Int(axis));
    emit_unary(ctx, attrs)
}

/// TopK from opset 10: the k input becomes the `k` attribute.
fn topk_input(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let k = scalar_input(ctx, 1, "k")?;
    let attrs = ctx.attrs().clone().with("k", Attr::Int(k));
    emit_unary(ctx, attrs)
}

pub fn register(r: &mut MappingRegistry) {
    for op in REDUCE_OPS {
        r.same(op, 1);
        let since = if op == "ReduceSum" { 13 } else { 18 };
        r.add("", op, since, reduce_axes_input);
    }
    r.same("ArgMax", 1);
    r.same("ArgMin", 1);
    r.add("", "CumSum", 11, cumulative);
    r.add("", "CumProd", 26, cumulative);
    r.same("TopK", 1);
    r.add("", "TopK", 10, topk_input);
}
