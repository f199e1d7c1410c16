//! Miscellaneous ops: Dropout (inference only), window functions,
//! Attention, RotaryEmbedding, DFT, STFT, MelWeightMatrix.
//!
//! - Dropout: the output names the input (no node); the optional mask is a
//!   constant all-true bool tensor. A `training_mode` that is true with a
//!   non-zero ratio is unsupported (the result would be random).
//! - HannWindow / HammingWindow / BlackmanWindow: the `size` input must be
//!   known at compile time and becomes the Kiln attribute `size`; the window
//!   is then folded to a constant. MelWeightMatrix likewise (all inputs).
//! - DFT / STFT: `dft_length`, `axis`, `frame_step`, `frame_length` inputs
//!   must be compile-time constants and become attributes.

use crate::onnx::tensor::dtype_from_onnx;
use crate::onnx::{MappingRegistry, NodeCtx};
use crate::{map_err, MapError};
use kiln_ir::{Attr, DType, Op, Tensor};

/// Output and mask of a Dropout that keeps everything.
fn dropout_identity(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let x = ctx.input(0)?;
    ctx.alias_output(0, x);
    if ctx.has_output(1) {
        let shape = ctx.ty(x).shape.clone();
        let n = shape.iter().product();
        let mask_dtype = if ctx.opset >= 10 {
            DType::Bool
        } else {
            ctx.ty(x).dtype
        };
        let mask = Tensor::from_vec(shape, vec![true; n])?.cast(mask_dtype);
        ctx.const_output(1, mask)?;
    }
    Ok(())
}

/// Dropout 7 and 10: `ratio` attribute, always inference.
fn dropout_7(ctx: &mut NodeCtx) -> Result<(), MapError> {
    dropout_identity(ctx)
}

/// Dropout 12+: `ratio` and `training_mode` inputs.
fn dropout_12(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let training = match ctx.opt_input(2)? {
        None => false,
        Some(_) => ctx
            .const_input(2)?
            .map(|t| t.scalar_f64())
            .transpose()?
            .is_some_and(|v| v != 0.0),
    };
    if training {
        let ratio = match ctx.opt_input(1)? {
            None => 0.5,
            Some(_) => ctx
                .const_input(1)?
                .map(|t| t.scalar_f64())
                .transpose()?
                .unwrap_or(0.5),
        };
        if ratio != 0.0 {
            return Err(MapError::Unsupported(
                "Dropout in training mode (random output)".into(),
            ));
        }
    }
    dropout_identity(ctx)
}

/// Window functions: constant `size` input -> attribute, then folded.
fn window(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let size = ctx
        .const_ints(0)?
        .and_then(|v| v.first().copied())
        .ok_or_else(|| map_err!("window size is missing"))?;
    let code = ctx.attrs().int_or("output_datatype", 1)?;
    let op = Op::new(ctx.op_type())
        .with("size", Attr::Int(size))
        .with("periodic", Attr::Int(ctx.attrs().int_or("periodic", 1)?))
        .with(
            "output_datatype",
            Attr::DType(dtype_from_onnx(code as i32)?),
        );
    ctx.emit(op, &[])?;
    Ok(())
}

/// Attention 23/24: an omitted mask before later inputs becomes a zero
/// additive bias, omitted past key/value before `nonpad_kv_seqlen` become
/// empty tensors.
fn attention(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let mut ins = vec![ctx.input(0)?, ctx.input(1)?, ctx.input(2)?];
    let (mask, pk, pv) = (ctx.opt_input(3)?, ctx.opt_input(4)?, ctx.opt_input(5)?);
    let nonpad = ctx.opt_input(6)?;
    let q = ctx.input_type(0)?;
    let zero_mask = |ctx: &mut NodeCtx| ctx.constant(Tensor::zeros(q.dtype, vec![]));
    match (pk, pv) {
        (Some(k), Some(v)) => {
            let m = match mask {
                Some(m) => m,
                None => zero_mask(ctx)?,
            };
            ins.extend([m, k, v]);
        }
        (None, None) if nonpad.is_some() => {
            // Empty past key / value: [B, Hkv, 0, head size].
            let m = match mask {
                Some(m) => m,
                None => zero_mask(ctx)?,
            };
            ins.push(m);
            for i in [1, 2] {
                let t = ctx.input_type(i)?;
                let s = match (t.shape.as_slice(), ctx.attrs().opt_int("kv_num_heads")?) {
                    (&[b, h, _, d], _) => vec![b, h, 0, d],
                    (&[b, _, hid], Some(h)) if h > 0 => vec![b, h as usize, 0, hid / h as usize],
                    _ => return Err(map_err!("cannot infer the head layout of input {i}")),
                };
                ins.push(ctx.constant(Tensor::zeros(t.dtype, s))?);
            }
        }
        (None, None) => ins.extend(mask),
        _ => return Err(map_err!("past_key and past_value must come together")),
    }
    ins.extend(nonpad);
    let op = Op {
        kind: "Attention".into(),
        attrs: ctx.attrs().clone(),
    };
    ctx.emit(op, &ins)?;
    Ok(())
}

