//! Quantization: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear,
//! QLinearMatMul, QLinearConv (in `qconv.rs`).
//!
//! - `QuantizeLinear(x, scale[, zero_point])`: `y = saturate(round_half_even(x
//!   / scale) + zero_point)`. Attributes: `axis` (int, 1), `block_size` (int,
//!   0), `output_dtype` (dtype; used when `zero_point` is absent, default u8).
//!   Targets: i8, u8, i16, u16, i32. `scale`/`zero_point` are per-tensor (one
//!   element), per-axis (1-D, length `x.shape[axis]`) or blocked
//!   (`block_size > 0`: same rank as `x`, `ceil(x.shape[axis] / block_size)`
//!   along `axis`). The quotient is rounded to `x`'s float type first.
//! - `DequantizeLinear(x, scale[, zero_point])`: `y = (x - zero_point) *
//!   scale`, same `axis`/`block_size` rules; output dtype = `output_dtype`
//!   when set, else `scale`'s dtype.
//! - `DynamicQuantizeLinear(x)`: f32 in, outputs `y` (u8), `y_scale` (f32
//!   scalar), `y_zero_point` (u8 scalar), computed in f32 as ONNX specifies.
//! - `QLinearMatMul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp)`:
//!   `y = saturate(round_half_even((a - a_zp) @ (b - b_zp) * (a_scale *
//!   b_scale / y_scale)) + y_zp)`, the multiplier rounded in the scales' type.
//!   `a_scale`/`a_zp` may also hold one value per row of `a`, `b_scale`/`b_zp`
//!   one per column of `b`. Output dtype = `y_zp`'s.

use super::linalg::{matmul_raw, matmul_shape};
use super::util::{arity, norm_axis};
use crate::{dispatch_dtype, ensure, op_err, Attrs, DType, Elem, Registry, Result, Tensor};
use crate::{strides, TensorType};

#[path = "qconv.rs"]
mod qconv;

/// The representable range of an integer quantization target.
fn int_range(d: DType) -> Result<(f64, f64)> {
    Ok(match d {
        DType::I8 => (-128.0, 127.0),
        DType::U8 => (0.0, 255.0),
        DType::I16 => (-32768.0, 32767.0),
        DType::U16 => (0.0, 65535.0),
        DType::I32 => (i32::MIN as f64, i32::MAX as f64),
        DType::I4 => (-8.0, 7.0),
        DType::U4 => (0.0, 15.0),
        DType::I2 => (-2.0, 1.0),
        DType::U2 => (0.0, 3.0),
        d if is_float_quant(d) => (f64::NEG_INFINITY, f64::INFINITY),
        _ => return Err(op_err!("{d} is not a supported quantized type")),
    })
}

/// Rounds `v` to the precision of float dtype `d` (identity for non-floats).
fn round_to(d: DType, v: f64) -> f64 {
    crate::dispatch_float!(d, T => T::from_f64(v).to_f64(), _ => v)
}

/// Checks a scale / zero point shape against `x` and returns, for each element of `x`,
/// the flat index of its parameter.
fn param_index(p: &[usize], x: &[usize], axis: i64, block: i64) -> Result<Vec<usize>> {
    let n: usize = x.iter().product();
    if p.iter().product::<usize>() == 1 {
        return Ok(vec![0; n]);
    }
    let ax = norm_axis(axis, x.len())?;
    let xs = strides(x);
    if block <= 0 {
        ensure!(
            p.len() == 1 && p[0] == x[ax],
            "per-axis parameter of shape {p:?} does not match axis {ax} of {x:?}"
        );
        return Ok((0..n).map(|i| (i / xs[ax]) % x[ax]).collect());
    }
    let b = block as usize;
    let ok = p.len() == x.len()
        && (0..x.len()).all(|d| {
            if d == ax {
                p[d] == x[d].div_ceil(b)
            } else {
                p[d] == x[d]
            }
        });
    ensure!(
        ok,
        "blocked parameter of shape {p:?} does not match {x:?} (axis {ax}, block_size {b})"
    );
    let ps = strides(p);
    Ok((0..n)
        .map(|i| {
            (0..x.len())
                .map(|d| {
                    let c = (i / xs[d]) % x[d];
                    (if d == ax { c / b } else { c }) * ps[d]
                })
                .sum()
        })
        .collect())
}

