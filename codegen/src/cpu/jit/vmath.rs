//! Vectorized f32x4 `exp` and `tanh` in Cranelift IR (Cephes-style
//! polynomials, about 2 ulp), so vector loops do not call a helper per lane.
//!
//! `exp(x) = 2^n * p(r)` with `n = nearest(x / ln 2)`, `r = x - n ln 2`
//! (two-part ln 2) and the scale applied as `2^(n/2) * 2^(n - n/2)` so that
//! overflow to infinity and underflow through denormals to 0 come out right.
//! `tanh` uses an odd polynomial below 0.625 and `1 - 2 / (exp(2|x|) + 1)`
//! with the sign of `x` above.
//!
//! `erf` uses its Taylor series `x * P(x^2)` (11 terms, below 1e-8 relative)
//! for `|x| < 1`, and above it `1 - t Q(t) exp(-x^2)` with `t = 1 / (1 + p|x|)`
//! (Abramowitz & Stegun 7.1.26, absolute error below 1.5e-7 where erf > 0.84),
//! with the sign of `x`.

use super::emit::Emitter;
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, Endianness, InstBuilder, MemFlagsData, Value};

const EXP_P: [f64; 6] = [
    1.987_569_150_0e-4,
    1.398_199_950_7e-3,
    8.333_451_907_3e-3,
    4.166_579_589_4e-2,
    1.666_666_545_9e-1,
    5.000_000_120_1e-1,
];
const TANH_P: [f64; 5] = [
    -5.704_988_727_45e-3,
    2.063_908_879_54e-2,
    -5.373_971_555_31e-2,
    1.333_144_220_36e-1,
    -3.333_328_194_22e-1,
];

/// `2/sqrt(pi) * (-1)^n / (n! (2n+1))` for n = 10 down to 0.
const ERF_TAYLOR: [f64; 11] = [
    1.480_719_281_587_921_8e-8,
    -1.636_584_469_123_492_4e-7,
    1.646_211_436_588_924_6e-6,
    -1.492_565_035_840_625e-5,
    1.205_533_298_178_966_4e-4,
    -8.548_327_023_450_852e-4,
    5.223_977_625_442_188e-3,
    -2.686_617_064_513_125_2e-2,
    1.128_379_167_095_512_6e-1,
    -3.761_263_890_318_375_4e-1,
    std::f64::consts::FRAC_2_SQRT_PI,
];
/// Abramowitz & Stegun 7.1.26: a5 down to a1, then p.
const ERF_AS: [f64; 5] = [
    1.061_405_429,
    -1.453_152_027,
    1.421_413_741,
    -0.284_496_736,
    0.254_829_592,
];
const ERF_AS_P: f64 = 0.327_591_1;

impl Emitter<'_, '_> {
    /// Horner evaluation of `coeffs` (highest degree first) at `z`.
    fn horner(&mut self, coeffs: &[f64], z: Value) -> Value {
        let mut p = self.fconst(coeffs[0]);
        for &c in &coeffs[1..] {
            let k = self.fconst(c);
            p = if self.use_fma {
                self.b.ins().fma(p, z, k)
            } else {
                let m = self.b.ins().fmul(p, z);
                self.b.ins().fadd(m, k)
            };
        }
        p
    }

    /// `2^e` for an i32x4 `e` in -126..=127.
    fn pow2(&mut self, e: Value) -> Value {
        let bias = self.b.ins().iconst(types::I32, 127);
        let bias = self.b.ins().splat(types::I32X4, bias);
        let bits = self.b.ins().iadd(e, bias);
        let bits = self.b.ins().ishl_imm_s(bits, 23);
        let le = MemFlagsData::new().with_endianness(Endianness::Little);
        self.b.ins().bitcast(types::F32X4, le, bits)
    }

