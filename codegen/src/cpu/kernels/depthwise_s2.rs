//! 3×3 depthwise convolution with column stride 2 on rows wider than one
//! output vector (MobileNet's 112→56 and 56→28 layers), AVX-512.
//!
//! Output column `ox` reads padded input columns `2·ox + kx`. Each input row
//! is split once into its even and odd padded columns (two permutes per 32
//! inputs, into a small per-thread buffer), after which tap 0 is
//! `even[ox]`, tap 1 `odd[ox]` and tap 2 `even[ox + 1]`: three plain loads
//! per kernel row and no permute per tap (gathering the even lanes per tap
//! takes two loads and a permute each, 9 permutes per output vector). A row
//! serves the output rows under it, kept in one of three slots (`row mod 3`);
//! rows in the padding use a zero slot. Measured in MobileNetV2's features.2
//! band (96 channels, 7 output rows of 56): 78 → 71 k cycles (minimum).

use super::depthwise::{input_row, Plane};
use super::epilogue::{lanes, Epi};
use super::split_rows::Splitter;
use std::arch::x86_64::*;

/// Whether [`plane3x3_s2`] computes `d`'s planes.
pub(super) fn fits(d: &super::conv::Conv2dDesc) -> bool {
    d.kh == 3
        && d.kw == 3
        && d.stride_w == 2
        && d.dilation_w == 1
        && d.dilation_h == 1
        && d.out_w() > 16
}

thread_local! {
    /// Four slots of split rows (three input rows and a zero row).
    static SLOTS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The rows `p.rows` of one plane into `y` (the plane's output).
///
/// # Safety
/// As [`super::depthwise::plane_rows`]; AVX-512F must be available.
pub(super) unsafe fn plane3x3_s2(p: &Plane, y: *mut f32, epi: &Epi) {
    // Even (and odd) entries per split row: index ow + 16 is the furthest
    // full-vector load (tap 2 of the last vector), all beyond the row zero.
    let half = p.d.out_w().div_ceil(16) * 16 + 16;
    SLOTS.with(|slots| {
        let mut slots = slots.borrow_mut();
        if slots.len() < 8 * half {
            slots.resize(8 * half, 0.0);
        }
        // SAFETY: the slots hold 8·half values; the rest is the caller's contract.
        unsafe { rows(p, y, epi, slots.as_mut_ptr(), half) }
    });
}

/// [`plane3x3_s2`] with its slots at `buf` (no closure: closures do not
/// inherit target features).
#[target_feature(enable = "avx512f")]
unsafe fn rows(p: &Plane, y: *mut f32, epi: &Epi, buf: *mut f32, half: usize) {
    let d = p.d;
    let ow = d.out_w();
    // Slot 3 is the zero row (never written).
    buf.add(6 * half).write_bytes(0, 2 * half);
    let split = Splitter::new(d.w, d.pad_left, half);
    let mut held = [usize::MAX; 3];
    let mut wv = [_mm512_setzero_ps(); 9];
    for (v, &w) in wv.iter_mut().zip(p.w) {
        *v = _mm512_set1_ps(w);
    }
    for oy in p.rows.clone() {
        let mut rows = [buf.add(6 * half).cast_const(); 3];
        for (ky, row) in rows.iter_mut().enumerate() {
            let Some(iy) = input_row(d, oy, ky) else {
                continue;
            };
            let slot = buf.add(iy % 3 * 2 * half);
            if held[iy % 3] != iy {
                split.row(p.x.wrapping_add(iy * d.w), slot);
                held[iy % 3] = iy;
            }
            *row = slot;
        }
        let out = y.add(oy * ow);
        for v in 0..ow.div_ceil(16) {
            let acc = taps(&rows, half, 16 * v, &wv);
            let mask = lanes(ow - 16 * v);
            let r = epi.vec16(acc, mask, p.c, 0, p.off + oy * ow + 16 * v);
            _mm512_mask_storeu_ps(out.add(16 * v), mask, r);
        }
    }
}

/// One output vector at column `o` from three split rows (even entries,
/// then `half` further the odd ones).
#[inline(always)]
unsafe fn taps(rows: &[*const f32; 3], half: usize, o: usize, wv: &[__m512; 9]) -> __m512 {
    let mut acc = [_mm512_setzero_ps(); 3];
    for (ky, &r) in rows.iter().enumerate() {
        let (even, odd) = (r.add(o), r.add(half + o));
        let a = _mm512_fmadd_ps(wv[3 * ky], _mm512_loadu_ps(even), acc[ky]);
        let a = _mm512_fmadd_ps(wv[3 * ky + 1], _mm512_loadu_ps(odd), a);
        acc[ky] = _mm512_fmadd_ps(wv[3 * ky + 2], _mm512_loadu_ps(even.add(1)), a);
    }
    _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), acc[2])
}
