//! AVX-512 depthwise kernels for 3×3 windows (column dilation 1, column stride
//! 1 or 2; any row stride and dilation), the MobileNet case.
//!
//! - [`plane3x3`]: rows wider than one vector. Weights stay in registers, input
//!   rows in the padding point at a zero row (no branches), and the vectors
//!   whose taps all lie inside the row run four at a time with an accumulator
//!   per vector and kernel row, so the FMA chains overlap; the other vectors
//!   (the row's ends, short rows) run for two output rows at once; the row's
//!   ends use the per-plane load masks.
//! - [`plane3x3_narrow`]: rows of at most one vector (7×7, 14×14 planes), two
//!   output rows per step; with stride 2 each input row is loaded once and the
//!   three taps are permutes of it.

use super::depthwise::{input_row, range_mask, Plane};
use super::epilogue::{lanes, Epi};
use std::arch::x86_64::*;

/// 16 input values at column `base` (stride `S`) of `row`, lanes outside `mask` read as 0.
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
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn plane3x3<const S: usize>(p: &Plane, y: *mut f32, epi: &Epi) {
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
    let oh = p.rows.end;
    let rows = |oy: usize| -> [*const f32; 3] {
        std::array::from_fn(|ky| {
            input_row(d, oy, ky).map_or(p.zeros.as_ptr(), |iy| p.x.add(iy * d.w))
        })
    };
    // Two output rows per step: vectors outside the 4-vector groups (the row's
    // ends, short rows) then have two independent chains in flight.
    let mut oy = p.rows.start;
    while oy < oh {
        let pair = oy + 1 < oh;
        let ra = rows(oy);
        let rb = if pair { rows(oy + 1) } else { ra };
        let y0 = y.add(oy * ow);
        let at = [oy, oy + 1].map(|o| Row {
            p,
            epi,
            y: y0.wrapping_add((o - oy) * ow),
            ow,
            oy: o,
        });
        let mut v = v_lo;
        while v + 4 <= v_hi {
            for (r, at) in [&ra, &rb].into_iter().zip(&at).take(1 + pair as usize) {
                let acc = full_vectors::<S, 4>(r, base_of(v), &wv);
                for (i, a) in acc.into_iter().enumerate() {
                    at.store(v + i, a);
                }
            }
            v += 4;
        }
        for v in (0..v_lo).chain(v..ow.div_ceil(16)) {
            let (a, b) = if v >= v_lo && v < v_hi {
                let a = full_vectors::<S, 1>(&ra, base_of(v), &wv)[0];
                (a, full_vectors::<S, 1>(&rb, base_of(v), &wv)[0])
            } else {
                let a = masked_row::<S>(&ra, base_of(v), &p.masks[v], &wv);
                (a, masked_row::<S>(&rb, base_of(v), &p.masks[v], &wv))
            };
            at[0].store(v, a);
            if pair {
                at[1].store(v, b);
            }
        }
        oy += 2;
    }
}

/// Planes whose output rows fit one vector (7×7, 14×14): masks and weights
/// set once, two output rows per step so their FMA chains overlap.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn plane3x3_narrow<const S: usize>(p: &Plane, y: *mut f32, epi: &Epi) {
    let d = p.d;
    let (oh, ow) = (p.rows.end, d.out_w());
    let mut wv = [_mm512_setzero_ps(); 9];
    for (v, &w) in wv.iter_mut().zip(p.w) {
        *v = _mm512_set1_ps(w);
    }
    let (m, base, omask) = (p.masks[0], -(d.pad_left as isize), lanes(ow));
    let rows = |oy: usize| -> [*const f32; 3] {
        std::array::from_fn(|ky| {
            input_row(d, oy, ky).map_or(p.zeros.as_ptr(), |iy| p.x.add(iy * d.w))
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
    let mut oy = p.rows.start;
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
            _mm512_mask_storeu_ps(y.add(off), omask, r);
        }
        oy += 2;
    }
}

/// What a narrow plane's rows share: per-tap load masks, the whole-row mask and
/// permutes of the shared stride-2 loads, and the weights.
struct Taps {
    m: [u32; 3],
    row_mask: u32,
    idx: [__m512i; 3],
    wv: [__m512; 9],
}

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
