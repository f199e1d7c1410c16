//! The AVX-512 path of [`super::pool`]: staging input rows with masked loads
//! (the padding lanes read the pad value, no byte outside the row is touched;
//! stride 2 splits 32 loaded columns into their even and odd halves with two
//! permutes), and reducing up to four vectors (64 output columns) at a time
//! over every staged row and tap, with one masked store per vector; or, for
//! the plane schedule, reducing each staged row over its taps once
//! ([`reduce_taps`]) and the partial rows per output row ([`reduce_rows`]).

use super::depthwise::range_mask;
use super::epilogue::lanes;
use super::pool::{Pool, PoolKind};
use std::arch::x86_64::*;

/// Stages `row` into `slot` (`stride · half` long) for strides 1 and 2.
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) unsafe fn stage(p: &Pool, row: &[f32], slot: &mut [f32]) {
    debug_assert!(p.stride <= 2 && slot.len() >= p.stride * p.half);
    let (w, pad, half) = (row.len() as isize, p.pad as isize, p.half);
    let pv = _mm512_set1_ps(p.pad_value());
    let (x, dst) = (row.as_ptr(), slot.as_mut_ptr());
    if p.stride == 1 {
        for j in (0..half).step_by(16) {
            let c = j as isize - pad;
            let m = range_mask(-c, w - c) as u16;
            let v = _mm512_mask_loadu_ps(pv, m, x.wrapping_offset(c));
            _mm512_storeu_ps(dst.add(j), v);
        }
        return;
    }
    let evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odds = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for j in (0..2 * half).step_by(32) {
        let c = j as isize - pad;
        let m = range_mask(-c, w - c);
        let src = x.wrapping_offset(c);
        let lo = _mm512_mask_loadu_ps(pv, m as u16, src);
        let hi = _mm512_mask_loadu_ps(pv, (m >> 16) as u16, src.wrapping_add(16));
        _mm512_storeu_ps(dst.add(j / 2), _mm512_permutex2var_ps(lo, evens, hi));
        _mm512_storeu_ps(dst.add(half + j / 2), _mm512_permutex2var_ps(lo, odds, hi));
    }
}

/// One output row from the staged rows in slots `order` of `buf`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn reduce_row(
    p: &Pool,
    buf: &[f32],
    order: &[usize],
    row_scale: f32,
    y: &mut [f32],
) {
    debug_assert!(y.len() >= p.ow);
    let max = p.kind == PoolKind::Max;
    for ox in (0..p.ow).step_by(64) {
        match ((p.ow - ox).div_ceil(16), max) {
            (1, true) => block::<1, true>(p, buf, order, row_scale, ox, y),
            (2, true) => block::<2, true>(p, buf, order, row_scale, ox, y),
            (3, true) => block::<3, true>(p, buf, order, row_scale, ox, y),
            (_, true) => block::<4, true>(p, buf, order, row_scale, ox, y),
            (1, false) => block::<1, false>(p, buf, order, row_scale, ox, y),
            (2, false) => block::<2, false>(p, buf, order, row_scale, ox, y),
            (3, false) => block::<3, false>(p, buf, order, row_scale, ox, y),
            (_, false) => block::<4, false>(p, buf, order, row_scale, ox, y),
        }
    }
}

/// Output columns `ox .. ox + 16·NV` (clipped to the row); `MAX`: max, else a
/// (scaled) sum. `half` covers the output row rounded up to a vector plus
/// the taps' reach, so every load stays in its slot.
#[inline(always)]
unsafe fn block<const NV: usize, const MAX: bool>(
    p: &Pool,
    buf: &[f32],
    order: &[usize],
    row_scale: f32,
    ox: usize,
    y: &mut [f32],
) {
    let slot_len = p.stride * p.half;
    let init = if MAX { f32::NEG_INFINITY } else { 0.0 };
    let mut acc = [_mm512_set1_ps(init); NV];
    for &s in order {
        let b = buf.as_ptr().add(s * slot_len + ox);
        for &t in &p.taps {
            let q = b.add(t);
            for (v, a) in acc.iter_mut().enumerate() {
                let x = _mm512_loadu_ps(q.add(16 * v));
                // max_ps returns its second operand when `x` is NaN.
                *a = if MAX {
                    _mm512_max_ps(x, *a)
                } else {
                    _mm512_add_ps(*a, x)
                };
            }
        }
    }
    let rs = _mm512_set1_ps(row_scale);
    for (v, &a) in acc.iter().enumerate() {
        let c = ox + 16 * v;
        if c >= p.ow {
            break;
        }
        let r = if MAX {
            a
        } else {
            _mm512_mul_ps(
                a,
                _mm512_mul_ps(rs, _mm512_loadu_ps(p.col_scale.as_ptr().add(c))),
            )
        };
        _mm512_mask_storeu_ps(y.as_mut_ptr().add(c), lanes(p.ow - c), r);
    }
}

