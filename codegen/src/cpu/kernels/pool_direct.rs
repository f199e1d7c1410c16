//! The direct AVX-512 schedule of [`super::pool`]: one output row at a time,
//! 16 output columns per step, nothing staged in memory.
//!
//! For a block of 16 outputs, the input columns their windows span (at most
//! `16·s + reach` of them, `s` ≤ 2) are loaded from every input row the
//! output row's window reads, with the padding lanes masked to the pad value,
//! and reduced across those rows in registers (the vertical part of the
//! window). Each last-axis tap then picks its 16 columns out of those
//! vectors with one or two lane permutes (a shifted and, for stride 2,
//! strided selection: lane `j` of tap offset `o` is element `o + s·j`), and
//! the taps are reduced into the result. A 3×3 stride-2 max pool costs 9
//! masked loads, 6 + 3 maxima and 3 to 6 permutes per 16 outputs, all from
//! L1, with no intermediate rows written (the plane schedule writes every
//! input row twice before reading it back).

use super::epilogue::lanes;
use super::pool::{Pool, PoolKind};
use std::arch::x86_64::*;
use std::ops::Range;

/// Vectors of input columns one 16-output block may span.
const SPAN: usize = 6;

/// One last-axis tap's selection from the block's vectors: lanes from
/// vectors `lo` and `lo + 1` through `idx_lo`, then the lanes in `mask_hi`
/// from vector `lo + 2` through `idx_hi`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pick {
    lo: usize,
    idx_lo: [i32; 16],
    idx_hi: [i32; 16],
    mask_hi: u16,
}

/// What the direct schedule needs of one pool: the taps' picks, the vectors
/// a block loads, and per 16-output block whether all its loads lie inside
/// the row and, if not, each load's mask of in-row lanes.
#[derive(Clone, Debug)]
pub(super) struct Direct {
    picks: Vec<Pick>,
    vectors: usize,
    blocks: Vec<(bool, [u16; SPAN])>,
}

impl Direct {
    /// For last-axis tap offsets `offsets`, stride `s`, `w` input columns,
    /// `pad` before them and `ow` outputs; `None` where [`picks`] is.
    pub(super) fn new(
        offsets: &[usize],
        s: usize,
        w: usize,
        pad: usize,
        ow: usize,
    ) -> Option<Direct> {
        let (picks, vectors) = picks(offsets, s)?;
        let (w, pad) = (w as isize, pad as isize);
        let blocks = (0..ow)
            .step_by(16)
            .map(|ox| {
                let base = (ox * s) as isize - pad;
                let mut m = [0u16; SPAN];
                for (i, mi) in m.iter_mut().enumerate().take(vectors) {
                    let c = base + 16 * i as isize;
                    *mi = super::depthwise::range_mask(-c, w - c) as u16;
                }
                (m[..vectors].iter().all(|&x| x == u16::MAX), m)
            })
            .collect();
        Some(Direct {
            picks,
            vectors,
            blocks,
        })
    }
}

/// The picks of taps at column offsets `offsets` for stride `s`, and the
/// vectors a block must load; `None` when a block would span more than
/// [`SPAN`] vectors or the stride is not 1 or 2.
pub(super) fn picks(offsets: &[usize], s: usize) -> Option<(Vec<Pick>, usize)> {
    let reach = offsets.iter().copied().max()?;
    if !(1..=2).contains(&s) || reach / 16 + 3 > SPAN {
        return None;
    }
    let vectors = (15 * s + reach + 1).div_ceil(16);
    let picks = offsets
        .iter()
        .map(|&o| {
            let lo = o / 16;
            let mut p = Pick {
                lo,
                idx_lo: [0; 16],
                idx_hi: [0; 16],
                mask_hi: 0,
            };
            for j in 0..16 {
                let f = o + s * j - 16 * lo;
                if f < 32 {
                    p.idx_lo[j] = f as i32;
                } else {
                    p.idx_hi[j] = (f - 32) as i32;
                    p.mask_hi |= 1 << j;
                }
            }
            p
        })
        .collect();
    Some((picks, vectors))
}

/// Which output rows one task computes.
#[derive(Clone, Debug)]
pub(super) enum Units {
    /// Flat over planes and output rows (whole planes, plane after plane).
    Flat(Range<usize>),
    /// These output rows of every plane (plane after plane): the task reads
    /// the same rows of the input as a producer that split its output rows
    /// the same way wrote on this core.
    Band(Range<usize>),
}