/// A scalar compile-time input (first element), `None` when absent.
fn const_scalar(ctx: &mut NodeCtx, i: usize) -> Result<Option<f64>, MapError> {
    Ok(match ctx.const_input(i)? {
        Some(t) => Some(
            t.to_f64_vec()
                .first()
                .copied()
                .ok_or_else(|| map_err!("input {i} is empty"))?,
        ),
        None => None,
    })
}

/// DFT 17 (`axis` attribute) and 20 (`axis` input): constant `dft_length`
/// and `axis` become attributes.
fn dft(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let mut attrs = ctx.attrs().clone();
    if let Some(l) = const_scalar(ctx, 1)? {
        attrs.set("dft_length", Attr::Int(l as i64));
    }
    let axis = if ctx.opset >= 20 {
        const_scalar(ctx, 2)?.map_or(-2, |a| a as i64)
    } else {
        attrs.int_or("axis", 1)?
    };
    attrs.set("axis", Attr::Int(axis));
    let x = ctx.input(0)?;
    ctx.emit(
        Op {
            kind: "DFT".into(),
            attrs,
        },
        &[x],
    )?;
    Ok(())
}

/// STFT 17: constant `frame_step` / `frame_length` become attributes.
fn stft(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let x = ctx.input(0)?;
    let step = const_scalar(ctx, 1)?.ok_or_else(|| map_err!("STFT needs frame_step"))?;
    let window = ctx.opt_input(2)?;
    let fl = match const_scalar(ctx, 3)? {
        Some(l) => l as i64,
        None => match window {
            Some(w) => ctx.ty(w).shape.first().copied().unwrap_or(0) as i64,
            None => ctx.ty(x).shape.get(1).copied().unwrap_or(0) as i64,
        },
    };
    let op = Op::new("STFT")
        .with("frame_step", Attr::Int(step as i64))
        .with("frame_length", Attr::Int(fl))
        .with("onesided", Attr::Int(ctx.attrs().int_or("onesided", 1)?));
    let mut ins = vec![x];
    ins.extend(window);
    ctx.emit(op, &ins)?;
    Ok(())
}

/// MelWeightMatrix 17: all five inputs must be constants; folded.
fn mel_weight_matrix(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let mut v = Vec::new();
    for i in 0..5 {
        v.push(const_scalar(ctx, i)?.ok_or_else(|| map_err!("input {i} is missing"))?);
    }
    let edge = ctx.input_type(3)?.dtype;
    let code = ctx.attrs().int_or("output_datatype", 1)?;
    let op = Op::new("MelWeightMatrix")
        .with("num_mel_bins", Attr::Int(v[0] as i64))
        .with("dft_length", Attr::Int(v[1] as i64))
        .with("sample_rate", Attr::Int(v[2] as i64))
        .with("lower_edge_hertz", Attr::Float(v[3]))
        .with("upper_edge_hertz", Attr::Float(v[4]))
        .with("edge_dtype", Attr::DType(edge))
        .with(
            "output_datatype",
            Attr::DType(dtype_from_onnx(code as i32)?),
        );
    ctx.emit(op, &[])?;
    Ok(())
}

pub fn register(r: &mut MappingRegistry) {
    r.add("", "DFT", 17, dft);
    r.add("", "STFT", 17, stft);
    r.add("", "MelWeightMatrix", 17, mel_weight_matrix);
    r.add("", "Attention", 23, attention);
    r.same("RotaryEmbedding", 23);
    r.add("", "Dropout", 7, dropout_7);
    r.add("", "Dropout", 12, dropout_12);
    for op in ["HannWindow", "HammingWindow", "BlackmanWindow"] {
        r.add("", op, 17, window);
    }
}
