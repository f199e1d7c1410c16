//! Splitting an input row into its even and its odd padded columns, for
//! stride-2 kernels (depthwise 3×3, the direct stem): tap `kx` of output
//! column `ox` reads padded column `2·ox + kx`, which is then a plain load of
//! entry `ox + kx/2` of one half (no permute per tap).

use super::depthwise::range_mask;
use std::arch::x86_64::*;

/// Splits input rows into even and odd padded columns.
pub(super) struct Splitter {
    w: isize,
    pad: isize,
    half: usize,
    evens: __m512i,
    odds: __m512i,
}

impl Splitter {
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn new(w: usize, pad: usize, half: usize) -> Splitter {
        Splitter {
            w: w as isize,
            pad: pad as isize,
            half,
            evens: _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30),
            odds: _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31),
        }
    }

    /// Padded columns `0..2·half` of the row at `x`: even ones to
    /// `slot[..half]`, odd ones to `slot[half..2·half]`, zeros outside the row.
    #[inline(always)]
    pub(super) unsafe fn row(&self, x: *const f32, slot: *mut f32) {
        for j in (0..2 * self.half).step_by(32) {
            let c = j as isize - self.pad;
            let m = range_mask(-c, self.w - c);
            let src = x.wrapping_offset(c);
            let lo = _mm512_maskz_loadu_ps(m as u16, src);
            let hi = _mm512_maskz_loadu_ps((m >> 16) as u16, src.wrapping_add(16));
            _mm512_storeu_ps(slot.add(j / 2), _mm512_permutex2var_ps(lo, self.evens, hi));
            _mm512_storeu_ps(
                slot.add(self.half + j / 2),
                _mm512_permutex2var_ps(lo, self.odds, hi),
            );
        }
    }
}
