//! Depthwise convolution (`groups == c_in == c_out`), direct on NCHW.
//!
//! The AVX-512 kernel computes 16 output columns of one output row at a time.
//! For each kernel column it loads the input lanes under the taps with a mask
//! that covers exactly the in-image lanes (the padding reads as 0 and no byte
//! outside the row is touched); stride 2 loads 32 contiguous values and keeps
//! the even ones. Rows of the kernel that fall in the padding are skipped. Bias,
//! residual and activation are applied before the masked store. Other column
//! strides use the portable kernel. Threads split the (batch, channel) planes.

use super::conv::Conv2dDesc;
use super::epilogue::{lanes, Epi};
use super::par::{split, tasks_for, SendPtr};
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Runs the depthwise convolution of every (batch, channel) plane.
///
/// # Safety
/// `input`, `weight`, `output` and the epilogue must hold the sizes `d` implies.
pub(crate) unsafe fn run(
    d: &Conv2dDesc,
    input: &[f32],
    weight: &[f32],
    output: &mut [f32],
    epi: Epi,
    threads: usize,
) {
    let (oh, ow) = (d.out_h(), d.out_w());
    let planes = d.batch * d.c_out;
    // About 8× slower per flop than a GEMM (memory-bound, one FMA per load).
    let flops = 16 * planes * oh * ow * d.kh * d.kw;
    let out = SendPtr(output.as_mut_ptr());
    split(planes, tasks_for(threads, flops), |range| {
        let zeros = vec![0f32; d.w];
        let masks = tap_masks(d);
        for t in range {
            let c = t % d.c_out;
            let x = &input[t * d.h * d.w..][..d.h * d.w];
            let w = &weight[c * d.kh * d.kw..][..d.kh * d.kw];
            // SAFETY: plane t of the output belongs to this task only.
            let y = unsafe { std::slice::from_raw_parts_mut(out.get().add(t * oh * ow), oh * ow) };
            let p = Plane {
                d,
                x,
                w,
                c,
                off: t * oh * ow,
                zeros: &zeros,
                masks: &masks,
            };
            // SAFETY: the epilogue covers this plane, per the contract.
            unsafe { plane(&p, y, &epi) };
        }
    });
}

/// One channel plane: input, weights, channel index and output offset.
struct Plane<'a> {
    d: &'a Conv2dDesc,
    x: &'a [f32],
    w: &'a [f32],
    c: usize,
    off: usize,
    /// A row of zeros standing for input rows in the padding.
    zeros: &'a [f32],
    /// Per output vector and kernel column of a 3×3 kernel: the in-image lanes.
    masks: &'a [[u32; 3]],
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

