//! The AVX-512 path of [`super::resize`]: `t += c·row` over a row, and the
//! column pass per tap per 16 output columns as one two-vector permute of
//! the block's input window where the taps lie within 32 columns (up- and
//! mild downsampling; gathers are slow on AMD cores), else as one gather
//! (zero-weight taps are masked out, so an infinite input never meets a
//! padding tap).

use super::epilogue::lanes;
use super::resize::Resize;
use std::arch::x86_64::*;

/// `t[i] += c · row[i]` (`t[i] = c · row[i]` when `first`) for `i < t.len()`
/// (`row` at least as long); masked loads and stores only for the tail.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn axpy(c: f32, row: &[f32], t: &mut [f32], first: bool) {
    debug_assert!(row.len() >= t.len());
    let (n, cv) = (t.len(), _mm512_set1_ps(c));
    let (r, o) = (row.as_ptr(), t.as_mut_ptr());
    let full = n / 16 * 16;
    for i in (0..full).step_by(16) {
        let v = _mm512_loadu_ps(r.add(i));
        let x = match first {
            true => _mm512_mul_ps(cv, v),
            false => _mm512_fmadd_ps(cv, v, _mm512_loadu_ps(o.add(i))),
        };
        _mm512_storeu_ps(o.add(i), x);
    }
    if full < n {
        let m = lanes(n - full);
        let v = _mm512_maskz_loadu_ps(m, r.add(full));
        let x = match first {
            true => _mm512_mul_ps(cv, v),
            false => _mm512_fmadd_ps(cv, v, _mm512_maskz_loadu_ps(m, o.add(full))),
        };
        _mm512_mask_storeu_ps(o.add(full), m, x);
    }
}

/// `y[ox] = Σ_j wt[j][ox] · t[idx[j][ox]] + add[ox]` for `ox < ow`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn columns(r: &Resize, t: &[f32], y: &mut [f32]) {
    debug_assert!(y.len() >= r.ow && (r.ow == 0 || !t.is_empty()));
    let (idx, wt, base) = (r.idx.as_ptr(), r.wt.as_ptr(), t.as_ptr());
    let zero = _mm512_setzero_ps();
    if !r.window.is_empty() {
        return windowed(r, t, y);
    }
    for ox in (0..r.ow).step_by(16) {
        let mut acc = _mm512_loadu_ps(r.add.as_ptr().add(ox));
        for j in 0..r.ntaps {
            let k = j * r.ow_pad + ox;
            let w = _mm512_loadu_ps(wt.add(k));
            let live = *r.live.get_unchecked(k / 16);
            let i = _mm512_loadu_si512(idx.add(k) as *const _);
            let v = _mm512_mask_i32gather_ps::<4>(zero, live, i, base);
            acc = _mm512_mask3_fmadd_ps(w, v, acc, live);
        }
        _mm512_mask_storeu_ps(y.as_mut_ptr().add(ox), lanes(r.ow - ox), acc);
    }
}

/// [`columns`] on the windows: per tap and block, the 32 input columns
/// from the window's start (masked to the row) permuted into place.
#[target_feature(enable = "avx512f")]
unsafe fn windowed(r: &Resize, t: &[f32], y: &mut [f32]) {
    let (wt, local, base, n) = (r.wt.as_ptr(), r.local.as_ptr(), t.as_ptr(), t.len());
    for ox in (0..r.ow).step_by(16) {
        let mut acc = _mm512_loadu_ps(r.add.as_ptr().add(ox));
        for j in 0..r.ntaps {
            let k = j * r.ow_pad + ox;
            let w = _mm512_loadu_ps(wt.add(k));
            let live = *r.live.get_unchecked(k / 16);
            let s = *r.window.get_unchecked(k / 16);
            let left = n.saturating_sub(s);
            // Masked loads are slow (Zen 5): plain ones where the window is
            // inside the row.
            let (lo, hi) = if left >= 32 {
                let p = base.wrapping_add(s);
                (_mm512_loadu_ps(p), _mm512_loadu_ps(p.wrapping_add(16)))
            } else {
                (
                    _mm512_maskz_loadu_ps(lanes(left), base.wrapping_add(s)),
                    _mm512_maskz_loadu_ps(
                        lanes(left.saturating_sub(16)),
                        base.wrapping_add(s + 16),
                    ),
                )
            };
            let i = _mm512_loadu_si512(local.add(k) as *const _);
            let v = _mm512_permutex2var_ps(lo, i, hi);
            acc = _mm512_mask3_fmadd_ps(w, v, acc, live);
        }
        _mm512_mask_storeu_ps(y.as_mut_ptr().add(ox), lanes(r.ow - ox), acc);
    }
}
