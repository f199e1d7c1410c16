//! Depthwise convolution (`groups == c_in == c_out`), direct on NCHW.
//!
//! The AVX-512 kernel computes 16 output columns of one output row at a time.
//! For each kernel column it loads the input lanes under the taps with a mask
//! that covers exactly the in-image lanes (the padding reads as 0 and no byte
//! outside the row is touched); stride 2 loads 32 contiguous values and keeps
//! the even ones. Rows of the kernel that fall in the padding are skipped. Bias,
//! residual and activation are applied before the masked store. 3×3 windows
//! take the faster kernels of [`super::depthwise3x3`]; column strides above 2
//! use the portable kernel. Other kernel sizes run by default on the staged
//! kernel of [`super::depthwise_staged`] (any size, stride and dilation);
//! [`DwKernel`] lets a tuner pick either family. Threads split the (batch,
//! channel) planes; [`plane_rows`] computes a band of rows (for fused consumers).

use super::conv::Conv2dDesc;
#[cfg(target_arch = "x86_64")]
use super::depthwise3x3::{plane3x3, plane3x3_narrow};
#[cfg(target_arch = "x86_64")]
use super::depthwise_flat;
#[cfg(target_arch = "x86_64")]
use super::depthwise_s2;
#[cfg(target_arch = "x86_64")]
use super::depthwise_staged::{self, StagedLayout};
use super::epilogue::{lanes, Epi};
use super::par::{split, tasks_for, SendPtr};
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Which kernel family computes the planes of a depthwise convolution (a knob).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum DwKernel {
    /// The masked 3×3 kernels where one applies, else [`DwKernel::Staged`].
    #[default]
    Auto,
    /// Masked loads straight from the input: the specialised 3×3 kernels
    /// where they apply, else the generic masked row kernel.
    Masked,
    /// The staged kernel, with the layout of fewer vectors per band.
    Staged,
    /// The staged kernel, one output row per set of vectors.
    StagedRows,
    /// The staged kernel on the flattened band grid.
    StagedGrid,
}

impl DwKernel {
    /// Every choice, `Auto` first.
    pub const ALL: [DwKernel; 5] = [
        DwKernel::Auto,
        DwKernel::Masked,
        DwKernel::Staged,
        DwKernel::StagedRows,
        DwKernel::StagedGrid,
    ];

    /// What `Auto` means for `d` (the others stand for themselves).
    pub fn resolve(self, d: &Conv2dDesc) -> DwKernel {
        if self != DwKernel::Auto {
            return self;
        }
        let masked_3x3 = d.kh == 3 && d.kw == 3 && d.dilation_w == 1 && d.stride_w <= 2;
        if masked_3x3 {
            DwKernel::Masked
        } else {
            DwKernel::Staged
        }
    }
}

/// Runs the depthwise convolution of every (batch, channel) plane; `flat`:
/// the masks of [`super::depthwise_flat`] when its kernel applies, else empty.
///
/// # Safety
/// `input`, `weight`, `output` and the epilogue must hold the sizes `d` implies.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn run(
    d: &Conv2dDesc,
    input: &[f32],
    weight: &[f32],
    output: &mut [f32],
    epi: Epi,
    flat: &[[u16; 9]],
    kernel: DwKernel,
    threads: usize,
) {
    let (oh, ow) = (d.out_h(), d.out_w());
    let planes = d.batch * d.c_out;
    // About 8× slower per flop than a GEMM (memory-bound, one FMA per load).
    let flops = 16 * planes * oh * ow * d.kh * d.kw;
    let out = SendPtr(output.as_mut_ptr());
    #[cfg(target_arch = "x86_64")]
    if super::use_avx512() {
        let layout = match kernel.resolve(d) {
            DwKernel::Masked | DwKernel::Auto => Err(()),
            DwKernel::Staged => Ok(None),
            DwKernel::StagedRows => Ok(Some(StagedLayout::Rows)),
            DwKernel::StagedGrid => Ok(Some(StagedLayout::Grid)),
        };
        if let Ok(layout) = layout {
            // Only read through (a shared pointer the tasks may all hold).
            let x = SendPtr(input.as_ptr().cast_mut());
            split(planes, tasks_for(threads, flops), |range| {
                let (x, y) = (x.get().cast_const(), out.get());
                // SAFETY: the task's planes are its own; sizes per the contract.
                unsafe { depthwise_staged::planes(d, range, x, weight, y, &epi, layout) };
            });
            return;
        }
    }
    split(planes, tasks_for(threads, flops), |range| {
        let ctx = PlaneCtx::new(d, kernel);
        for t in range {
            let x = input[t * d.h * d.w..][..d.h * d.w].as_ptr();
            // SAFETY: plane t belongs to this task only; the epilogue covers
            // the plane, per the contract.
            unsafe { plane_rows(d, &ctx, x, weight, t, 0..oh, out.get(), &epi, flat) };
        }
    });
}

