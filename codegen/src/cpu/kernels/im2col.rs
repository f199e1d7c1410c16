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
    let chunks = dst[..rows.len() * n].chunks_exact_mut(n);
    for (r, row) in rows.zip(chunks) {
        fill_row(d, x, r, p0, row);
    }
}

/// Row `r` of the column matrix for the output pixels from `p0` on (`dst.len()` of them).
fn fill_row(d: &Conv2dDesc, x: &[f32], r: usize, p0: usize, dst: &mut [f32]) {
    let (ow, sw) = (d.out_w(), d.stride_w);
    let (ci, ky, kx) = (r / (d.kh * d.kw), (r / d.kw) % d.kh, r % d.kw);
    let chan = &x[ci * d.h * d.w..][..d.h * d.w];
    // Output columns whose input column lies inside the image: lo..hi.
    let shift = kx * d.dilation_w; // ix = ox·sw + shift − pad_left
    let lo = d.pad_left.saturating_sub(shift).div_ceil(sw).min(ow);
    let hi = (d.w + d.pad_left)
        .saturating_sub(shift)
        .div_ceil(sw)
        .clamp(lo, ow);
    let mut done = 0;
    while done < dst.len() {
        let (oy, ox0) = ((p0 + done) / ow, (p0 + done) % ow);
        let ox1 = ow.min(ox0 + dst.len() - done);
        let out = &mut dst[done..][..ox1 - ox0];
        done += ox1 - ox0;
        let iy = (oy * d.stride_h + ky * d.dilation_h).wrapping_sub(d.pad_top);
        let (a, b) = (lo.clamp(ox0, ox1), hi.clamp(ox0, ox1));
        if iy >= d.h || a == b {
            out.fill(0.0);
            continue;
        }
        let src = &chan[iy * d.w..][..d.w];
        out[..a - ox0].fill(0.0);
        out[b - ox0..].fill(0.0);
        let first = a * sw + shift - d.pad_left;
        copy_strided(&src[first..], sw, &mut out[a - ox0..b - ox0]);
    }
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
