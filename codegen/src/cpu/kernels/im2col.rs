//! im2col for one (batch, group), one block of output pixels at a time: row
//! `(ci·kh + ky)·kw + kx` of a block's column matrix holds, for every output
//! pixel of the block, the input value under that kernel tap (0 in the padding).
//! Filling a block right before its GEMM keeps the block in cache.

use super::conv::Conv2dDesc;

/// Fills `dst` (c_in/groups·kh·kw rows × (p1 − p0) columns) for the output
/// pixels `p0..p1` (row-major over out_h × out_w; a range may start and end
/// inside a row, so wide 1-row outputs such as 1-D convolutions split into
/// blocks too) from `x` (the group's c_in/groups channels, h×w each).
pub(crate) fn fill_range(d: &Conv2dDesc, x: &[f32], p0: usize, p1: usize, dst: &mut [f32]) {
    fill_rows(d, x, p0, p1, 0..d.c_in / d.groups * d.kh * d.kw, dst);
}

/// Fills only the column-matrix rows `rows` (`dst` holds those rows, each
/// `p1 − p0` columns), so threads can share one block's fill.
pub(crate) fn fill_rows(
    d: &Conv2dDesc,
    x: &[f32],
    p0: usize,
    p1: usize,
    rows: std::ops::Range<usize>,
    dst: &mut [f32],
) {
    let n = p1 - p0;
    if n == 0 {
        return;
    }
    // Tap coordinates advance with r (no divisions for them per row).
    let (mut ci, mut ky, mut kx) = (
        rows.start / (d.kh * d.kw),
        (rows.start / d.kw) % d.kh,
        rows.start % d.kw,
    );
    let chunks = dst[..rows.len() * n].chunks_exact_mut(n);
    for row in chunks {
        fill_row(d, x, (ci, ky, kx), span(d, kx), p0, row);
        kx += 1;
        if kx == d.kw {
            (kx, ky) = (0, ky + 1);
            if ky == d.kh {
                (ky, ci) = (0, ci + 1);
            }
        }
    }
}

/// Output columns whose input column (for tap column `kx`) lies inside the image.
fn span(d: &Conv2dDesc, kx: usize) -> (usize, usize) {
    let (ow, sw, shift) = (d.out_w(), d.stride_w, kx * d.dilation_w);
    let lo = d.pad_left.saturating_sub(shift).div_ceil(sw).min(ow);
    let hi = (d.w + d.pad_left)
        .saturating_sub(shift)
        .div_ceil(sw)
        .clamp(lo, ow);
    (lo, hi)
}

/// The column-matrix row of tap `(ci, ky, kx)` for the output pixels from
/// `p0` on (`dst.len()` of them); `(lo, hi)` is the tap column's [`span`].
fn fill_row(
    d: &Conv2dDesc,
    x: &[f32],
    (ci, ky, kx): (usize, usize, usize),
    (lo, hi): (usize, usize),
    p0: usize,
    dst: &mut [f32],
) {
    let (ow, sw) = (d.out_w(), d.stride_w);
    let chan = &x[ci * d.h * d.w..][..d.h * d.w];
    let shift = kx * d.dilation_w; // ix = ox·sw + shift − pad_left
                                   // One division for the first output pixel, then row by row (small
                                   // planes have many short rows: a division per row cost more than the copy).
    let (mut oy, mut ox0) = (p0 / ow, p0 % ow);
    let mut done = 0;
    while done < dst.len() {
        let ox1 = ow.min(ox0 + dst.len() - done);
        let out = &mut dst[done..][..ox1 - ox0];
        done += ox1 - ox0;
        let iy = (oy * d.stride_h + ky * d.dilation_h).wrapping_sub(d.pad_top);
        let (a, b) = (lo.clamp(ox0, ox1), hi.clamp(ox0, ox1));
        #[cfg(target_arch = "x86_64")]
        if sw == 1 && out.len() <= 16 && super::use_avx512() {
            let valid =
                (iy < d.h && a < b).then(|| (iy * d.w + a + shift - d.pad_left, a - ox0, b - ox0));
            // SAFETY: AVX-512F is available; `valid` names elements of `chan`
            // only (lanes a..b of the row), the other lanes are masked off.
            unsafe { short_segment(chan, valid, out) };
            (oy, ox0) = (oy + 1, 0);
            continue;
        }
        if iy >= d.h || a == b {
            out.fill(0.0);
        } else {
            let src = &chan[iy * d.w..][..d.w];
            out[..a - ox0].fill(0.0);
            out[b - ox0..].fill(0.0);
            let first = a * sw + shift - d.pad_left;
            copy_strided(&src[first..], sw, &mut out[a - ox0..b - ox0]);
        }
        (oy, ox0) = (oy + 1, 0);
    }
}

/// A segment of at most 16 outputs in one masked load and store: lanes
/// `lo..hi` from `chan[at..]` (`valid = (at, lo, hi)`), zeros elsewhere.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn short_segment(chan: &[f32], valid: Option<(usize, usize, usize)>, out: &mut [f32]) {
    use std::arch::x86_64::*;
    let n = out.len();
    let v = match valid {
        Some((at, lo, hi)) => {
            let m: __mmask16 = (((1u32 << hi) - 1) & !((1u32 << lo) - 1)) as __mmask16;
            // Lane lo reads chan[at]; masked-off lanes are never touched.
            let base = chan.as_ptr().wrapping_add(at).wrapping_sub(lo);
            _mm512_maskz_loadu_ps(m, base)
        }
        None => _mm512_setzero_ps(),
    };
    _mm512_mask_storeu_ps(out.as_mut_ptr(), ((1u32 << n) - 1) as __mmask16, v);
}

/// `dst[i] = src[i·stride]`; `src` holds every element read.
fn copy_strided(src: &[f32], stride: usize, dst: &mut [f32]) {
    if stride == 1 {
        dst.copy_from_slice(&src[..dst.len()]);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if stride == 2 && !dst.is_empty() && src.len() >= 2 * dst.len() - 1 && super::use_avx512() {
        // SAFETY: AVX-512F is available; the kernel reads src[..2·len − 1] only, checked above.
        return unsafe { copy_stride2_512(src, dst) };
    }
    for (i, o) in dst.iter_mut().enumerate() {
        *o = src[i * stride];
    }
}

/// Stride-2 copy: 32 loaded values (masked at the end), their even lanes kept.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn copy_stride2_512(src: &[f32], dst: &mut [f32]) {
    use std::arch::x86_64::*;
    let n = dst.len();
    let evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let limit = 2 * n - 1; // elements of src read
    for i in (0..n).step_by(16) {
        let (s, left) = (src.as_ptr().add(2 * i), limit - 2 * i);
        let lo = _mm512_maskz_loadu_ps(super::epilogue::lanes(left), s);
        let hi = _mm512_maskz_loadu_ps(
            super::epilogue::lanes(left.saturating_sub(16)),
            s.wrapping_add(16),
        );
        let v = _mm512_permutex2var_ps(lo, evens, hi);
        _mm512_mask_storeu_ps(dst.as_mut_ptr().add(i), super::epilogue::lanes(n - i), v);
    }
}
