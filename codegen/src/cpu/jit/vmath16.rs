//! 16-lane AVX-512 versions of `vmath`'s f32 functions (the same
//! algorithms, polynomials and special cases, always with FMA), as
//! `extern "C"` helpers over chunks: `fn(a, b, out, n)` computes
//! `out[i] = f(a[i])` (or `pow(a[i], b[i])`) for `i < n`, the last partial
//! vector masked. The generated code calls them on L1-sized chunks of a
//! vectorized map (see `chunked`, and the tape interpreter `tape16`) when
//! the CPU has AVX-512F. Errors over `tests/jit_math.rs`'s dense sweep of
//! all f32 (same bounds as `vmath`): exp 0.97, log 0.77, tanh 1.31, erf
//! 3.01, sigmoid 2.61, sin 1.46, cos 1.46 ulp; pow 149 ulp, within
//! `3 + 3 |b ln|a||`.

#[cfg(target_arch = "x86_64")]
pub(crate) mod imp {
    use super::super::vmath::{
        COS_P, ERF_AS, ERF_AS_P, ERF_TAYLOR, EXP_P, LOG_P, PIO4, SIN_P, TANH_P, TRIG_FAST_MAX,
    };
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn k(c: f64) -> __m512 {
        _mm512_set1_ps(c as f32)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn horner(coeffs: &[f64], z: __m512) -> __m512 {
        let mut p = k(coeffs[0]);
        for &c in &coeffs[1..] {
            p = _mm512_fmadd_ps(p, z, k(c));
        }
        p
    }

    /// `-v` (sign bit flipped).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn neg(v: __m512) -> __m512 {
        let s = _mm512_set1_epi32(i32::MIN);
        _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), s))
    }

    /// `exp(x)`: `vexp_f32` with the scale applied by `vscalefps` (one
    /// rounding, denormal results and overflow to inf as there).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn exp16(x: __m512) -> __m512 {
        let (lo, hi) = (k(-104.0), k(88.73));
        let xc = _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, lo), x, lo);
        let xc = _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(xc, hi), xc, hi);
        let t = _mm512_mul_ps(xc, k(std::f64::consts::LOG2_E));
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(t);
        let r = _mm512_fnmadd_ps(n, k(0.693_359_375), xc);
        let r = _mm512_fnmadd_ps(n, k(-2.121_944_40e-4), r);
        let z = _mm512_mul_ps(r, r);
        let p = _mm512_fmadd_ps(horner(&EXP_P, r), z, r);
        let y = _mm512_add_ps(p, k(1.0));
        _mm512_scalef_ps(y, n)
    }

    /// `tanh(x)`: odd polynomial below 0.625, `1 - 2 / (exp(2|x|) + 1)`
    /// with the sign of `x` above.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn tanh16(x: __m512) -> __m512 {
        let ax = _mm512_abs_ps(x);
        let z = _mm512_mul_ps(x, x);
        let p = _mm512_mul_ps(_mm512_mul_ps(horner(&TANH_P, z), z), x);
        let small = _mm512_add_ps(p, x);
        let e = exp16(_mm512_mul_ps(ax, k(2.0)));
        let q = _mm512_div_ps(k(2.0), _mm512_add_ps(e, k(1.0)));
        let big = _mm512_sub_ps(k(1.0), q);
        let is_neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, k(0.0));
        let big = _mm512_mask_blend_ps(is_neg, big, neg(big));
        let is_small = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(ax, k(0.625));
        _mm512_mask_blend_ps(is_small, big, small)
    }

    /// `erf(x)`: Taylor series below 1, Abramowitz & Stegun 7.1.26 above.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn erf16(x: __m512) -> __m512 {
        let ax = _mm512_abs_ps(x);
        let z = _mm512_mul_ps(x, x);
        let small = _mm512_mul_ps(horner(&ERF_TAYLOR, z), x);
        let d = _mm512_add_ps(_mm512_mul_ps(ax, k(ERF_AS_P)), k(1.0));
        let t = _mm512_div_ps(k(1.0), d);
        let q = _mm512_mul_ps(horner(&ERF_AS, t), t);
        let q = _mm512_mul_ps(q, exp16(neg(z)));
        let big = _mm512_sub_ps(k(1.0), q);
        let is_neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, k(0.0));
        let big = _mm512_mask_blend_ps(is_neg, big, neg(big));
        let is_small = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(ax, k(1.0));
        _mm512_mask_blend_ps(is_small, big, small)
    }

    /// `ln(x)`: Cephes `logf` as `vlog_f32` (denormals scaled by 2^23).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn log16(x: __m512) -> __m512 {
        let zero = k(0.0);
        let tiny = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, k(f32::MIN_POSITIVE as f64));
        let xs = _mm512_mask_blend_ps(tiny, x, _mm512_mul_ps(x, k(8_388_608.0)));
        let bits = _mm512_castps_si512(xs);
        let e = _mm512_sub_epi32(_mm512_srli_epi32::<23>(bits), _mm512_set1_epi32(126));
        let ef = _mm512_cvtepi32_ps(e);
        let ef = _mm512_sub_ps(ef, _mm512_mask_blend_ps(tiny, zero, k(23.0)));
        let m = _mm512_and_si512(bits, _mm512_set1_epi32(0x007f_ffff));
        let m = _mm512_castsi512_ps(_mm512_or_si512(m, _mm512_set1_epi32(0x3f00_0000)));
        let lt = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(m, k(std::f64::consts::FRAC_1_SQRT_2));
        let f = _mm512_add_ps(m, _mm512_mask_blend_ps(lt, zero, m));
        let f = _mm512_sub_ps(f, k(1.0));
        let ef = _mm512_sub_ps(ef, _mm512_mask_blend_ps(lt, zero, k(1.0)));
        let z = _mm512_mul_ps(f, f);
        let y = _mm512_mul_ps(_mm512_mul_ps(horner(&LOG_P, f), f), z);
        let y = _mm512_fmadd_ps(ef, k(-2.121_944_40e-4), y);
        let y = _mm512_fmadd_ps(z, k(-0.5), y);
        let r = _mm512_fmadd_ps(ef, k(0.693_359_375), _mm512_add_ps(f, y));
        log_specials(x, r)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn log_specials(x: __m512, r: __m512) -> __m512 {
        let zero = k(0.0);
        let inf = k(f64::INFINITY);
        let r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_EQ_OQ>(x, inf), r, inf);
        let is_zero = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(x, zero);
        let r = _mm512_mask_blend_ps(is_zero, r, k(f64::NEG_INFINITY));
        let is_neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, zero);
        let r = _mm512_mask_blend_ps(is_neg, r, k(f64::NAN));
        _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(x, x), r, x)
    }

    /// `pow(a, b) = exp(b ln|a|)` with C's special cases, as `vpow_f32`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn pow16(a: __m512, b: __m512) -> __m512 {
        let r = exp16(_mm512_mul_ps(b, log16(_mm512_abs_ps(a))));
        let floor = |v| _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(v);
        let is_int = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(floor(b), b);
        let hb = _mm512_mul_ps(b, k(0.5));
        let even = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(floor(hb), hb);
        let odd = is_int & !even;
        let sa = _mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(i32::MIN));
        let sa = _mm512_maskz_mov_epi32(odd, sa);
        let r = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(r), sa));
        // NaN for negative finite `a` with non-integer `b`; the 1s.
        let is_neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, k(0.0));
        let finite = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(a, k(f64::NEG_INFINITY));
        let r = _mm512_mask_blend_ps(is_neg & finite & !is_int, r, k(f64::NAN));
        let b_inf = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(_mm512_abs_ps(b), k(f64::INFINITY));
        let a_m1 = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a, k(-1.0));
        let a_1 = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a, k(1.0));
        let b_0 = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(b, k(0.0));
        _mm512_mask_blend_ps((a_m1 & b_inf) | a_1 | b_0, r, k(1.0))
    }

    /// `sin(x)` (`cos = false`) or `cos(x)` as `vsincos_f32`; lanes with
    /// `|x|` above `TRIG_FAST_MAX` (or NaN) take std's scalar function.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn sincos16(x: __m512, cos: bool) -> __m512 {
        let ax = _mm512_abs_ps(x);
        let j = _mm512_cvttps_epi32(_mm512_mul_ps(ax, k(4.0 / std::f64::consts::PI)));
        let j = _mm512_and_si512(
            _mm512_add_epi32(j, _mm512_set1_epi32(1)),
            _mm512_set1_epi32(!1),
        );
        let yf = _mm512_cvtepi32_ps(j);
        let j = if cos {
            _mm512_sub_epi32(j, _mm512_set1_epi32(2))
        } else {
            j
        };
        let mut r = ax;
        for c in PIO4 {
            r = _mm512_fmadd_ps(yf, k(-c), r);
        }
        let z = _mm512_mul_ps(r, r);
        let s = _mm512_fmadd_ps(_mm512_mul_ps(horner(&SIN_P, z), z), r, r);
        let c = _mm512_mul_ps(_mm512_mul_ps(horner(&COS_P, z), z), z);
        let c = _mm512_add_ps(_mm512_fmadd_ps(z, k(-0.5), c), k(1.0));
        let use_cos = _mm512_test_epi32_mask(j, _mm512_set1_epi32(2));
        let v = _mm512_mask_blend_ps(use_cos, s, c);
        let jj = if cos {
            _mm512_xor_si512(j, _mm512_set1_epi32(-1))
        } else {
            j
        };
        let flip = _mm512_slli_epi32::<29>(_mm512_and_si512(jj, _mm512_set1_epi32(4)));
        let flip = if cos {
            flip
        } else {
            let sx = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(i32::MIN));
            _mm512_xor_si512(flip, sx)
        };
        let fast = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), flip));
        let ok = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(ax, k(TRIG_FAST_MAX));
        if ok == 0xffff {
            return fast;
        }
        let (mut xs, mut vs) = ([0f32; 16], [0f32; 16]);
        // SAFETY: both arrays hold 16 f32.
        unsafe {
            _mm512_storeu_ps(xs.as_mut_ptr(), x);
            _mm512_storeu_ps(vs.as_mut_ptr(), fast);
        }
        for lane in (0..16).filter(|l| ok >> l & 1 == 0) {
            vs[lane] = if cos { xs[lane].cos() } else { xs[lane].sin() };
        }
        // SAFETY: as above.
        unsafe { _mm512_loadu_ps(vs.as_ptr()) }
    }

    /// `out[i] = f(a[i], b[i])` for `i < n` (the last vector masked).
    ///
    /// # Safety
    /// `a` (and `b` when `f` reads it) hold `n` f32, `out` has room for `n`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn chunk(
        a: *const f32,
        b: *const f32,
        out: *mut f32,
        n: usize,
        two: bool,
        f: impl Fn(__m512, __m512) -> __m512,
    ) {
        let mut i = 0;
        let zero = _mm512_setzero_ps();
        while i < n {
            let m: __mmask16 = if n - i >= 16 {
                0xffff
            } else {
                ((1u32 << (n - i)) - 1) as u16
            };
            // SAFETY: lanes in `m` are below `n`.
            unsafe {
                let x = _mm512_maskz_loadu_ps(m, a.add(i));
                let y = if two {
                    _mm512_maskz_loadu_ps(m, b.add(i))
                } else {
                    zero
                };
                _mm512_mask_storeu_ps(out.add(i), m, f(x, y));
            }
            i += 16;
        }
    }
}

