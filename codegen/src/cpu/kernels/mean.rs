//! Row means: `y[r] = mean(x[r, :])`, e.g. a global average pool (rows =
//! batch × channels, columns = the spatial plane).
//!
//! Threads split the rows; the AVX-512 path sums four vectors at a time
//! (four independent chains) with a masked tail.

use super::par::{split, tasks_for, SendPtr};
use super::{invalid, need};
use crate::CodegenError;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// `y[r] = (1/cols) · Σ x[r·cols ..][..cols]` for `r < rows`.
pub fn mean_rows_f32(
    x: &[f32],
    y: &mut [f32],
    rows: usize,
    cols: usize,
    threads: usize,
) -> Result<(), CodegenError> {
    if cols == 0 {
        return Err(invalid(
            "mean_rows_f32",
            "rows must not be empty".to_string(),
        ));
    }
    let len = super::rows::check_input(x, rows, cols, threads)?;
    need("y", y.len(), rows)?;
    let out = SendPtr(y.as_mut_ptr());
    // Memory-bound, and its input usually comes from a kernel that split the
    // same rows over threads: each thread reads the rows in its own cache.
    split(rows, tasks_for(threads, 32 * len), |range| {
        for r in range {
            let m = row_mean(&x[r * cols..][..cols]);
            // SAFETY: y[r] is written by this task only; `need` proved it exists.
            unsafe { *out.get().add(r) = m };
        }
    });
    Ok(())
}

fn row_mean(x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if super::use_avx512() {
        // SAFETY: AVX-512F is available.
        return unsafe { row_sum512(x) } / x.len() as f32;
    }
    x.iter().sum::<f32>() / x.len() as f32
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn row_sum512(x: &[f32]) -> f32 {
    let (n, p) = (x.len(), x.as_ptr());
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    while i + 64 <= n {
        for (v, a) in acc.iter_mut().enumerate() {
            *a = _mm512_add_ps(*a, _mm512_loadu_ps(p.add(i + 16 * v)));
        }
        i += 64;
    }
    while i < n {
        let m = super::epilogue::lanes(n - i);
        acc[0] = _mm512_add_ps(acc[0], _mm512_maskz_loadu_ps(m, p.add(i)));
        i += 16;
    }
    let s = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    _mm512_reduce_add_ps(s)
}
