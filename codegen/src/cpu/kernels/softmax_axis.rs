//! Softmax and LogSoftmax along any axis of an f32 tensor seen as
//! `[outer, len, inner]` (the axis has `len` elements, `inner` is the
//! product of the dims after it).
//!
//! `inner == 1` (the last axis) walks each contiguous row; otherwise the
//! kernel vectorizes across `inner` (16 positions at a time on AVX-512),
//! stepping down the axis with stride `inner`, so no transpose is needed.
//! Both subtract the maximum first; LogSoftmax gives `x - max - ln(sum)`.
//! Threads split the outer slices (or, with one slice, the inner chunks).

use super::epilogue::lanes;
use super::par::{split, tasks_for, SendPtr};
use super::rows::check_input;
use super::{invalid, need};
use crate::CodegenError;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Which normalization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoftmaxKind {
    Softmax,
    LogSoftmax,
}

/// The shape of the tensor as seen by the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AxisShape {
    pub outer: usize,
    pub len: usize,
    pub inner: usize,
}

/// `y = softmax(x)` (or log-softmax) along the middle axis of `shape`.
pub fn softmax_axis_f32(
    x: &[f32],
    y: &mut [f32],
    shape: AxisShape,
    kind: SoftmaxKind,
    threads: usize,
) -> Result<(), CodegenError> {
    let AxisShape { outer, len, inner } = shape;
    let cols = len
        .checked_mul(inner)
        .ok_or(CodegenError::Overflow { operand: "x" })?;
    let total = check_input(x, outer, cols, threads)?;
    need("y", y.len(), total)?;
    if len == 0 && total > 0 {
        return Err(invalid("softmax_axis", "the axis is empty"));
    }
    if total == 0 {
        return Ok(());
    }
    let chunks = inner.div_ceil(16);
    let units = outer * chunks;
    let out = SendPtr(y.as_mut_ptr());
    split(units, tasks_for(threads, total * 20), |range| {
        for u in range {
            let (o, c) = (u / chunks, u % chunks);
            let (lo, hi) = (c * 16, (c * 16 + 16).min(inner));
            let base = o * cols;
            // SAFETY: slice o's columns lo..hi are written by this unit only,
            // and check_input proved the slice exists in x and y.
            unsafe {
                block(
                    x.as_ptr().add(base),
                    out.get().add(base),
                    len,
                    inner,
                    lo,
                    hi,
                    kind,
                )
            };
        }
    });
    Ok(())
}

/// One slice's positions `lo..hi` (at most 16) of the inner dim.
///
/// # Safety
/// `x` and `y` hold `len * inner` elements.
unsafe fn block(
    x: *const f32,
    y: *mut f32,
    len: usize,
    inner: usize,
    lo: usize,
    hi: usize,
    kind: SoftmaxKind,
) {
    #[cfg(target_arch = "x86_64")]
    if super::use_avx512() {
        if inner == 1 {
            return row512(x, y, len, kind);
        }
        return columns512(x.add(lo), y.add(lo), len, inner, hi - lo, kind);
    }
    for j in lo..hi {
        portable(x.add(j), y.add(j), len, inner, kind);
    }
}

/// One column of `len` elements at stride `inner`.
unsafe fn portable(x: *const f32, y: *mut f32, len: usize, inner: usize, kind: SoftmaxKind) {
    let at = |i: usize| *x.add(i * inner);
    let max = (0..len).fold(f32::NEG_INFINITY, |m, i| m.max(at(i)));
    let sum: f32 = (0..len).map(|i| (at(i) - max).exp()).sum();
    for i in 0..len {
        *y.add(i * inner) = match kind {
            SoftmaxKind::Softmax => (at(i) - max).exp() / sum,
            SoftmaxKind::LogSoftmax => at(i) - max - sum.ln(),
        };
    }
}

/// A contiguous row (the last axis).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn row512(x: *const f32, y: *mut f32, n: usize, kind: SoftmaxKind) {
    let mut mx = _mm512_set1_ps(f32::NEG_INFINITY);
    for i in (0..n).step_by(16) {
        mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(mx, lanes(n - i), x.add(i)));
    }
    let max = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    let mut sum = _mm512_setzero_ps();
    for i in (0..n).step_by(16) {
        let m = lanes(n - i);
        let e = super::exp::exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x.add(i)), max));
        sum = _mm512_mask_add_ps(sum, m, sum, e);
    }
    let sum = _mm512_reduce_add_ps(sum);
    for i in (0..n).step_by(16) {
        let m = lanes(n - i);
        let d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x.add(i)), max);
        let v = match kind {
            SoftmaxKind::Softmax => _mm512_mul_ps(super::exp::exp16(d), _mm512_set1_ps(1.0 / sum)),
            SoftmaxKind::LogSoftmax => _mm512_sub_ps(d, _mm512_set1_ps(sum.ln())),
        };
        _mm512_mask_storeu_ps(y.add(i), m, v);
    }
}

/// `w` (≤ 16) adjacent columns, vectorized across them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn columns512(
    x: *const f32,
    y: *mut f32,
    len: usize,
    inner: usize,
    w: usize,
    kind: SoftmaxKind,
) {
    let m = lanes(w);
    let load = |i: usize| _mm512_maskz_loadu_ps(m, x.add(i * inner));
    let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
    for i in 0..len {
        max = _mm512_max_ps(max, load(i));
    }
    let mut sum = _mm512_setzero_ps();
    for i in 0..len {
        sum = _mm512_add_ps(sum, super::exp::exp16(_mm512_sub_ps(load(i), max)));
    }
    let mut sums = [0f32; 16];
    _mm512_storeu_ps(sums.as_mut_ptr(), sum);
    let scale = match kind {
        SoftmaxKind::Softmax => sums.map(|s| 1.0 / s),
        SoftmaxKind::LogSoftmax => sums.map(f32::ln),
    };
    let scale = _mm512_loadu_ps(scale.as_ptr());
    for i in 0..len {
        let d = _mm512_sub_ps(load(i), max);
        let v = match kind {
            SoftmaxKind::Softmax => _mm512_mul_ps(super::exp::exp16(d), scale),
            SoftmaxKind::LogSoftmax => _mm512_sub_ps(d, scale),
        };
        _mm512_mask_storeu_ps(y.add(i * inner), m, v);
    }
}