/// Float8/float4 quantization targets: no rounding to integers; the final
/// cast rounds to the format (saturating unless `saturate` is 0).
fn is_float_quant(d: DType) -> bool {
    matches!(
        d,
        DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ | DType::F4E2M1
    )
}

fn quant_out_dtype(attrs: &Attrs, ins: &[&TensorType]) -> Result<DType> {
    let d = match ins.get(2) {
        Some(z) => z.dtype,
        None => attrs.opt_dtype("output_dtype")?.unwrap_or(DType::U8),
    };
    int_range(d)?;
    Ok(d)
}

fn quantize_infer(attrs: &Attrs, ins: &[&TensorType]) -> Result<TensorType> {
    arity(ins, 2, 3)?;
    ensure!(
        ins[0].dtype.is_float() || ins[0].dtype == DType::I32,
        "QuantizeLinear input must be float or i32, got {}",
        ins[0].dtype
    );
    let (axis, block) = (attrs.int_or("axis", 1)?, attrs.int_or("block_size", 0)?);
    for p in &ins[1..] {
        param_index(&p.shape, &ins[0].shape, axis, block)?;
    }
    Ok(TensorType::new(
        quant_out_dtype(attrs, ins)?,
        ins[0].shape.clone(),
    ))
}

/// The input values with, per element, the index of its scale and zero point
/// (per-tensor, per-axis or blocked).
struct Params {
    x: Vec<f64>,
    s: Vec<f64>,
    si: Vec<usize>,
    z: Vec<f64>,
    zi: Vec<usize>,
}

fn params(attrs: &Attrs, ins: &[&Tensor]) -> Result<Params> {
    let (axis, block) = (attrs.int_or("axis", 1)?, attrs.int_or("block_size", 0)?);
    let x = ins[0].to_f64_vec();
    let si = param_index(ins[1].shape(), ins[0].shape(), axis, block)?;
    let s = ins[1].to_f64_vec();
    let (zi, z) = match ins.get(2) {
        Some(z) => (
            param_index(z.shape(), ins[0].shape(), axis, block)?,
            z.to_f64_vec(),
        ),
        None => (vec![0; x.len()], vec![0.0]),
    };
    Ok(Params { x, s, si, z, zi })
}

fn quantize_eval(attrs: &Attrs, ins: &[&Tensor]) -> Result<Tensor> {
    let tys: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
    let ty = quantize_infer(attrs, &tys.iter().collect::<Vec<_>>())?;
    let Params { x, s, si, z, zi } = params(attrs, ins)?;
    let (lo, hi) = int_range(ty.dtype)?;
    let xd = ins[0].dtype();
    if is_float_quant(ty.dtype) {
        let q: Vec<f64> = (0..x.len())
            .map(|i| round_to(xd, x[i] / s[si[i]]) + z[zi[i]])
            .collect();
        let cast = Attrs::new()
            .with("to", crate::Attr::DType(ty.dtype))
            .with("saturate", crate::Attr::Int(attrs.int_or("saturate", 1)?));
        return super::cast::cast(&cast, &Tensor::from_vec(ty.shape, q)?);
    }
    let q: Vec<f64> = (0..x.len())
        .map(|i| {
            let v = round_to(xd, x[i] / s[si[i]]).round_ties_even() + z[zi[i]];
            if v.is_nan() {
                0.0
            } else {
                v.clamp(lo, hi)
            }
        })
        .collect();
    Ok(Tensor::from_vec(ty.shape, q)?.cast(ty.dtype))
}

fn dequantize_infer(attrs: &Attrs, ins: &[&TensorType]) -> Result<TensorType> {
    arity(ins, 2, 3)?;
    int_range(ins[0].dtype)?;
    ensure!(
        ins[1].dtype.is_float(),
        "DequantizeLinear scale must be float, got {}",
        ins[1].dtype
    );
    if let Some(z) = ins.get(2) {
        ensure!(
            z.dtype == ins[0].dtype,
            "zero point type {} differs from input type {}",
            z.dtype,
            ins[0].dtype
        );
    }
    let (axis, block) = (attrs.int_or("axis", 1)?, attrs.int_or("block_size", 0)?);
    for p in &ins[1..] {
        param_index(&p.shape, &ins[0].shape, axis, block)?;
    }
    let d = attrs.opt_dtype("output_dtype")?.unwrap_or(ins[1].dtype);
    ensure!(
        d.is_float(),
        "DequantizeLinear output must be float, got {d}"
    );
    Ok(TensorType::new(d, ins[0].shape.clone()))
}