/// Output rows `units` of `x` into `y`.
///
/// # Safety
/// AVX-512F must be available; `x` holds every input plane, `y` every output
/// row in `units` (no other task writes them), and `d` is this pool's.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn units(p: &Pool, x: &[f32], units: Units, y: *mut f32, d: &Direct) {
    let (picks, vectors, blocks) = (&d.picks[..], d.vectors, &d.blocks[..]);
    debug_assert!(vectors <= SPAN);
    let max = p.kind == PoolKind::Max;
    let fixed = picks.iter().all(|t| t.lo == 0) && vectors <= 3 && picks.len() <= 4;
    macro_rules! fixed {
        ($(($n:literal, $k:literal))*) => {
            match (vectors, picks.len(), max) {
                $(($n, $k, true) => each(p, x, units, y, |pl, r, s, yr| row_fixed::<$n, $k, true>(p, pl, r, s, picks, blocks, yr)),
                  ($n, $k, false) => each(p, x, units, y, |pl, r, s, yr| row_fixed::<$n, $k, false>(p, pl, r, s, picks, blocks, yr)),)*
                _ => unreachable!("at most 3 vectors and 4 taps"),
            }
        };
    }
    macro_rules! any {
        ($($n:literal)*) => {
            match (vectors, max) {
                $(($n, true) => each(p, x, units, y, |pl, r, s, yr| row_kind::<$n, true>(p, pl, r, s, picks, blocks, yr)),
                  ($n, false) => each(p, x, units, y, |pl, r, s, yr| row_kind::<$n, false>(p, pl, r, s, picks, blocks, yr)),)*
                _ => unreachable!("at most {SPAN} vectors"),
            }
        };
    }
    if fixed {
        fixed!((1, 1)(1, 2)(1, 3)(1, 4)(2, 1)(2, 2)(2, 3)(2, 4)(3, 1)(3, 2)(3, 3)(3, 4))
    } else {
        any!(1 2 3 4 5 6)
    }
}

/// Runs `row(plane, input rows, row scale, output row)` for every unit.
#[inline(always)]
unsafe fn each<F>(p: &Pool, x: &[f32], units: Units, y: *mut f32, row: F)
where
    F: Fn(&[f32], &[usize], f32, &mut [f32]),
{
    let one = |u: usize| {
        let (plane, rows, scale) = p.unit(x, u);
        let yr = std::slice::from_raw_parts_mut(y.add(u * p.ow), p.ow);
        row(plane, rows, scale, yr);
    };
    match units {
        Units::Flat(range) => range.for_each(one),
        Units::Band(rows) => {
            let (planes, out_rows) = p.grid();
            for pl in 0..planes {
                rows.clone().for_each(|r| one(pl * out_rows + r));
            }
        }
    }
}

/// Max or sum of `a` and `x`; `max_ps` returns its second operand when `x`
/// is NaN, so NaN is never selected.
#[inline(always)]
unsafe fn reduce<const MAX: bool>(a: __m512, x: __m512) -> __m512 {
    if MAX {
        _mm512_max_ps(x, a)
    } else {
        _mm512_add_ps(a, x)
    }
}

/// One output row: per block of 16 outputs, the `N` vectors of input columns
/// the block spans, reduced over the window's input rows in registers, then
/// `taps(vectors)` reduces the block's taps out of them, then the average's
/// scale and a store masked to the row.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn row_with<const N: usize, const MAX: bool, T>(
    p: &Pool,
    plane: &[f32],
    rows: &[usize],
    row_scale: f32,
    blocks: &[(bool, [u16; SPAN])],
    y: &mut [f32],
    taps: T,
) where
    T: Fn(&[__m512; SPAN]) -> __m512,
{
    debug_assert!(N <= SPAN);
    let (w, s, pad) = (p.in_w(), p.stride as isize, p.pad as isize);
    let init = _mm512_set1_ps(if MAX { f32::NEG_INFINITY } else { 0.0 });
    let pv = _mm512_set1_ps(p.pad_value());
    let rs = _mm512_set1_ps(row_scale);
    let x = plane.as_ptr();
    for (ox, &(inside, m)) in (0..p.ow).step_by(16).zip(blocks) {
        let base = ox as isize * s - pad;
        let mut v = [init; SPAN];
        for &ir in rows {
            let src = x.add(ir * w).wrapping_offset(base);
            for i in 0..N {
                let q = src.wrapping_add(16 * i);
                // Masked loads are slow (Zen 5: about 2x): only blocks that
                // reach past either end of the row use them.
                let l = if inside {
                    _mm512_loadu_ps(q)
                } else {
                    _mm512_mask_mov_ps(pv, m[i], _mm512_maskz_loadu_ps(m[i], q))
                };
                v[i] = reduce::<MAX>(v[i], l);
            }
        }
        let mut acc = taps(&v);
        if !MAX {
            let cs = _mm512_loadu_ps(p.col_scale.as_ptr().add(ox));
            acc = _mm512_mul_ps(acc, _mm512_mul_ps(rs, cs));
        }
        _mm512_mask_storeu_ps(y.as_mut_ptr().add(ox), lanes(p.ow - ox), acc);
    }
}