unsafe fn plane(p: &Plane, y: &mut [f32], epi: &Epi) {
    #[cfg(target_arch = "x86_64")]
    if super::use_avx512() && p.d.stride_w <= 2 {
        let d = p.d;
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
fn input_row(d: &Conv2dDesc, oy: usize, ky: usize) -> Option<usize> {
    let iy = (oy * d.stride_h + ky * d.dilation_h).wrapping_sub(d.pad_top);
    (iy < d.h).then_some(iy)
}

/// Bits `lo..hi` set (`hi ≤ 32`).
#[inline(always)]
fn range_mask(lo: isize, hi: isize) -> u32 {
    let (lo, hi) = (lo.clamp(0, 32) as u32, hi.clamp(0, 32) as u32);
    if hi <= lo {
        return 0;
    }
    let upto = |n: u32| if n >= 32 { u32::MAX } else { (1u32 << n) - 1 };
    upto(hi) & !upto(lo)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn plane512(p: &Plane, y: &mut [f32], epi: &Epi) {
    let d = p.d;
    let (ow, sw) = (d.out_w(), d.stride_w as isize);
    let evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (oy, yrow) in y.chunks_exact_mut(ow).enumerate() {
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
                    let src = p.x.as_ptr().add(iy * d.w).wrapping_offset(base);
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
            _mm512_mask_storeu_ps(yrow.as_mut_ptr().add(ox0), mask, r);
        }
    }
}

/// 16 input values at column `base` (stride `S`) of `row`, lanes outside `mask` read as 0.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn load<const S: usize>(row: *const f32, base: isize, mask: u32, full: bool) -> __m512 {
    let src = row.wrapping_offset(base);
    if S == 1 {
        return if full {
            _mm512_loadu_ps(src)
        } else {
            _mm512_maskz_loadu_ps(mask as u16, src)
        };
    }
    let evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let (lo, hi) = if full {
        (_mm512_loadu_ps(src), _mm512_loadu_ps(src.wrapping_add(16)))
    } else {
        (
            _mm512_maskz_loadu_ps(mask as u16, src),
            _mm512_maskz_loadu_ps((mask >> 16) as u16, src.wrapping_add(16)),
        )
    };
    _mm512_permutex2var_ps(lo, evens, hi)
}

/// 3×3 kernels (any row stride and dilation, column stride `S`, column dilation
/// 1): weights stay in registers, input rows in the padding point at a zero
/// row (no branches), and the vectors whose taps all lie inside the row run
/// four at a time with a separate accumulator per vector and kernel row, so
/// the FMA chains overlap. Vectors at the row's ends use masked loads.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn plane3x3<const S: usize>(p: &Plane, y: &mut [f32], epi: &Epi) {
    let d = p.d;
    let ow = d.out_w();
    let mut wv = [_mm512_setzero_ps(); 9];
    for (v, &w) in wv.iter_mut().zip(p.w) {
        *v = _mm512_set1_ps(w);
    }
    let (w, pl) = (d.w as isize, d.pad_left as isize);
    let span = 16 * S as isize + 2;
    // Vectors [v_lo, v_hi) are full: base = 16·v·S − pl ≥ 0 and base + span ≤ w.
    let v_lo = (pl as usize).div_ceil(16 * S);
    let v_hi = if w + pl >= span {
        ((w + pl - span) as usize / (16 * S) + 1).min(ow / 16)
    } else {
        0
    };
    let v_hi = v_hi.max(v_lo);
    let base_of = |v: usize| (16 * v * S) as isize - pl;
    for (oy, yrow) in y.chunks_exact_mut(ow).enumerate() {
        let rows: [*const f32; 3] = std::array::from_fn(|ky| {
            input_row(d, oy, ky).map_or(p.zeros.as_ptr(), |iy| p.x.as_ptr().add(iy * d.w))
        });
        let at = Row {
            p,
            epi,
            y: yrow.as_mut_ptr(),
            ow,
            oy,
        };
        let mut v = v_lo;
        while v + 4 <= v_hi {
            let acc = full_vectors::<S, 4>(&rows, base_of(v), &wv);
            for (i, a) in acc.into_iter().enumerate() {
                at.store(v + i, a);
            }
            v += 4;
        }
        while v < v_hi {
            at.store(v, full_vectors::<S, 1>(&rows, base_of(v), &wv)[0]);
            v += 1;
        }
        for v in (0..v_lo).chain(v_hi.max(v_lo)..ow.div_ceil(16)) {
            let base = base_of(v);
            let mut acc = [_mm512_setzero_ps(); 3];
            for kx in 0..3 {
                let (b, m) = (base + kx as isize, p.masks[v][kx]);
                for (ky, &row) in rows.iter().enumerate() {
                    acc[ky] =
                        _mm512_fmadd_ps(wv[ky * 3 + kx], load::<S>(row, b, m, false), acc[ky]);
                }
            }
            at.store(v, _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), acc[2]));
        }
    }
}

/// Planes whose output rows fit one vector (7×7, 14×14): masks and weights
/// set once, two output rows per step so their FMA chains overlap.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn plane3x3_narrow<const S: usize>(p: &Plane, y: &mut [f32], epi: &Epi) {
    let d = p.d;
    let (oh, ow) = (d.out_h(), d.out_w());
    let mut wv = [_mm512_setzero_ps(); 9];
    for (v, &w) in wv.iter_mut().zip(p.w) {
        *v = _mm512_set1_ps(w);
    }
    let (m, base, omask) = (p.masks[0], -(d.pad_left as isize), lanes(ow));
    let rows = |oy: usize| -> [*const f32; 3] {
        std::array::from_fn(|ky| {
            input_row(d, oy, ky).map_or(p.zeros.as_ptr(), |iy| p.x.as_ptr().add(iy * d.w))
        })
    };
    // Stride 2 with at most 15 outputs: the 32 values from `base` cover every tap,
    // so each input row is loaded once and the three taps are permutes of it.
    let shared = S == 2 && ow <= 15;
    let taps = Taps {
        m,
        row_mask: range_mask(-base, d.w as isize - base),
        idx: [
            _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30),
            _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31),
            _mm512_setr_epi32(2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 0),
        ],
        wv,
    };
    let mut oy = 0;
    while oy < oh {
        let a = taps.row::<S>(&rows(oy), base, shared);
        let b = if oy + 1 < oh {
            taps.row::<S>(&rows(oy + 1), base, shared)
        } else {
            a
        };
        for (i, acc) in [a, b].into_iter().enumerate().take(oh - oy) {
            let off = (oy + i) * ow;
            let r = epi.vec16(acc, omask, p.c, 0, p.off + off);
            _mm512_mask_storeu_ps(y.as_mut_ptr().add(off), omask, r);
        }
        oy += 2;
    }
}

