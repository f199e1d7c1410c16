//! Row kernels over the contiguous last axis: softmax and layer normalization.
//!
//! Each row is independent; threads split the rows. The AVX-512 paths use masked
//! loads for the tail of a row and [`super::exp::exp16`] for softmax.

use super::epilogue::lanes;
use super::par::{split, tasks_for, SendPtr};
use super::{invalid, need};
use crate::CodegenError;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Checks threads and that `x` and `y` hold `rows·cols` elements; returns that count.
fn check_rows(
    x: &[f32],
    y: &[f32],
    rows: usize,
    cols: usize,
    threads: usize,
) -> Result<usize, CodegenError> {
    let len = check_input(x, rows, cols, threads)?;
    need("y", y.len(), len)?;
    Ok(len)
}

/// Checks threads and that `x` holds `rows·cols` elements (addressable as
/// f32 bytes); returns that count.
pub(super) fn check_input(
    x: &[f32],
    rows: usize,
    cols: usize,
    threads: usize,
) -> Result<usize, CodegenError> {
    if threads == 0 {
        return Err(CodegenError::ZeroThreads);
    }
    let len = rows
        .checked_mul(cols)
        .filter(|&l| l <= isize::MAX as usize / 4)
        .ok_or(CodegenError::Overflow { operand: "x" })?;
    need("x", x.len(), len)?;
    Ok(len)
}

/// Applies `f(x_row, y_row)` to every row, split over threads (`cost` flops per element).
fn for_rows<F>(
    x: &[f32],
    y: &mut [f32],
    rows: usize,
    cols: usize,
    cost: usize,
    threads: usize,
    f: F,
) where
    F: Fn(&[f32], &mut [f32]) + Sync,
{
    if cols == 0 {
        return;
    }
    let out = SendPtr(y.as_mut_ptr());
    split(rows, tasks_for(threads, rows * cols * cost), |range| {
        for r in range {
            // SAFETY: row r of y is written by this task only; check_rows proved it exists.
            let yr = unsafe { std::slice::from_raw_parts_mut(out.get().add(r * cols), cols) };
            f(&x[r * cols..][..cols], yr);
        }
    });
}

/// `y[r, :] = softmax(x[r, :])` for every row (max-subtracted, so no overflow).
pub fn softmax_rows_f32(
    x: &[f32],
    y: &mut [f32],
    rows: usize,
    cols: usize,
    threads: usize,
) -> Result<(), CodegenError> {
    check_rows(x, y, rows, cols, threads)?;
    for_rows(x, y, rows, cols, 20, threads, |x, y| {
        #[cfg(target_arch = "x86_64")]
        if super::use_avx512() {
            // SAFETY: AVX-512F is available; x and y have equal lengths.
            return unsafe { softmax512(x, y) };
        }
        softmax_portable(x, y)
    });
    Ok(())
}

fn softmax_portable(x: &[f32], y: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let mut sum = 0f32;
    for (o, &v) in y.iter_mut().zip(x) {
        *o = (v - max).exp();
        sum += *o;
    }
    let inv = 1.0 / sum;
    y.iter_mut().for_each(|o| *o *= inv);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn softmax512(x: &[f32], y: &mut [f32]) {
    let n = x.len();
    let (xp, yp) = (x.as_ptr(), y.as_mut_ptr());
    let mut mx = _mm512_set1_ps(f32::NEG_INFINITY);
    for i in (0..n).step_by(16) {
        mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(mx, lanes(n - i), xp.add(i)));
    }
    let max = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    let mut sum = _mm512_setzero_ps();
    for i in (0..n).step_by(16) {
        let m = lanes(n - i);
        let e = super::exp::exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, xp.add(i)), max));
        sum = _mm512_mask_add_ps(sum, m, sum, e);
        _mm512_mask_storeu_ps(yp.add(i), m, e);
    }
    let inv = _mm512_set1_ps(1.0 / _mm512_reduce_add_ps(sum));
    for i in (0..n).step_by(16) {
        let m = lanes(n - i);
        _mm512_mask_storeu_ps(
            yp.add(i),
            m,
            _mm512_mul_ps(_mm512_maskz_loadu_ps(m, yp.add(i)), inv),
        );
    }
}

/// `y[r, :] = (x[r, :] − mean) / sqrt(var + eps) · gamma (+ beta)` for every row
/// (biased variance, computed in a second pass over the row).
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_rows_f32(
    x: &[f32],
    gamma: &[f32],
    beta: Option<&[f32]>,
    eps: f32,
    y: &mut [f32],
    rows: usize,
    cols: usize,
    threads: usize,
) -> Result<(), CodegenError> {
    check_rows(x, y, rows, cols, threads)?;
    if gamma.len() != cols || beta.is_some_and(|b| b.len() != cols) {
        return Err(invalid(
            "layer_norm_rows_f32",
            format!("gamma and beta must have {cols} elements"),
        ));
    }
    let norm = Norm { gamma, beta, eps };
    for_rows(x, y, rows, cols, 8, threads, |x, y| {
        #[cfg(target_arch = "x86_64")]
        if super::use_avx512() {
            // SAFETY: AVX-512F is available; x, y, gamma (and beta) have equal lengths.
            return unsafe { norm.row512(x, y) };
        }
        norm.row_portable(x, y)
    });
    Ok(())
}

struct Norm<'a> {
    gamma: &'a [f32],
    beta: Option<&'a [f32]>,
    eps: f32,
}

impl Norm<'_> {
    fn row_portable(&self, x: &[f32], y: &mut [f32]) {
        let n = x.len() as f32;
        let mean = x.iter().sum::<f32>() / n;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let rstd = 1.0 / (var + self.eps).sqrt();
        for (j, (o, &v)) in y.iter_mut().zip(x).enumerate() {
            *o = (v - mean) * rstd * self.gamma[j] + self.beta.map_or(0.0, |b| b[j]);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn row512(&self, x: &[f32], y: &mut [f32]) {
        let n = x.len();
        let (xp, yp, gp) = (x.as_ptr(), y.as_mut_ptr(), self.gamma.as_ptr());
        let mut s = _mm512_setzero_ps();
        for i in (0..n).step_by(16) {
            s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(lanes(n - i), xp.add(i)));
        }
        let mean = _mm512_set1_ps(_mm512_reduce_add_ps(s) / n as f32);
        let mut q = _mm512_setzero_ps();
        for i in (0..n).step_by(16) {
            let m = lanes(n - i);
            let dv = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, xp.add(i)), mean);
            q = _mm512_fmadd_ps(dv, dv, q);
        }
        let var = _mm512_reduce_add_ps(q) / n as f32;
        let rstd = _mm512_set1_ps(1.0 / (var + self.eps).sqrt());
        for i in (0..n).step_by(16) {
            let m = lanes(n - i);
            let v = _mm512_mul_ps(
                _mm512_sub_ps(_mm512_maskz_loadu_ps(m, xp.add(i)), mean),
                rstd,
            );
            // No closure here: closures do not inherit target features.
            let b = match self.beta {
                Some(b) => _mm512_maskz_loadu_ps(m, b.as_ptr().add(i)),
                None => _mm512_setzero_ps(),
            };
            let r = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m, gp.add(i)), b);
            _mm512_mask_storeu_ps(yp.add(i), m, r);
        }
    }
}