/// [`row_kind`] for `K` taps that all pick from the first 3 of `N` vectors,
/// with every tap's permute indices in registers for the whole row.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn row_fixed<const N: usize, const K: usize, const MAX: bool>(
    p: &Pool,
    plane: &[f32],
    rows: &[usize],
    row_scale: f32,
    picks: &[Pick],
    blocks: &[(bool, [u16; SPAN])],
    y: &mut [f32],
) {
    debug_assert!(N <= 3 && picks.len() == K);
    let mut lo = [_mm512_setzero_si512(); K];
    let mut hi = [_mm512_setzero_si512(); K];
    let mut mh = [0u16; K];
    for t in 0..K {
        lo[t] = _mm512_loadu_si512(picks[t].idx_lo.as_ptr().cast());
        hi[t] = _mm512_loadu_si512(picks[t].idx_hi.as_ptr().cast());
        mh[t] = picks[t].mask_hi;
    }
    let init = _mm512_set1_ps(if MAX { f32::NEG_INFINITY } else { 0.0 });
    row_with::<N, MAX, _>(p, plane, rows, row_scale, blocks, y, |v| {
        let mut acc = init;
        for t in 0..K {
            let mut e = _mm512_permutex2var_ps(v[0], lo[t], v[1]);
            if N == 3 {
                e = _mm512_mask_permutexvar_ps(e, mh[t], hi[t], v[2]);
            }
            acc = reduce::<MAX>(acc, e);
        }
        acc
    })
}

/// Selects tap `t`'s 16 columns from the block's vectors `v`.
#[inline(always)]
unsafe fn pick(v: &[__m512; SPAN], t: &Pick) -> __m512 {
    let (a, b, c) = match t.lo {
        0 => (v[0], v[1], v[2]),
        1 => (v[1], v[2], v[3]),
        2 => (v[2], v[3], v[4]),
        _ => (v[3], v[4], v[5]),
    };
    let lo = _mm512_loadu_si512(t.idx_lo.as_ptr().cast());
    let e = _mm512_permutex2var_ps(a, lo, b);
    if t.mask_hi == 0 {
        return e;
    }
    let hi = _mm512_loadu_si512(t.idx_hi.as_ptr().cast());
    _mm512_mask_permutexvar_ps(e, t.mask_hi, hi, c)
}

/// One output row for any taps the block's `N` vectors hold.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn row_kind<const N: usize, const MAX: bool>(
    p: &Pool,
    plane: &[f32],
    rows: &[usize],
    row_scale: f32,
    picks: &[Pick],
    blocks: &[(bool, [u16; SPAN])],
    y: &mut [f32],
) {
    let init = _mm512_set1_ps(if MAX { f32::NEG_INFINITY } else { 0.0 });
    row_with::<N, MAX, _>(p, plane, rows, row_scale, blocks, y, |v| {
        picks
            .iter()
            .fold(init, |acc, t| reduce::<MAX>(acc, pick(v, t)))
    })
}

#[cfg(test)]
mod tests {
    use super::picks;

    #[test]
    fn picks_select_offset_plus_stride_times_lane() {
        for s in 1..=2 {
            for offsets in [vec![0, 1, 2], vec![0, 5, 10, 15, 20], vec![17, 33]] {
                let (ps, vectors) = picks(&offsets, s).unwrap();
                for (p, &o) in ps.iter().zip(&offsets) {
                    for j in 0..16 {
                        let f = if p.mask_hi >> j & 1 == 1 {
                            16 * (p.lo + 2) + p.idx_hi[j] as usize
                        } else {
                            16 * p.lo + p.idx_lo[j] as usize
                        };
                        assert_eq!(f, o + s * j);
                        assert!(f < 16 * vectors);
                    }
                }
            }
        }
        assert!(picks(&[0, 64], 2).is_none());
        assert!(picks(&[0, 1, 2], 3).is_none());
    }
}