    /// `exp(x)` for an f32x4 `x`.
    pub fn vexp_f32(&mut self, x: Value) -> Value {
        let (lo, hi) = (self.fconst(-104.0), self.fconst(88.73));
        // Compare and select (a NaN stays NaN): cheaper than fmax/fmin.
        let below = self.b.ins().fcmp(FloatCC::LessThan, x, lo);
        let xc = self.select_mask(below, lo, x);
        let above = self.b.ins().fcmp(FloatCC::GreaterThan, xc, hi);
        let xc = self.select_mask(above, hi, xc);
        let log2e = self.fconst(std::f64::consts::LOG2_E);
        let t = self.b.ins().fmul(xc, log2e);
        let n = self.b.ins().nearest(t);
        let (c1, c2) = (self.fconst(0.693_359_375), self.fconst(-2.121_944_40e-4));
        let a = self.b.ins().fmul(n, c1);
        let r = self.b.ins().fsub(xc, a);
        let a = self.b.ins().fmul(n, c2);
        let r = self.b.ins().fsub(r, a);
        let z = self.b.ins().fmul(r, r);
        let p = self.horner(&EXP_P, r);
        let p = self.b.ins().fmul(p, z);
        let p = self.b.ins().fadd(p, r);
        let one = self.fconst(1.0);
        let y = self.b.ins().fadd(p, one);
        // `n` is integral and in -150..=128: a plain truncating conversion.
        let ni = if cfg!(target_arch = "x86_64") {
            self.b.ins().x86_cvtt2dq(types::I32X4, n)
        } else {
            self.b.ins().fcvt_to_sint_sat(types::I32X4, n)
        };
        let n1 = self.b.ins().sshr_imm_s(ni, 1);
        let n2 = self.b.ins().isub(ni, n1);
        let (s1, s2) = (self.pow2(n1), self.pow2(n2));
        let y = self.b.ins().fmul(y, s1);
        self.b.ins().fmul(y, s2)
    }

    /// `tanh(x)` for an f32x4 `x`.
    pub fn vtanh_f32(&mut self, x: Value) -> Value {
        let ax = self.b.ins().fabs(x);
        let z = self.b.ins().fmul(x, x);
        let p = self.horner(&TANH_P, z);
        let p = self.b.ins().fmul(p, z);
        let p = self.b.ins().fmul(p, x);
        let small = self.b.ins().fadd(p, x);
        let two = self.fconst(2.0);
        let e = self.b.ins().fmul(ax, two);
        let e = self.vexp_f32(e);
        let one = self.fconst(1.0);
        let d = self.b.ins().fadd(e, one);
        let q = self.b.ins().fdiv(two, d);
        let big = self.b.ins().fsub(one, q);
        let zero = self.fconst(0.0);
        let neg = self.b.ins().fcmp(FloatCC::LessThan, x, zero);
        let minus = self.b.ins().fneg(big);
        let big = self.select_mask(neg, minus, big);
        let cut = self.fconst(0.625);
        let is_small = self.b.ins().fcmp(FloatCC::LessThan, ax, cut);
        self.select_mask(is_small, small, big)
    }

    /// `erf(x)` for an f32x4 `x`.
    pub fn verf_f32(&mut self, x: Value) -> Value {
        let ax = self.b.ins().fabs(x);
        let z = self.b.ins().fmul(x, x);
        let p = self.horner(&ERF_TAYLOR, z);
        let small = self.b.ins().fmul(p, x);
        let one = self.fconst(1.0);
        let pc = self.fconst(ERF_AS_P);
        let d = self.b.ins().fmul(ax, pc);
        let d = self.b.ins().fadd(d, one);
        let t = self.b.ins().fdiv(one, d);
        let q = self.horner(&ERF_AS, t);
        let q = self.b.ins().fmul(q, t);
        let nz = self.b.ins().fneg(z);
        let e = self.vexp_f32(nz);
        let q = self.b.ins().fmul(q, e);
        let big = self.b.ins().fsub(one, q);
        let zero = self.fconst(0.0);
        let neg = self.b.ins().fcmp(FloatCC::LessThan, x, zero);
        let minus = self.b.ins().fneg(big);
        let big = self.select_mask(neg, minus, big);
        let is_small = self.b.ins().fcmp(FloatCC::LessThan, ax, one);
        self.select_mask(is_small, small, big)
    }
}