/// What every plane of one convolution shares: a zero row for the padding,
/// the 3×3 load masks and the kernel family (resolved, never `Auto`).
pub(crate) struct PlaneCtx {
    zeros: Vec<f32>,
    masks: Vec<[u32; 3]>,
    kernel: DwKernel,
}

impl PlaneCtx {
    pub(crate) fn new(d: &Conv2dDesc, kernel: DwKernel) -> PlaneCtx {
        PlaneCtx {
            zeros: vec![0f32; d.w],
            masks: tap_masks(d),
            kernel: kernel.resolve(d),
        }
    }
}

/// Output rows `rows` of plane `t` (batch·c_out + channel) from the input
/// plane at `x` into `y`, the origin of the whole output (plane t starts at
/// `t·out_h·out_w`).
///
/// # Safety
/// As [`run`]; `x` and `y` may point outside an allocation as long as the
/// input rows that output rows `rows` read, and those output rows, lie inside
/// one (the flattened 3×3 kernel also loads, into lanes it does not store,
/// up to a row and 16 values around them).
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn plane_rows(
    d: &Conv2dDesc,
    ctx: &PlaneCtx,
    x: *const f32,
    weight: &[f32],
    t: usize,
    rows: std::ops::Range<usize>,
    y: *mut f32,
    epi: &Epi,
    flat: &[[u16; 9]],
) {
    let (oh, ow) = (d.out_h(), d.out_w());
    let c = t % d.c_out;
    let p = Plane {
        d,
        x,
        w: &weight[c * d.kh * d.kw..][..d.kh * d.kw],
        c,
        off: t * oh * ow,
        rows,
        zeros: &ctx.zeros,
        masks: &ctx.masks,
    };
    plane(&p, y.wrapping_add(t * oh * ow), epi, flat, ctx.kernel)
}

/// One channel plane: input, weights, channel index and output offset.
pub(super) struct Plane<'a> {
    pub(super) d: &'a Conv2dDesc,
    /// The input plane's origin (rows the output rows read must be valid).
    pub(super) x: *const f32,
    pub(super) w: &'a [f32],
    pub(super) c: usize,
    pub(super) off: usize,
    /// The output rows to compute.
    pub(super) rows: std::ops::Range<usize>,
    /// A row of zeros standing for input rows in the padding.
    pub(super) zeros: &'a [f32],
    /// Per output vector and kernel column of a 3×3 kernel: the in-image lanes.
    pub(super) masks: &'a [[u32; 3]],
}

/// The load masks of every output vector and kernel column (3×3 kernels, column
/// dilation 1, column stride ≤ 2); empty otherwise.
fn tap_masks(d: &Conv2dDesc) -> Vec<[u32; 3]> {
    if d.kw != 3 || d.dilation_w != 1 || d.stride_w > 2 {
        return Vec::new();
    }
    let (ow, s) = (d.out_w(), d.stride_w as isize);
    let (w, pl) = (d.w as isize, d.pad_left as isize);
    (0..ow.div_ceil(16))
        .map(|v| {
            let nl = (ow - v * 16).min(16) as isize;
            std::array::from_fn(|kx| {
                let b = (v * 16) as isize * s - pl + kx as isize;
                range_mask(-b, (w - b).min(nl * s))
            })
        })
        .collect()
}