fn dequantize_eval(attrs: &Attrs, ins: &[&Tensor]) -> Result<Tensor> {
    let tys: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
    let ty = dequantize_infer(attrs, &tys.iter().collect::<Vec<_>>())?;
    let Params { x, s, si, z, zi } = params(attrs, ins)?;
    // ONNX computes in f32 unless the scale is f64.
    let mid = if ins[1].dtype() == DType::F64 {
        DType::F64
    } else {
        DType::F32
    };
    let y: Vec<f64> = (0..x.len())
        .map(|i| round_to(mid, round_to(mid, x[i] - z[zi[i]]) * s[si[i]]))
        .collect();
    Ok(Tensor::from_vec(ty.shape, y)?.cast(ty.dtype))
}

fn dynamic_quantize(x: &Tensor) -> Result<Vec<Tensor>> {
    let v = x.as_slice::<f32>()?;
    let maxx = v.iter().fold(0f32, |a, &b| if b > a { b } else { a });
    let minx = v.iter().fold(0f32, |a, &b| if b < a { b } else { a });
    ensure!(
        maxx.is_finite() && minx.is_finite(),
        "DynamicQuantizeLinear input must be finite"
    );
    let range = if maxx == minx { 1.0 } else { maxx - minx };
    let scale = range / 255f32;
    let zp = (0f32 - minx / scale).clamp(0.0, 255.0).round_ties_even();
    let y: Vec<u8> = v
        .iter()
        .map(|&a| ((a / scale).round_ties_even() + zp).clamp(0.0, 255.0) as u8)
        .collect();
    Ok(vec![
        Tensor::from_vec(x.shape().to_vec(), y)?,
        Tensor::scalar(scale),
        Tensor::scalar(zp as u8),
    ])
}

/// A per-tensor or per-row/column parameter of QLinearMatMul, as a lookup by (row, col).
fn rowcol(p: &Tensor, len: usize, what: &str) -> Result<Vec<f64>> {
    let v = p.to_f64_vec();
    ensure!(
        p.rank() <= 1 && (v.len() == 1 || v.len() == len),
        "QLinearMatMul {what} of shape {:?} must be a scalar or have {len} values",
        p.shape()
    );
    Ok(v)
}

fn qlinear_matmul_infer(ins: &[&TensorType]) -> Result<TensorType> {
    arity(ins, 8, 8)?;
    for k in [0, 3] {
        ensure!(
            matches!(ins[k].dtype, DType::I8 | DType::U8),
            "QLinearMatMul needs int8/uint8 operands, got {}",
            ins[k].dtype
        );
    }
    for k in [1, 4, 6] {
        ensure!(
            ins[k].dtype.is_float(),
            "QLinearMatMul scales must be float"
        );
    }
    int_range(ins[7].dtype)?;
    Ok(TensorType::new(
        ins[7].dtype,
        matmul_shape(&ins[0].shape, &ins[3].shape)?,
    ))
}

