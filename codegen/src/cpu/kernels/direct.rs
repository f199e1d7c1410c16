//! Direct convolution for few input taps (a network's stem: 3 channels × 3×3).
//!
//! With `c_in · kh · kw ≤` [`MAX_TAPS`] an im2col GEMM has a tiny inner
//! dimension (27), so its tiles spend as long storing as multiplying, and the
//! column matrix is written and read again. Here each task computes one output
//! row of a block of [`CO`] output channels: per 16-pixel vector (two at a
//! time), per tap, it loads the input pixels under the tap (stride 1: one
//! masked load; stride 2: two loads and an even-lane permute; lanes outside
//! the image are masked to zero) and multiply-adds them with the block's
//! weights broadcast from the prepacked `[tap][CO]` layout. The epilogue is
//! applied to each vector before its masked store into NCHW.

use super::conv::Conv2dDesc;
#[cfg(target_arch = "x86_64")]
use super::epilogue::{lanes, Epi};
#[cfg(target_arch = "x86_64")]
use super::par::{split, tasks_for, SendPtr};
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Output channels per block (8 × 2 pixel vectors = 16 accumulators).
pub(crate) const CO: usize = 8;
/// Largest `c_in · kh · kw` this kernel takes.
pub(crate) const MAX_TAPS: usize = 32;

/// Whether `d` suits the direct kernel: ungrouped, few taps, stride 1 or 2
/// along rows, no dilation, and output rows of at least one vector.
pub(crate) fn wanted(d: &Conv2dDesc) -> bool {
    d.groups == 1
        && d.c_in * d.kh * d.kw <= MAX_TAPS
        && matches!(d.stride_w, 1 | 2)
        && d.dilation_h == 1
        && d.dilation_w == 1
        && d.out_w() >= 16
}

/// OIHW weights as `[c_out / CO blocks][tap][CO]`, zero past `c_out`.
pub(crate) fn pack(d: &Conv2dDesc, weight: &[f32]) -> Vec<f32> {
    let taps = d.c_in * d.kh * d.kw;
    let mut out = vec![0f32; d.c_out.div_ceil(CO) * taps * CO];
    for (co, w) in weight.chunks_exact(taps).take(d.c_out).enumerate() {
        for (t, &v) in w.iter().enumerate() {
            out[(co / CO * taps + t) * CO + co % CO] = v;
        }
    }
    out
}

/// The convolution of `d` (see [`wanted`]) with weights from [`pack`].
///
/// # Safety
/// `x` and `out` (and the epilogue's buffers) must hold the tensors `d`
/// describes; AVX-512F must be available.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn run(
    d: &Conv2dDesc,
    packed: &[f32],
    x: &[f32],
    out: &mut [f32],
    epi: Epi,
    threads: usize,
) {
    let (oh, ow) = (d.out_h(), d.out_w());
    let blocks = d.c_out.div_ceil(CO);
    let items = d.batch * blocks * oh;
    let flops = 2 * d.batch * d.c_out * oh * ow * d.c_in * d.kh * d.kw;
    let y = SendPtr(out.as_mut_ptr());
    split(items, tasks_for(threads, flops), |range| {
        for item in range {
            let (b, rest) = (item / (blocks * oh), item % (blocks * oh));
            let (blk, oy) = (rest / oh, rest % oh);
            let xb = x.as_ptr().add(b * d.c_in * d.h * d.w);
            let base = b * d.c_out * oh * ow;
            let e = epi.offset(0, 0, base);
            // SAFETY: this item alone writes row oy of channels blk·CO.. of batch b.
            unsafe { row(d, packed, xb, y.get().add(base), oh * ow, &e, blk, oy) };
        }
    });
}

/// Output rows `rows` of every channel of one image `x` (its input planes)
/// into `y`, where output (channel c, row r, column j) is at
/// `c·plane + r·out_w + j` (a band buffer when `plane` is less than a plane).
/// No residual: the epilogue's bias and activation only.
///
/// # Safety
/// `x` must hold the image; `y` every element addressed; AVX-512F available.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn rows(
    d: &Conv2dDesc,
    packed: &[f32],
    x: *const f32,
    y: *mut f32,
    plane: usize,
    e: &Epi,
    rows: std::ops::Range<usize>,
) {
    for blk in 0..d.c_out.div_ceil(CO) {
        for oy in rows.clone() {
            row(d, packed, x, y, plane, e, blk, oy);
        }
    }
}

/// Output row `oy` of channel block `blk`, two vectors of 16 pixels at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn row(
    d: &Conv2dDesc,
    packed: &[f32],
    x: *const f32,
    y: *mut f32,
    plane: usize,
    e: &Epi,
    blk: usize,
    oy: usize,
) {
    let ow = d.out_w();
    let w = packed.as_ptr().add(blk * d.c_in * d.kh * d.kw * CO);
    let mut ox = 0;
    while ox < ow {
        // Every input column the 32 pixels read lies inside the row: no masks.
        let left = (ox * d.stride_w) as isize - d.pad_left as isize;
        let right = left + (31 * d.stride_w + d.kw) as isize;
        let acc = if ox + 32 <= ow && left >= 0 && right <= d.w as isize {
            block::<true>(d, w, x, ox, oy)
        } else {
            block::<false>(d, w, x, ox, oy)
        };
        store(d, y, plane, e, &acc, blk, ox, oy);
        ox += 32;
    }
}

