//! Group normalization (and instance normalization, one channel a group) of
//! an f32 `[N, C, inner...]` tensor: each (n, group) row of `C/G · inner`
//! contiguous elements is normalised by its mean and biased variance, then
//! each channel's `inner` elements get that channel's scale and bias.
//!
//! Mean and variance take two passes (no cancellation); the AVX-512 path
//! uses masked tails. Threads split the rows.

use super::epilogue::lanes;
use super::par::{split, tasks_for, SendPtr};
use super::rows::check_input;
use super::{invalid, need};
use crate::CodegenError;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// The shape and parameters of a group normalization.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupNormDesc {
    pub batch: usize,
    pub channels: usize,
    pub groups: usize,
    /// Elements per channel (the product of the spatial dims).
    pub inner: usize,
    pub eps: f32,
}

/// `y = (x - mean) / sqrt(var + eps) * scale[c] + bias[c]` per group;
/// `scale` and `bias` hold one value per channel.
pub fn group_norm_f32(
    x: &[f32],
    scale: &[f32],
    bias: &[f32],
    y: &mut [f32],
    d: GroupNormDesc,
    threads: usize,
) -> Result<(), CodegenError> {
    if d.groups == 0 || !d.channels.is_multiple_of(d.groups) {
        return Err(invalid("group_norm_f32", "groups must divide the channels"));
    }
    if scale.len() != d.channels || bias.len() != d.channels {
        return Err(invalid(
            "group_norm_f32",
            "scale and bias need one value per channel",
        ));
    }
    let per = d.channels / d.groups;
    let rows = d.batch * d.groups;
    let cols = per
        .checked_mul(d.inner)
        .ok_or(CodegenError::Overflow { operand: "x" })?;
    let len = check_input(x, rows, cols, threads)?;
    need("y", y.len(), len)?;
    if cols == 0 {
        return Ok(());
    }
    let out = SendPtr(y.as_mut_ptr());
    split(rows, tasks_for(threads, len * 8), |range| {
        for r in range {
            let c0 = (r % d.groups) * per;
            let xr = &x[r * cols..][..cols];
            // SAFETY: row r of y is written by this task only; check_input proved it exists.
            let yr = unsafe { std::slice::from_raw_parts_mut(out.get().add(r * cols), cols) };
            let (sc, bi) = (&scale[c0..c0 + per], &bias[c0..c0 + per]);
            row(xr, yr, sc, bi, d.inner, d.eps);
        }
    });
    Ok(())
}

fn row(x: &[f32], y: &mut [f32], scale: &[f32], bias: &[f32], inner: usize, eps: f32) {
    #[cfg(target_arch = "x86_64")]
    if super::use_avx512() {
        // SAFETY: AVX-512F is available; x and y hold scale.len() * inner elements.
        return unsafe { row512(x, y, scale, bias, inner, eps) };
    }
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    let rstd = 1.0 / (var + eps as f64).sqrt();
    for (c, (xc, yc)) in x.chunks(inner).zip(y.chunks_mut(inner)).enumerate() {
        let a = (rstd * scale[c] as f64) as f32;
        let b = (bias[c] as f64 - mean * rstd * scale[c] as f64) as f32;
        yc.iter_mut().zip(xc).for_each(|(o, &v)| *o = v * a + b);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn row512(x: &[f32], y: &mut [f32], scale: &[f32], bias: &[f32], inner: usize, eps: f32) {
    let n = x.len();
    let xp = x.as_ptr();
    let mut s = _mm512_setzero_ps();
    for i in (0..n).step_by(16) {
        s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(lanes(n - i), xp.add(i)));
    }
    let mean = _mm512_reduce_add_ps(s) / n as f32;
    let mv = _mm512_set1_ps(mean);
    let mut q = _mm512_setzero_ps();
    for i in (0..n).step_by(16) {
        let m = lanes(n - i);
        let dv = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, xp.add(i)), mv);
        q = _mm512_fmadd_ps(dv, dv, q);
    }
    let rstd = 1.0 / (_mm512_reduce_add_ps(q) / n as f32 + eps).sqrt();
    for (c, (&g, &b)) in scale.iter().zip(bias).enumerate() {
        let a = rstd * g;
        let (av, bv) = (_mm512_set1_ps(a), _mm512_set1_ps(b - mean * a));
        let (xc, yc) = (xp.add(c * inner), y.as_mut_ptr().add(c * inner));
        for i in (0..inner).step_by(16) {
            let m = lanes(inner - i);
            let v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, xc.add(i)), av, bv);
            _mm512_mask_storeu_ps(yc.add(i), m, v);
        }
    }
}
