//! `erf` and the exact GELU, `x/2 · (1 + erf(x/√2))`, for 16 f32 lanes.
//!
//! `erf` uses its Taylor series `x·P(x²)` (11 terms, below 1e-8 relative) for
//! `|x| < 1`, and above it `1 − t·Q(t)·e^(−x²)` with `t = 1/(1 + p|x|)`
//! (Abramowitz & Stegun 7.1.26, absolute error below 1.5e-7 where erf > 0.84),
//! with the sign of `x`. The scalar forms use `libm::erff`.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// `2/√π · (−1)^n / (n! (2n+1))` for n = 10 down to 0.
const TAYLOR: [f32; 11] = [
    1.480_719_3e-8,
    -1.636_584_5e-7,
    1.646_211_4e-6,
    -1.492_565e-5,
    1.205_533_3e-4,
    -8.548_327e-4,
    5.223_977_6e-3,
    -2.686_617e-2,
    1.128_379_2e-1,
    -3.761_264e-1,
    std::f32::consts::FRAC_2_SQRT_PI,
];
/// Abramowitz & Stegun 7.1.26: a5 down to a1, and p.
const AS: [f32; 5] = [
    1.061_405_4,
    -1.453_152,
    1.421_413_7,
    -0.284_496_74,
    0.254_829_6,
];
const AS_P: f32 = 0.327_591_1;

/// The exact (erf) GELU of one value.
#[inline]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// `√(2/π)` and the cubic coefficient of the tanh GELU.
const GELU_TANH: (f32, f32) = (0.797_884_6, 0.044_715);

/// The tanh GELU of one value.
pub fn gelu_tanh(x: f32) -> f32 {
    let (k, c) = GELU_TANH;
    0.5 * x * (1.0 + (k * (x + c * x * x * x)).tanh())
}

/// The tanh GELU of 16 lanes: `tanh(u) = 1 − 2 / (e^{2u} + 1)` with
/// [`super::exp::exp16`] (which saturates: ±1 for large |u|); absolute error
/// about 1e-7 in the tanh, so GELU's error stays below 1e-7·|x|.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub(crate) unsafe fn gelu_tanh16(x: __m512) -> __m512 {
    let (k, c) = GELU_TANH;
    let x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
    let u = _mm512_mul_ps(_mm512_set1_ps(k), _mm512_fmadd_ps(_mm512_set1_ps(c), x3, x));
    let e = super::exp::exp16(_mm512_add_ps(u, u));
    let t = _mm512_sub_ps(
        _mm512_set1_ps(1.0),
        _mm512_div_ps(_mm512_set1_ps(2.0), _mm512_add_ps(e, _mm512_set1_ps(1.0))),
    );
    let half = _mm512_mul_ps(_mm512_set1_ps(0.5), x);
    _mm512_fmadd_ps(half, t, half)
}

/// `erf` of 16 lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub(crate) unsafe fn erf16(x: __m512) -> __m512 {
    let ax = _mm512_abs_ps(x);
    let z = _mm512_mul_ps(x, x);
    let mut p = _mm512_set1_ps(TAYLOR[0]);
    for &c in &TAYLOR[1..] {
        p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(c));
    }
    let small = _mm512_mul_ps(p, x);
    let one = _mm512_set1_ps(1.0);
    let t = _mm512_div_ps(one, _mm512_fmadd_ps(ax, _mm512_set1_ps(AS_P), one));
    let mut q = _mm512_set1_ps(AS[0]);
    for &c in &AS[1..] {
        q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(c));
    }
    let e = super::exp::exp16(_mm512_sub_ps(_mm512_setzero_ps(), z));
    let big = _mm512_fnmadd_ps(_mm512_mul_ps(q, t), e, one);
    // Copy the sign of x onto the large-|x| branch.
    let sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(i32::MIN));
    let big = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(big), sign));
    let is_small = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(ax, one);
    _mm512_mask_blend_ps(is_small, big, small)
}

/// The exact GELU of 16 lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub(crate) unsafe fn gelu16(x: __m512) -> __m512 {
    let e = erf16(_mm512_mul_ps(
        x,
        _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2),
    ));
    let h = _mm512_mul_ps(x, _mm512_set1_ps(0.5));
    _mm512_fmadd_ps(h, e, h)
}