fn qlinear_matmul_eval(ins: &[&Tensor]) -> Result<Tensor> {
    let tys: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
    let ty = qlinear_matmul_infer(&tys.iter().collect::<Vec<_>>())?;
    let (a, b) = (ins[0], ins[3]);
    ensure!(
        a.rank() >= 2 && b.rank() >= 2,
        "QLinearMatMul operands must be matrices"
    );
    let (m, n) = (a.shape()[a.rank() - 2], b.shape()[b.rank() - 1]);
    let k = a.shape()[a.rank() - 1];
    let (azp, bzp) = (
        rowcol(ins[2], m, "a_zero_point")?,
        rowcol(ins[5], n, "b_zero_point")?,
    );
    let (asc, bsc) = (rowcol(ins[1], m, "a_scale")?, rowcol(ins[4], n, "b_scale")?);
    let ysc = rowcol(ins[6], 1, "y_scale")?[0];
    let yzp = rowcol(ins[7], 1, "y_zero_point")?[0];
    let at = |v: &[f64], i: usize| if v.len() == 1 { v[0] } else { v[i] };
    let av: Vec<i64> = a
        .to_i64_vec()?
        .iter()
        .enumerate()
        .map(|(i, &x)| x - at(&azp, (i / k) % m) as i64)
        .collect();
    let bv: Vec<i64> = b
        .to_i64_vec()?
        .iter()
        .enumerate()
        .map(|(i, &x)| x - at(&bzp, i % n) as i64)
        .collect();
    let (shape, c) = matmul_raw(&av, a.shape(), &bv, b.shape())?;
    let sd = ins[1].dtype();
    let (lo, hi) = int_range(ty.dtype)?;
    let y: Vec<f64> = c
        .iter()
        .enumerate()
        .map(|(i, &acc)| {
            let (row, col) = ((i / n) % m, i % n);
            let mult = round_to(sd, round_to(sd, at(&asc, row) * at(&bsc, col)) / ysc);
            ((acc as i32) as f64 * mult + yzp)
                .round_ties_even()
                .clamp(lo, hi)
        })
        .collect();
    Ok(
        dispatch_dtype!(ty.dtype, T => Tensor::from_vec(shape, y.into_iter().map(T::from_f64).collect::<Vec<T>>())?),
    )
}

pub fn register(r: &mut Registry) {
    r.add(
        "QuantizeLinear",
        |a, ins, _| Ok(vec![quantize_infer(a, ins)?]),
        |a, ins, _| Ok(vec![quantize_eval(a, ins)?]),
    );
    r.add(
        "DequantizeLinear",
        |a, ins, _| Ok(vec![dequantize_infer(a, ins)?]),
        |a, ins, _| Ok(vec![dequantize_eval(a, ins)?]),
    );
    r.add(
        "DynamicQuantizeLinear",
        |_, ins, n| {
            arity(ins, 1, 1)?;
            ensure!(
                ins[0].dtype == DType::F32,
                "DynamicQuantizeLinear needs f32, got {}",
                ins[0].dtype
            );
            let all = [
                TensorType::new(DType::U8, ins[0].shape.clone()),
                TensorType::new(DType::F32, vec![]),
                TensorType::new(DType::U8, vec![]),
            ];
            ensure!(n <= 3, "DynamicQuantizeLinear has 3 outputs, {n} requested");
            Ok(all[..n.max(1)].to_vec())
        },
        |_, ins, n| {
            arity(ins, 1, 1)?;
            let mut v = dynamic_quantize(ins[0])?;
            v.truncate(n.max(1));
            Ok(v)
        },
    );
    r.add(
        "QLinearConv",
        |a, ins, _| Ok(vec![qconv::infer(a, ins)?]),
        |a, ins, _| Ok(vec![qconv::eval(a, ins)?]),
    );
    r.add(
        "QLinearMatMul",
        |_, ins, _| Ok(vec![qlinear_matmul_infer(ins)?]),
        |_, ins, _| Ok(vec![qlinear_matmul_eval(ins)?]),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_rounds_half_even_and_saturates() {
        let x = Tensor::from_vec(vec![4], vec![0.5f32, 1.5, 2.5, 1000.0]).unwrap();
        let s = Tensor::scalar(1f32);
        let z = Tensor::scalar(0i8);
        let y = quantize_eval(&Attrs::new(), &[&x, &s, &z]).unwrap();
        assert_eq!(y.as_slice::<i8>().unwrap(), &[0, 2, 2, 127]);
    }

    #[test]
    fn blocked_parameter_index() {
        // x [2, 5], blocks of 2 along axis 1 -> 3 blocks.
        let idx = param_index(&[2, 3], &[2, 5], 1, 2).unwrap();
        assert_eq!(idx, vec![0, 0, 1, 1, 2, 3, 3, 4, 4, 5]);
        assert!(param_index(&[2, 2], &[2, 5], 1, 2).is_err());
    }
}