/// Rows `p.rows` of one plane into `y` (the plane's output).
unsafe fn plane(p: &Plane, y: *mut f32, epi: &Epi, flat: &[[u16; 9]], kernel: DwKernel) {
    #[cfg(target_arch = "x86_64")]
    if kernel != DwKernel::Masked && super::use_avx512() {
        let layout = match kernel {
            DwKernel::StagedRows => StagedLayout::Rows,
            DwKernel::StagedGrid => StagedLayout::Grid,
            _ => depthwise_staged::auto_layout(p.d, p.rows.len()),
        };
        // SAFETY: the staged kernel reads only the rows the band needs.
        return depthwise_staged::plane(p, y, epi, layout);
    }
    #[cfg(target_arch = "x86_64")]
    if !flat.is_empty() && super::use_avx512() {
        // SAFETY: the masks keep every load inside the plane.
        return depthwise_flat::plane_flat(p, y, epi, flat);
    }
    #[cfg(target_arch = "x86_64")]
    if super::use_avx512() && p.d.stride_w <= 2 {
        let d = p.d;
        if depthwise_s2::fits(d) {
            return depthwise_s2::plane3x3_s2(p, y, epi);
        }
        if d.kh == 3 && d.kw == 3 && d.dilation_w == 1 {
            return match (d.stride_w, d.out_w() <= 16) {
                (1, true) => plane3x3_narrow::<1>(p, y, epi),
                (1, false) => plane3x3::<1>(p, y, epi),
                (_, true) => plane3x3_narrow::<2>(p, y, epi),
                _ => plane3x3::<2>(p, y, epi),
            };
        }
        return plane512(p, y, epi);
    }
    plane_portable(p, y, epi)
}

/// Input row under output row `oy` and kernel row `ky`, if inside the image.
#[inline(always)]
pub(super) fn input_row(d: &Conv2dDesc, oy: usize, ky: usize) -> Option<usize> {
    let iy = (oy * d.stride_h + ky * d.dilation_h).wrapping_sub(d.pad_top);
    (iy < d.h).then_some(iy)
}

/// Bits `lo..hi` set (`hi ≤ 32`).
#[inline(always)]
pub(super) fn range_mask(lo: isize, hi: isize) -> u32 {
    let (lo, hi) = (lo.clamp(0, 32) as u32, hi.clamp(0, 32) as u32);
    if hi <= lo {
        return 0;
    }
    let upto = |n: u32| if n >= 32 { u32::MAX } else { (1u32 << n) - 1 };
    upto(hi) & !upto(lo)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn plane512(p: &Plane, y: *mut f32, epi: &Epi) {
    let d = p.d;
    let (ow, sw) = (d.out_w(), d.stride_w as isize);
    let evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for oy in p.rows.clone() {
        let yrow = y.add(oy * ow);
        for ox0 in (0..ow).step_by(16) {
            let nl = (ow - ox0).min(16) as isize;
            let mut acc = _mm512_setzero_ps();
            for kx in 0..d.kw {
                let base = ox0 as isize * sw + (kx * d.dilation_w) as isize - d.pad_left as isize;
                // Lanes e of the contiguous span base.. that are in the image and needed.
                let m = range_mask(-base, (d.w as isize - base).min(nl * sw));
                for ky in 0..d.kh {
                    let Some(iy) = input_row(d, oy, ky) else {
                        continue;
                    };
                    let src = p.x.add(iy * d.w).wrapping_offset(base);
                    let v = if sw == 1 {
                        _mm512_maskz_loadu_ps(m as u16, src)
                    } else {
                        let lo = _mm512_maskz_loadu_ps(m as u16, src);
                        let hi = _mm512_maskz_loadu_ps((m >> 16) as u16, src.wrapping_add(16));
                        _mm512_permutex2var_ps(lo, evens, hi)
                    };
                    let wv = _mm512_set1_ps(*p.w.get_unchecked(ky * d.kw + kx));
                    acc = _mm512_fmadd_ps(wv, v, acc);
                }
            }
            let mask = lanes(nl as usize);
            let off = p.off + oy * ow + ox0;
            let r = epi.vec16(acc, mask, p.c, 0, off);
            _mm512_mask_storeu_ps(yrow.add(ox0), mask, r);
        }
    }
}

unsafe fn plane_portable(p: &Plane, y: *mut f32, epi: &Epi) {
    let d = p.d;
    let ow = d.out_w();
    for oy in p.rows.clone() {
        for ox in 0..ow {
            let mut acc = 0f32;
            for ky in 0..d.kh {
                let Some(iy) = input_row(d, oy, ky) else {
                    continue;
                };
                for kx in 0..d.kw {
                    let ix = (ox * d.stride_w + kx * d.dilation_w).wrapping_sub(d.pad_left);
                    if ix < d.w {
                        acc += p.w[ky * d.kw + kx] * *p.x.add(iy * d.w + ix);
                    }
                }
            }
            *y.add(oy * ow + ox) = epi.scalar(acc, p.c, 0, p.off + oy * ow + ox);
        }
    }
}