/// Partial results of one staged row: `out[ox]` = the max (or sum) over the
/// last axis's taps of output column `ox`, for the output row rounded up to
/// vectors (`out` holds that many).
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) unsafe fn reduce_taps(p: &Pool, slot: &[f32], out: &mut [f32]) {
    debug_assert!(out.len() >= p.ow.div_ceil(16) * 16);
    let max = p.kind == PoolKind::Max;
    let init = _mm512_set1_ps(if max { f32::NEG_INFINITY } else { 0.0 });
    let s = slot.as_ptr();
    for ox in (0..p.ow).step_by(16) {
        let b = s.add(ox);
        let mut a = init;
        for &t in &p.taps {
            let x = _mm512_loadu_ps(b.add(t));
            // max_ps returns its second operand when `x` is NaN.
            a = if max {
                _mm512_max_ps(x, a)
            } else {
                _mm512_add_ps(a, x)
            };
        }
        _mm512_storeu_ps(out.as_mut_ptr().add(ox), a);
    }
}

/// One output row from the partial rows `rows` (each `pitch` floats into `part`).
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) unsafe fn reduce_rows(
    p: &Pool,
    part: &[f32],
    pitch: usize,
    rows: &[usize],
    row_scale: f32,
    y: &mut [f32],
) {
    let max = p.kind == PoolKind::Max;
    let init = _mm512_set1_ps(if max { f32::NEG_INFINITY } else { 0.0 });
    let rs = _mm512_set1_ps(row_scale);
    for ox in (0..p.ow).step_by(16) {
        let mut a = init;
        for &ir in rows {
            debug_assert!(ir * pitch + ox + 16 <= part.len());
            let x = _mm512_loadu_ps(part.as_ptr().add(ir * pitch + ox));
            a = if max {
                _mm512_max_ps(x, a)
            } else {
                _mm512_add_ps(a, x)
            };
        }
        if !max {
            let cs = _mm512_loadu_ps(p.col_scale.as_ptr().add(ox));
            a = _mm512_mul_ps(a, _mm512_mul_ps(rs, cs));
        }
        _mm512_mask_storeu_ps(y.as_mut_ptr().add(ox), lanes(p.ow - ox), a);
    }
}

/// One plane on the plane schedule: every input row staged into `slots`
/// (`in_rows` slots, all staged before any is read, so no load waits on a
/// store it partly overlaps), reduced over its taps into `part` (`in_rows`
/// rows of the output width rounded up to vectors), then every output row
/// from the partial rows it reads, into `y` (the plane's output rows). Max
/// and average only (no Lp transform).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn plane(
    p: &Pool,
    x: &[f32],
    slots: &mut [f32],
    part: &mut [f32],
    y: &mut [f32],
) {
    let pitch = p.ow.div_ceil(16) * 16;
    let slot_len = p.stride * p.half;
    let (in_rows, in_w) = p.in_rows();
    for ir in 0..in_rows {
        stage(
            p,
            &x[ir * in_w..][..in_w],
            &mut slots[ir * slot_len..][..slot_len],
        );
    }
    for ir in 0..in_rows {
        reduce_taps(
            p,
            &slots[ir * slot_len..][..slot_len],
            &mut part[ir * pitch..][..pitch],
        );
    }
    for (r, (rows, scale)) in p.row_windows().enumerate() {
        reduce_rows(p, part, pitch, rows, scale, &mut y[r * p.ow..][..p.ow]);
    }
}
