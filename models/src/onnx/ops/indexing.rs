//! Indexing mappings: Gather, GatherElements, GatherND, ScatterElements,
//! ScatterND, Scatter (the deprecated name of ScatterElements), OneHot, and the
//! data-dependent Compress, NonZero and Unique, which Kiln supports only when
//! the deciding input is a compile-time constant (folded at import).

use crate::onnx::{MappingRegistry, NodeCtx};
use crate::{map_err, MapError};
use kiln_ir::ops::indexing as ix;
use kiln_ir::{Attr, Op, Tensor};

fn scatter(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let mut op = Op::new("ScatterElements");
    op.attrs = ctx.attrs().clone();
    let ins = ctx.inputs()?;
    ctx.emit(op, &ins)?;
    Ok(())
}

fn onehot(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let depth = ctx
        .const_input(1)?
        .ok_or_else(|| map_err!("OneHot needs a depth"))?
        .scalar_f64()?;
    if !(1.0..1e12).contains(&depth) {
        return Err(map_err!("OneHot depth {depth} is not a positive size"));
    }
    let op = Op::new("OneHot")
        .with("depth", Attr::Int(depth as i64))
        .with("axis", Attr::Int(ctx.attrs().int_or("axis", -1)?));
    let (i, v) = (ctx.input(0)?, ctx.input(2)?);
    ctx.emit(op, &[i, v])?;
    Ok(())
}

/// Compile-time value of input `i`, or `Unsupported` naming the op.
fn need_const(ctx: &mut NodeCtx, i: usize, what: &str) -> Result<Tensor, MapError> {
    let v = ctx.input(i)?;
    match ctx.try_const(v)? {
        Some(t) => Ok((*t).clone()),
        None => Err(MapError::Unsupported(format!(
            "{} with a run-time {what}: its output shape depends on the values",
            ctx.op_type()
        ))),
    }
}

fn compress(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let cond = need_const(ctx, 1, "condition")?;
    let ty = ctx.input_type(0)?;
    let mut x = ctx.input(0)?;
    let axis = match ctx.attrs().opt_int("axis")? {
        Some(a) => a,
        None => {
            let flat = Op::new("Reshape").with("shape", Attr::Ints(vec![-1]));
            x = ctx.emit1(flat, &[x])?;
            0
        }
    };
    let r = ty.rank().max(1) as i64;
    let d = if ctx.attrs().contains("axis") {
        let ax = if axis < 0 { axis + r } else { axis };
        *ty.shape
            .get(usize::try_from(ax).map_err(|_| map_err!("bad axis {axis}"))?)
            .ok_or_else(|| map_err!("axis {axis} out of range"))?
    } else {
        ty.numel()
    };
    let pos = ix::compress_indices(&cond, d)?;
    let idx = ctx.constant(Tensor::from_i64s(&pos))?;
    let op = Op::new("Gather").with("axis", Attr::Int(axis));
    ctx.emit(op, &[x, idx])?;
    Ok(())
}

fn nonzero(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let x = need_const(ctx, 0, "input")?;
    ctx.const_output(0, ix::nonzero(&x)?)
}

fn unique(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let x = need_const(ctx, 0, "input")?;
    let axis = ctx.attrs().opt_int("axis")?;
    let sorted = ctx.attrs().int_or("sorted", 1)? != 0;
    for (k, t) in ix::unique(&x, axis, sorted)?.into_iter().enumerate() {
        ctx.const_output(k, t)?;
    }
    Ok(())
}

pub fn register(r: &mut MappingRegistry) {
    r.same("Gather", 1);
    r.same("GatherElements", 11);
    r.same("GatherND", 11);
    r.same("ScatterElements", 11);
    r.same("ScatterND", 11);
    r.add("", "Scatter", 9, scatter);
    r.add("", "OneHot", 9, onehot);
    r.add("", "Compress", 9, compress);
    r.add("", "NonZero", 9, nonzero);
    r.add("", "Unique", 11, unique);
}