/// Defines `extern "C" fn $name(a, b, out, n)` over `imp::$f` and lists
/// the helpers with their symbol names.
macro_rules! helpers {
    ($($name:ident($two:expr): |$x:ident, $y:ident| $body:expr;)*) => {
        $(
            #[cfg(target_arch = "x86_64")]
            unsafe extern "C" fn $name(a: *const f32, b: *const f32, out: *mut f32, n: i64) {
                #[target_feature(enable = "avx512f")]
                unsafe fn run(a: *const f32, b: *const f32, out: *mut f32, n: usize) {
                    use std::arch::x86_64::__m512;
                    #[allow(unused_variables)]
                    // (Closures inherit the function's target features.)
                    let f = |$x: __m512, $y: __m512| -> __m512 { $body };
                    // SAFETY: the caller's buffers hold `n` f32.
                    unsafe { imp::chunk(a, b, out, n, $two, f) }
                }
                // SAFETY: the JIT calls helpers only when the CPU has
                // AVX-512F (`has_avx512`), with buffers of `n` f32.
                unsafe { run(a, b, out, n.max(0) as usize) }
            }
        )*
        /// Every chunk helper: symbol name and address.
        #[cfg(target_arch = "x86_64")]
        pub(super) fn symbols() -> Vec<(&'static str, *const u8)> {
            vec![$((stringify!($name), $name as *const u8)),*]
        }
    };
}

helpers! {
    kiln16_exp(false): |x, y| imp::exp16(x);
    kiln16_log(false): |x, y| imp::log16(x);
    kiln16_tanh(false): |x, y| imp::tanh16(x);
    kiln16_erf(false): |x, y| imp::erf16(x);
    kiln16_sin(false): |x, y| imp::sincos16(x, false);
    kiln16_cos(false): |x, y| imp::sincos16(x, true);
    kiln16_pow(true): |x, y| imp::pow16(x, y);
}

/// No chunk helpers off x86-64.
#[cfg(not(target_arch = "x86_64"))]
pub(super) fn symbols() -> Vec<(&'static str, *const u8)> {
    vec![]
}

/// Whether this CPU runs the chunk helpers.
pub fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
