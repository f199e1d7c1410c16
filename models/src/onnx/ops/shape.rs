//! Shape manipulation mappings: Reshape, Flatten, Squeeze, Unsqueeze,
//! Transpose, Concat, Split, Slice, Pad, Tile, Expand, DepthToSpace,
//! SpaceToDepth, Trilu, EyeLike, ReverseSequence, CenterCropPad, and the
//! import-time folds Shape, Size, ConstantOfShape and Range.
//!
//! ONNX inputs that fix shapes (Reshape shape, axes, Slice bounds, pads, Tile
//! repeats, Expand shape, Split sizes, Trilu k, ...) must be compile-time
//! values; they become attributes of the Kiln op. Older opsets' attribute
//! forms map onto the same Kiln ops.

use crate::onnx::{MappingRegistry, NodeCtx};
use crate::{map_err, MapError};
use kiln_ir::{numel, Attr, DType, Op, Tensor};

/// Compile-time integer input `i`, which must be present.
fn req_ints(ctx: &mut NodeCtx, i: usize, what: &str) -> Result<Vec<i64>, MapError> {
    ctx.const_ints(i)?
        .ok_or_else(|| map_err!("input {i} ({what}) is required"))
}

/// Emits `kind` on input 0 with the node's attributes plus `extra`.
fn emit_with(ctx: &mut NodeCtx, kind: &str, extra: Vec<(&str, Attr)>) -> Result<(), MapError> {
    let mut op = Op::new(kind);
    op.attrs = ctx.attrs().clone();
    for (k, v) in extra {
        op.attrs.set(k, v);
    }
    let x = ctx.input(0)?;
    ctx.emit(op, &[x])?;
    Ok(())
}

fn reshape_v1(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let shape = ctx.attrs().ints("shape")?;
    let x = ctx.input(0)?;
    ctx.emit(Op::new("Reshape").with("shape", Attr::Ints(shape)), &[x])?;
    Ok(())
}

fn reshape_v5(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let shape = req_ints(ctx, 1, "shape")?;
    let allowzero = ctx.attrs().int_or("allowzero", 0)?;
    let x = ctx.input(0)?;
    let op = Op::new("Reshape")
        .with("shape", Attr::Ints(shape))
        .with("allowzero", Attr::Int(allowzero));
    ctx.emit(op, &[x])?;
    Ok(())
}

/// Squeeze/Unsqueeze from opset 13: `axes` is input 1.
fn axes_input(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let kind = ctx.op_type().to_string();
    let mut extra = vec![];
    if let Some(axes) = ctx.const_ints(1)? {
        extra.push(("axes", Attr::Ints(axes)));
    }
    emit_with(ctx, &kind, extra)
}

fn concat(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let axis = match ctx.attrs().opt_int("axis")? {
        Some(a) => a,
        None if ctx.opset < 4 => 1,
        None => return Err(map_err!("Concat needs an `axis` attribute")),
    };
    let ins = ctx.inputs()?;
    ctx.emit(Op::new("Concat").with("axis", Attr::Int(axis)), &ins)?;
    Ok(())
}

/// Split, every opset: sizes from the `split` attribute or input 1, else
/// `num_outputs` (opset 18) or the number of outputs, cut in ceil-sized chunks.
fn split(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let a = ctx.attrs();
    let axis = a.int_or("axis", 0)?;
    let mut sizes = a.opt_ints("split")?;
    let num = a.opt_int("num_outputs")?;
    if sizes.is_none() && ctx.num_inputs() > 1 {
        sizes = ctx.const_ints(1)?;
    }
    let ty = ctx.input_type(0)?;
    let n = ctx.num_outputs().max(1);
    let sizes = match sizes {
        Some(s) => s,
        None => {
            let k = num
                .unwrap_or(ctx.node.output.len() as i64)
                .clamp(1, 1 << 16) as usize;
            let r = ty.rank() as i64;
            let ax = if axis < 0 { axis + r } else { axis };
            let d = *ty
                .shape
                .get(usize::try_from(ax).map_err(|_| map_err!("bad axis {axis}"))?)
                .ok_or_else(|| map_err!("axis {axis} out of range"))?;
            if num.is_none() && !d.is_multiple_of(k) {
                return Err(map_err!("dim {d} does not split into {k} equal parts"));
            }
            let c = d.div_ceil(k);
            (0..k)
                .map(|i| c.min(d.saturating_sub(i * c)) as i64)
                .collect()
        }
    };
    if sizes.len() < n {
        return Err(map_err!("{n} outputs for {} parts", sizes.len()));
    }
    let op = Op::new("Split")
        .with("axis", Attr::Int(axis))
        .with("split", Attr::Ints(sizes));
    let x = ctx.input(0)?;
    ctx.emit(op, &[x])?;
    Ok(())
}

fn slice_v1(ctx: &mut NodeCtx) -> Result<(), MapError> {
    emit_with(ctx, "Slice", vec![])
}

fn slice_v10(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let mut extra = vec![
        ("starts", Attr::Ints(req_ints(ctx, 1, "starts")?)),
        ("ends", Attr::Ints(req_ints(ctx, 2, "ends")?)),
    ];
    if let Some(axes) = ctx.const_ints(3)? {
        extra.push(("axes", Attr::Ints(axes)));
    }
    if let Some(steps) = ctx.const_ints(4)? {
        extra.push(("steps", Attr::Ints(steps)));
    }
    emit_with(ctx, "Slice", extra)
}