/// The accumulators of pixels `ox..ox + 32` of row `oy` for one channel block.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn block<const INTERIOR: bool>(
    d: &Conv2dDesc,
    w: *const f32,
    x: *const f32,
    ox: usize,
    oy: usize,
) -> [[__m512; 2]; CO] {
    let ow = d.out_w();
    let mut edge = [[[0u16; 2]; 2]; MAX_TAPS];
    if !INTERIOR {
        for (kx, m) in edge.iter_mut().enumerate().take(d.kw) {
            *m = [masks(d, ox, kx, ow), masks(d, ox + 16, kx, ow)];
        }
    }
    let mut acc = [[_mm512_setzero_ps(); 2]; CO];
    let mut wt = w;
    for ci in 0..d.c_in {
        for ky in 0..d.kh {
            let iy = (oy * d.stride_h + ky).wrapping_sub(d.pad_top);
            if iy >= d.h {
                wt = wt.add(d.kw * CO);
                continue;
            }
            let src = x.add((ci * d.h + iy) * d.w);
            for (kx, m) in edge.iter().enumerate().take(d.kw) {
                let v = if INTERIOR {
                    [
                        pixels_inside(d, src, ox, kx),
                        pixels_inside(d, src, ox + 16, kx),
                    ]
                } else {
                    [
                        pixels(d, src, ox, kx, m[0]),
                        pixels(d, src, ox + 16, kx, m[1]),
                    ]
                };
                for (c, a) in acc.iter_mut().enumerate() {
                    let wv = _mm512_set1_ps(*wt.add(c));
                    a[0] = _mm512_fmadd_ps(wv, v[0], a[0]);
                    a[1] = _mm512_fmadd_ps(wv, v[1], a[1]);
                }
                wt = wt.add(CO);
            }
        }
    }
    acc
}

/// Stores the block's channels (those below `c_out`) with the epilogue.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn store(
    d: &Conv2dDesc,
    y: *mut f32,
    plane: usize,
    e: &Epi,
    acc: &[[__m512; 2]; CO],
    blk: usize,
    ox: usize,
    oy: usize,
) {
    let ow = d.out_w();
    let channels = CO.min(d.c_out - blk * CO);
    for (c, a) in acc.iter().enumerate().take(channels) {
        let co = blk * CO + c;
        for (h, &v) in a.iter().enumerate() {
            let j = ox + 16 * h;
            if j >= ow {
                break;
            }
            let mask = lanes(ow - j);
            let off = co * plane + oy * ow + j;
            let r = e.vec16(v, mask, co, j, off);
            _mm512_mask_storeu_ps(y.add(off), mask, r);
        }
    }
}

/// [`pixels`] for 16 pixels whose input columns all lie inside the row.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn pixels_inside(d: &Conv2dDesc, src: *const f32, ox: usize, kx: usize) -> __m512 {
    let p = src.add(ox * d.stride_w + kx - d.pad_left);
    if d.stride_w == 1 {
        return _mm512_loadu_ps(p);
    }
    let evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    _mm512_permutex2var_ps(_mm512_loadu_ps(p), evens, _mm512_loadu_ps(p.add(16)))
}

/// Load masks of the pixels under tap column `kx` for output pixels
/// `ox..ox + 16` (lanes inside the image and before the row's end); for
/// stride 2 one mask per 16-value half of the 32 loaded values.
#[cfg(target_arch = "x86_64")]
fn masks(d: &Conv2dDesc, ox: usize, kx: usize, ow: usize) -> [u16; 2] {
    if ox >= ow {
        return [0, 0];
    }
    let n = (ow - ox).min(16) as isize;
    let first = (ox * d.stride_w + kx) as isize - d.pad_left as isize;
    let valid = |start: isize, count: isize| -> u16 {
        // Lanes i in 0..count with 0 <= start + i < w.
        let lo = (-start).clamp(0, count);
        let hi = (d.w as isize - start).clamp(lo, count);
        lanes(hi as usize) & !lanes(lo as usize)
    };
    if d.stride_w == 1 {
        return [valid(first, n), 0];
    }
    let span = 2 * n - 1;
    [
        valid(first, span.min(16)),
        valid(first + 16, (span - 16).max(0)),
    ]
}

/// The input values under tap column `kx` for output pixels `ox..ox + 16` of
/// one input row `src`, loaded under `m` from [`masks`] (zero elsewhere).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn pixels(d: &Conv2dDesc, src: *const f32, ox: usize, kx: usize, m: [u16; 2]) -> __m512 {
    let p = src
        .wrapping_add(ox * d.stride_w + kx)
        .wrapping_sub(d.pad_left);
    if d.stride_w == 1 {
        return _mm512_maskz_loadu_ps(m[0], p);
    }
    let evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let lo = _mm512_maskz_loadu_ps(m[0], p);
    let hi = _mm512_maskz_loadu_ps(m[1], p.wrapping_add(16));
    _mm512_permutex2var_ps(lo, evens, hi)
}
