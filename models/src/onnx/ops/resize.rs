//! Resize (10, 11, 13, 18, 19) and Upsample (7, 9) onto Kiln's Resize, whose
//! `scales`, `sizes` and `roi` are full-rank attributes: the compile-time
//! `roi`/`scales`/`sizes` inputs, `axes` and `keep_aspect_ratio_policy` are
//! resolved here.
//!
//! Resize-10 and Upsample have no coordinate modes: they map to
//! `asymmetric` with Kiln's `simple` nearest rounding (onnxruntime's).
//!
//! Also GridSample (16, 20, 22; one-to-one) and AffineGrid (20; the `size`
//! input becomes an attribute).

use crate::onnx::{MappingRegistry, NodeCtx};
use crate::{map_err, MapError};
use kiln_ir::{Attr, Attrs, Op};

/// Emits a Kiln Resize of input 0 with full-rank `scales` and `sizes`.
fn emit(
    ctx: &mut NodeCtx,
    mut attrs: Attrs,
    scales: Vec<f64>,
    sizes: Vec<i64>,
) -> Result<(), MapError> {
    attrs.set("scales", Attr::Floats(scales));
    attrs.set("sizes", Attr::Ints(sizes));
    let x = ctx.input(0)?;
    ctx.emit(
        Op {
            kind: "Resize".into(),
            attrs,
        },
        &[x],
    )?;
    Ok(())
}

/// Legacy forms (Upsample, Resize-10): scales only, asymmetric coordinates.
fn legacy(ctx: &mut NodeCtx, scales: Vec<f64>) -> Result<(), MapError> {
    let shape = ctx.input_type(0)?.shape;
    if scales.len() != shape.len() {
        return Err(map_err!(
            "scales {scales:?} must have one value per axis of {shape:?}"
        ));
    }
    let mode = match ctx.attrs().str_or("mode", "nearest")? {
        "nearest" => "nearest",
        "linear" | "bilinear" => "linear",
        m => {
            return Err(MapError::Unsupported(format!(
                "{} mode `{m}`",
                ctx.op_type()
            )))
        }
    };
    let sizes = shape
        .iter()
        .zip(&scales)
        .map(|(&d, s)| (d as f64 * s).floor() as i64)
        .collect();
    let attrs = Attrs::new()
        .with("mode", Attr::Str(mode.into()))
        .with(
            "coordinate_transformation_mode",
            Attr::Str("asymmetric".into()),
        )
        .with("nearest_mode", Attr::Str("simple".into()));
    emit(ctx, attrs, scales, sizes)
}

fn upsample7(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let scales = ctx.attrs().floats("scales")?;
    legacy(ctx, scales)
}

fn upsample9(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let scales = ctx
        .const_input(1)?
        .ok_or_else(|| map_err!("scales input is missing"))?;
    legacy(ctx, scales.to_f64_vec())
}

/// Reads an optional float input, treating an empty tensor as absent.
fn opt_floats(ctx: &mut NodeCtx, i: usize) -> Result<Option<Vec<f64>>, MapError> {
    Ok(ctx
        .const_input(i)?
        .map(|t| t.to_f64_vec())
        .filter(|v| !v.is_empty()))
}

fn resize11(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let shape = ctx.input_type(0)?.shape;
    let r = shape.len();
    let roi = opt_floats(ctx, 1)?;
    let scales = opt_floats(ctx, 2)?;
    let sizes = ctx.const_ints(3)?.filter(|v| !v.is_empty());
    let mut attrs = ctx.attrs().clone();
    let axes = match attrs.opt_ints("axes")? {
        None => (0..r).collect(),
        Some(a) => kiln_ir::ops::util::norm_axes(&a, r)?,
    };
    for k in ["axes", "keep_aspect_ratio_policy"] {
        attrs.0.remove(k);
    }
    let n = axes.len();
    let tf_crop = attrs.str_or("coordinate_transformation_mode", "")? == "tf_crop_and_resize";
    if let (Some(roi), true) = (roi, tf_crop) {
        if roi.len() != 2 * n {
            return Err(map_err!("roi {roi:?} needs {} values", 2 * n));
        }
        let mut full = [vec![0.0; r], vec![1.0; r]].concat();
        for (k, &a) in axes.iter().enumerate() {
            (full[a], full[r + a]) = (roi[k], roi[n + k]);
        }
        attrs.set("roi", Attr::Floats(full));
    }
    let mut full_scales = vec![1.0; r];
    let mut full_sizes: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    match (scales, sizes) {
        (Some(s), None) => {
            if s.len() != n {
                return Err(map_err!("scales {s:?} needs {n} values"));
            }
            for (k, &a) in axes.iter().enumerate() {
                full_scales[a] = s[k];
                full_sizes[a] = (shape[a] as f64 * s[k]).floor() as i64;
            }
        }
        (None, Some(s)) => {
            if s.len() != n {
                return Err(map_err!("sizes {s:?} needs {n} values"));
            }
            let ratio = |k: usize| s[k] as f64 / shape[axes[k]] as f64;
            let policy = ctx.attrs().str_or("keep_aspect_ratio_policy", "stretch")?;
            let keep = match policy {
                "stretch" => None,
                "not_larger" => Some((0..n).map(ratio).fold(f64::INFINITY, f64::min)),
                "not_smaller" => Some((0..n).map(ratio).fold(f64::NEG_INFINITY, f64::max)),
                p => return Err(map_err!("unknown keep_aspect_ratio_policy `{p}`")),
            };
            for (k, &a) in axes.iter().enumerate() {
                full_scales[a] = keep.unwrap_or_else(|| ratio(k));
                full_sizes[a] = match keep {
                    None => s[k],
                    Some(sc) => (sc * shape[a] as f64 + 0.5).floor() as i64,
                };
            }
        }
        _ => return Err(map_err!("Resize needs exactly one of scales and sizes")),
    }
    emit(ctx, attrs, full_scales, full_sizes)
}

fn resize10(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let scales = ctx
        .const_input(1)?
        .ok_or_else(|| map_err!("scales input is missing"))?;
    legacy(ctx, scales.to_f64_vec())
}

/// AffineGrid: the `size` input becomes an attribute.
fn affine_grid(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let size = ctx
        .const_ints(1)?
        .ok_or_else(|| map_err!("size input is missing"))?;
    let mut attrs = ctx.attrs().clone();
    attrs.set("size", Attr::Ints(size));
    let theta = ctx.input(0)?;
    ctx.emit(
        Op {
            kind: "AffineGrid".into(),
            attrs,
        },
        &[theta],
    )?;
    Ok(())
}

pub fn register(r: &mut MappingRegistry) {
    // GridSample-16's `bilinear`/`bicubic` modes are accepted as `linear`/`cubic`.
    r.same("GridSample", 16);
    r.add("", "AffineGrid", 20, affine_grid);
    r.add("", "Upsample", 7, upsample7);
    r.add("", "Upsample", 9, upsample9);
    r.add("", "Resize", 10, resize10);
    r.add("", "Resize", 11, resize11);
}