fn pad_v2(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let a = ctx.attrs();
    let pads = match a.opt_ints("pads")? {
        Some(p) => p,
        None => a.ints("paddings")?,
    };
    let mut op = Op::new("Pad")
        .with("pads", Attr::Ints(pads))
        .with("constant_value", Attr::Float(a.float_or("value", 0.0)?));
    op.attrs
        .set("mode", Attr::Str(a.str_or("mode", "constant")?.into()));
    let x = ctx.input(0)?;
    ctx.emit(op, &[x])?;
    Ok(())
}

fn pad_v11(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let mode = ctx.attrs().str_or("mode", "constant")?.to_string();
    let mut op = Op::new("Pad")
        .with("pads", Attr::Ints(req_ints(ctx, 1, "pads")?))
        .with("mode", Attr::Str(mode));
    if let Some(v) = ctx.const_input(2)? {
        if !v.is_empty() {
            op.attrs.set("constant_value", Attr::Float(v.scalar_f64()?));
        }
    }
    if let Some(axes) = ctx.const_ints(3)? {
        op.attrs.set("axes", Attr::Ints(axes));
    }
    let x = ctx.input(0)?;
    ctx.emit(op, &[x])?;
    Ok(())
}

/// Ops whose input 1 becomes the integer-list attribute `name`.
fn ints_input(ctx: &mut NodeCtx, kind: &str, name: &str) -> Result<(), MapError> {
    let v = req_ints(ctx, 1, name)?;
    emit_with(ctx, kind, vec![(name, Attr::Ints(v))])
}

fn trilu(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let mut extra = vec![];
    if let Some(k) = ctx.const_ints(1)? {
        let k = *k.first().ok_or_else(|| map_err!("Trilu k is empty"))?;
        extra.push(("k", Attr::Int(k)));
    }
    emit_with(ctx, "Trilu", extra)
}

fn eyelike(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let mut extra = vec![];
    if ctx.attrs().contains("dtype") {
        extra.push(("dtype", Attr::DType(ctx.dtype_attr("dtype")?)));
    }
    emit_with(ctx, "EyeLike", extra)
}

fn shape(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let dims = ctx.input_type(0)?.shape;
    let r = dims.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = clamp(ctx.attrs().int_or("start", 0)?);
    let end = clamp(ctx.attrs().int_or("end", r)?);
    let v: Vec<i64> = dims[start..end.max(start)]
        .iter()
        .map(|&d| d as i64)
        .collect();
    ctx.const_output(0, Tensor::from_i64s(&v))
}

fn size(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let n = numel(&ctx.input_type(0)?.shape) as i64;
    ctx.const_output(0, Tensor::scalar(n))
}

fn constant_of_shape(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let dims = req_ints(ctx, 0, "shape")?;
    let shape = dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| map_err!("negative dimension {d}")))
        .collect::<Result<Vec<_>, _>>()?;
    let value = match ctx.attrs().opt_tensor("value")? {
        Some(t) => (**t).clone(),
        None => Tensor::scalar(0f32),
    };
    if value.len() != 1 {
        return Err(map_err!("ConstantOfShape value must hold one element"));
    }
    let one = value.reshape(vec![1])?;
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= ctx.limits().max_tensor_elements)
        .ok_or_else(|| {
            map_err!(
                "shape {shape:?} exceeds the limit of {} elements per tensor",
                ctx.limits().max_tensor_elements
            )
        })?;
    let out = kiln_ir::ops::util::take_flat(&one, shape, &vec![0; n])?;
    ctx.const_output(0, out)
}

fn range(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let mut vals = Vec::new();
    for i in 0..3 {
        vals.push(
            ctx.const_input(i)?
                .ok_or_else(|| map_err!("Range needs 3 inputs"))?,
        );
    }
    let d = vals[0].dtype();
    let mut op = Op::new("Range").with("dtype", Attr::DType(d));
    for (name, v) in ["start", "limit", "delta"].iter().zip(&vals) {
        let a = if d.is_float() {
            Attr::Float(v.scalar_f64()?)
        } else {
            let i = v.to_i64_vec()?;
            Attr::Int(*i.first().ok_or_else(|| map_err!("empty Range {name}"))?)
        };
        op.attrs.set(name, a);
    }
    if d == DType::Bool {
        return Err(MapError::Unsupported("Range of bool".into()));
    }
    ctx.emit(op, &[])?;
    Ok(())
}

pub fn register(r: &mut MappingRegistry) {
    r.add("", "Reshape", 1, reshape_v1);
    r.add("", "Reshape", 5, reshape_v5);
    r.same("Flatten", 1);
    r.same("Squeeze", 1);
    r.add("", "Squeeze", 13, axes_input);
    r.same("Unsqueeze", 1);
    r.add("", "Unsqueeze", 13, axes_input);
    r.same("Transpose", 1);
    r.add("", "Concat", 1, concat);
    r.add("", "Split", 1, split);
    r.add("", "Slice", 1, slice_v1);
    r.add("", "Slice", 10, slice_v10);
    r.add("", "Pad", 1, pad_v2);
    r.add("", "Pad", 11, pad_v11);
    r.add("", "Tile", 6, |ctx| ints_input(ctx, "Tile", "repeats"));
    r.add("", "Expand", 8, |ctx| ints_input(ctx, "Expand", "shape"));
    r.add("", "CenterCropPad", 18, |ctx| {
        ints_input(ctx, "CenterCropPad", "shape")
    });
    r.same("DepthToSpace", 1);
    r.same("SpaceToDepth", 1);
    r.add("", "Trilu", 14, trilu);
    r.add("", "EyeLike", 9, eyelike);
    r.same("ReverseSequence", 10);
    r.add("", "Shape", 1, shape);
    r.add("", "Size", 1, size);
    r.add("", "ConstantOfShape", 9, constant_of_shape);
    r.add("", "Range", 11, range);
}
