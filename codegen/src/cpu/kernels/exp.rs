//! Vectorized `exp` for 16 f32 lanes (AVX-512), about 1e-7 relative error.
//!
//! `e^x = 2^n · e^r` with `n = round(x·log2 e)` and `r = x − n·ln 2` (ln 2 split in
//! a high and a low part so `r` is exact to f32), `e^r` by its degree-7 Taylor
//! polynomial on |r| ≤ ln2/2 (truncation < 3e-9), and `2^n` applied with
//! `vscalefps`, which saturates to +inf. Inputs are clamped to [-87, 89]
//! first and lanes below -87 give 0: their exact results are denormal (below
//! 1.7e-38), and producing denormals costs a microcode assist per
//! instruction, which made masked softmax rows (−3.4e38 logits) 4x slower.
//! So −inf gives 0, +inf gives +inf, NaN stays NaN.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub(crate) unsafe fn exp16(x: __m512) -> __m512 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let tiny = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_set1_ps(-87.0));
    // max/min return their second operand when either is NaN: keep x second.
    let x = _mm512_min_ps(
        _mm512_set1_ps(89.0),
        _mm512_max_ps(_mm512_set1_ps(-87.0), x),
    );
    let t = _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E));
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(t);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    const C: [f32; 8] = [
        1.0,
        1.0,
        0.5,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5040.0,
    ];
    let mut p = _mm512_set1_ps(C[7]);
    for &c in C[..7].iter().rev() {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    _mm512_maskz_mov_ps(!tiny, _mm512_scalef_ps(p, n))
}