/// What a narrow plane's rows share: per-tap load masks, the whole-row mask and
/// permutes of the shared stride-2 loads, and the weights.
#[cfg(target_arch = "x86_64")]
struct Taps {
    m: [u32; 3],
    row_mask: u32,
    idx: [__m512i; 3],
    wv: [__m512; 9],
}

#[cfg(target_arch = "x86_64")]
impl Taps {
    /// One output vector from column `base`.
    #[inline(always)]
    unsafe fn row<const S: usize>(
        &self,
        rows: &[*const f32; 3],
        base: isize,
        shared: bool,
    ) -> __m512 {
        if shared {
            self.shared_row(rows, base)
        } else {
            masked_row::<S>(rows, base, &self.m, &self.wv)
        }
    }

    /// Stride 2: per input row, 32 values from `base` loaded once; tap `kx`
    /// takes lanes `2·l + kx` (lane 15 of tap 2 is never stored: ow ≤ 15).
    #[inline(always)]
    unsafe fn shared_row(&self, rows: &[*const f32; 3], base: isize) -> __m512 {
        let mut acc = [_mm512_setzero_ps(); 3];
        for (ky, &row) in rows.iter().enumerate() {
            let src = row.wrapping_offset(base);
            let lo = _mm512_maskz_loadu_ps(self.row_mask as u16, src);
            let hi = _mm512_maskz_loadu_ps((self.row_mask >> 16) as u16, src.wrapping_add(16));
            for (kx, a) in acc.iter_mut().enumerate() {
                let v = _mm512_permutex2var_ps(lo, self.idx[kx], hi);
                *a = _mm512_fmadd_ps(self.wv[ky * 3 + kx], v, *a);
            }
        }
        _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), acc[2])
    }
}

/// One output vector from column `base` with per-kernel-column load masks `m`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn masked_row<const S: usize>(
    rows: &[*const f32; 3],
    base: isize,
    m: &[u32; 3],
    wv: &[__m512; 9],
) -> __m512 {
    let mut acc = [_mm512_setzero_ps(); 3];
    for kx in 0..3 {
        for (ky, &row) in rows.iter().enumerate() {
            acc[ky] = _mm512_fmadd_ps(
                wv[ky * 3 + kx],
                load::<S>(row, base + kx as isize, m[kx], false),
                acc[ky],
            );
        }
    }
    _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), acc[2])
}

/// `V` consecutive output vectors from column `base`, every tap inside the rows.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn full_vectors<const S: usize, const V: usize>(
    rows: &[*const f32; 3],
    base: isize,
    wv: &[__m512; 9],
) -> [__m512; V] {
    let mut acc = [[_mm512_setzero_ps(); 3]; V];
    for kx in 0..3 {
        for (ky, &row) in rows.iter().enumerate() {
            for (v, a) in acc.iter_mut().enumerate() {
                let b = base + (v * 16 * S + kx) as isize;
                a[ky] = _mm512_fmadd_ps(wv[ky * 3 + kx], load::<S>(row, b, 0, true), a[ky]);
            }
        }
    }
    // A loop, not `map`: closures do not inherit the caller's target features.
    let mut out = [_mm512_setzero_ps(); V];
    for (o, a) in out.iter_mut().zip(acc) {
        *o = _mm512_add_ps(_mm512_add_ps(a[0], a[1]), a[2]);
    }
    out
}

/// Where one output row goes.
struct Row<'a, 'b> {
    p: &'a Plane<'b>,
    epi: &'a Epi,
    y: *mut f32,
    ow: usize,
    oy: usize,
}

impl Row<'_, '_> {
    /// Applies the epilogue to output vector `v` and stores its valid lanes.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn store(&self, v: usize, acc: __m512) {
        let ox0 = v * 16;
        let mask = lanes(self.ow - ox0);
        let r = self
            .epi
            .vec16(acc, mask, self.p.c, 0, self.p.off + self.oy * self.ow + ox0);
        _mm512_mask_storeu_ps(self.y.add(ox0), mask, r);
    }
}

unsafe fn plane_portable(p: &Plane, y: &mut [f32], epi: &Epi) {
    let d = p.d;
    let ow = d.out_w();
    for (oy, yrow) in y.chunks_exact_mut(ow).enumerate() {
        for (ox, out) in yrow.iter_mut().enumerate() {
            let mut acc = 0f32;
            for ky in 0..d.kh {
                let Some(iy) = input_row(d, oy, ky) else {
                    continue;
                };
                for kx in 0..d.kw {
                    let ix = (ox * d.stride_w + kx * d.dilation_w).wrapping_sub(d.pad_left);
                    if ix < d.w {
                        acc += p.w[ky * d.kw + kx] * p.x[iy * d.w + ix];
                    }
                }
            }
            *out = epi.scalar(acc, p.c, 0, p.off + oy * ow + ox);
        }
    }
}
