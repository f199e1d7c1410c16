//! Vectorized f32x4 `exp`, `log`, `tanh`, `erf`, `pow`, `sin` and `cos` in Cranelift IR
//! (Cephes-style polynomials), so vector loops do not call a helper per
//! lane. Max errors over a dense sweep of all f32 (`tests/jit_math.rs`):
//! exp 0.99 ulp, log 0.77 ulp, tanh 1.31 ulp, erf 3.26 ulp (3.38 without FMA; sigmoid, built
//! from exp, 2.61 ulp); sin 1.49 ulp, cos 1.47 ulp; pow below `3 + 3 |b ln|a||` ulp (149 ulp near
//! overflow). ±0, denormals, ±inf and NaN follow C.
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
use super::emit::Res;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, Endianness, InstBuilder, MemFlagsData, Value};

pub(super) const EXP_P: [f64; 6] = [
    1.987_569_150_0e-4,
    1.398_199_950_7e-3,
    8.333_451_907_3e-3,
    4.166_579_589_4e-2,
    1.666_666_545_9e-1,
    5.000_000_120_1e-1,
];
pub(super) const TANH_P: [f64; 5] = [
    -5.704_988_727_45e-3,
    2.063_908_879_54e-2,
    -5.373_971_555_31e-2,
    1.333_144_220_36e-1,
    -3.333_328_194_22e-1,
];

/// `2/sqrt(pi) * (-1)^n / (n! (2n+1))` for n = 10 down to 0.
pub(super) const ERF_TAYLOR: [f64; 11] = [
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
pub(super) const ERF_AS: [f64; 5] = [
    1.061_405_429,
    -1.453_152_027,
    1.421_413_741,
    -0.284_496_736,
    0.254_829_592,
];
pub(super) const ERF_AS_P: f64 = 0.327_591_1;

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

    /// `exp(x)` for an f32x4 `x`; max error 0.99 ulp (exhaustive) (denormal results
    /// included, overflow to inf above 88.72, 0 below -103.97).
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

    /// `tanh(x)` for an f32x4 `x`; max error 1.31 ulp.
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

    /// `erf(x)` for an f32x4 `x`; max error 3.26 ulp, 3.38 without FMA (exhaustive) (near |x| = 1.0-1.42, the
    /// A&S branch).
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

/// Cephes `logf` polynomial, highest degree first.
pub(super) const LOG_P: [f64; 9] = [
    7.037_683_629_2e-2,
    -1.151_461_031_0e-1,
    1.167_699_874_0e-1,
    -1.242_014_084_6e-1,
    1.424_932_278_7e-1,
    -1.666_805_766_5e-1,
    2.000_071_476_5e-1,
    -2.499_999_399_3e-1,
    3.333_333_117_4e-1,
];

impl Emitter<'_, '_> {
    /// An i32x4 constant.
    fn iconst4(&mut self, c: i32) -> Value {
        let k = self.b.ins().iconst(types::I32, c as i64);
        self.b.ins().splat(types::I32X4, k)
    }

    /// The bits of an f32x4 as i32x4, and back.
    fn as_int_bits(&mut self, x: Value) -> Value {
        let le = MemFlagsData::new().with_endianness(Endianness::Little);
        self.b.ins().bitcast(types::I32X4, le, x)
    }
    fn as_float_bits(&mut self, x: Value) -> Value {
        let le = MemFlagsData::new().with_endianness(Endianness::Little);
        self.b.ins().bitcast(types::F32X4, le, x)
    }

    /// `ln(x)` for an f32x4 `x` (Cephes `logf`: `x = m 2^e` with `m` in
    /// `[sqrt(1/2), sqrt 2)`, `ln x = e ln 2 + ln m`, `ln(1 + f)` by a
    /// degree-9 polynomial). Denormals are scaled by 2^23 first; `ln 0 =
    /// -inf`, `ln(x < 0) = NaN`, `ln inf = inf`, NaN stays NaN. Max error
    /// 0.77 ulp.
    pub fn vlog_f32(&mut self, x: Value) -> Value {
        let min_norm = self.fconst(f32::MIN_POSITIVE as f64);
        let tiny = self.b.ins().fcmp(FloatCC::LessThan, x, min_norm);
        let big = self.fconst(8_388_608.0);
        let scaled = self.b.ins().fmul(x, big);
        let xs = self.select_mask(tiny, scaled, x);
        let bits = self.as_int_bits(xs);
        let e = self.b.ins().ushr_imm_s(bits, 23);
        let bias = self.iconst4(126);
        let e = self.b.ins().isub(e, bias);
        let ef = self.b.ins().fcvt_from_sint(types::F32X4, e);
        let (k23, zero) = (self.fconst(23.0), self.fconst(0.0));
        let adj = self.select_mask(tiny, k23, zero);
        let ef = self.b.ins().fsub(ef, adj);
        let mant = self.iconst4(0x007f_ffff);
        let half = self.iconst4(0x3f00_0000);
        let m = self.b.ins().band(bits, mant);
        let m = self.b.ins().bor(m, half);
        let m = self.as_float_bits(m);
        let sqrthf = self.fconst(std::f64::consts::FRAC_1_SQRT_2);
        let lt = self.b.ins().fcmp(FloatCC::LessThan, m, sqrthf);
        let extra = self.select_mask(lt, m, zero);
        let one = self.fconst(1.0);
        let f = self.b.ins().fadd(m, extra);
        let f = self.b.ins().fsub(f, one);
        let dec = self.select_mask(lt, one, zero);
        let ef = self.b.ins().fsub(ef, dec);
        let z = self.b.ins().fmul(f, f);
        let p = self.horner(&LOG_P, f);
        let y = self.b.ins().fmul(p, f);
        let y = self.b.ins().fmul(y, z);
        let c2 = self.fconst(-2.121_944_40e-4);
        let y = self.mul_add(ef, c2, y);
        let mhalf = self.fconst(-0.5);
        let y = self.mul_add(z, mhalf, y);
        let r = self.b.ins().fadd(f, y);
        let c1 = self.fconst(0.693_359_375);
        let r = self.mul_add(ef, c1, r);
        self.log_specials(x, r)
    }

    /// `a * b + c`, fused when FMA is on.
    fn mul_add(&mut self, a: Value, b: Value, c: Value) -> Value {
        if self.use_fma {
            self.b.ins().fma(a, b, c)
        } else {
            let m = self.b.ins().fmul(a, b);
            self.b.ins().fadd(m, c)
        }
    }

    /// `ln`'s results at 0, below 0, at infinity and for NaN over `r`.
    fn log_specials(&mut self, x: Value, r: Value) -> Value {
        let (zero, inf) = (self.fconst(0.0), self.fconst(f64::INFINITY));
        let (ninf, nan) = (self.fconst(f64::NEG_INFINITY), self.fconst(f64::NAN));
        let is_inf = self.b.ins().fcmp(FloatCC::Equal, x, inf);
        let r = self.select_mask(is_inf, inf, r);
        let is_zero = self.b.ins().fcmp(FloatCC::Equal, x, zero);
        let r = self.select_mask(is_zero, ninf, r);
        let neg = self.b.ins().fcmp(FloatCC::LessThan, x, zero);
        let r = self.select_mask(neg, nan, r);
        let is_nan = self.b.ins().fcmp(FloatCC::NotEqual, x, x);
        self.select_mask(is_nan, x, r)
    }

    /// `pow(a, b)` for f32x4 `a`, `b`: `exp(b ln|a|)` with C's special
    /// cases (`pow(x, 0) = pow(1, y) = pow(-1, ±inf) = 1`, the sign of `a`
    /// for odd integer `b`, NaN for negative finite `a` and non-integer
    /// `b`). The error grows with `|b ln|a||` (the rounding of the product
    /// is magnified by `exp`): below `3 + 3 |b ln|a||` ulp, 149 ulp at most
    /// (results near f32::MAX).
    pub fn vpow_f32(&mut self, a: Value, b: Value) -> Value {
        let ax = self.b.ins().fabs(a);
        let l = self.vlog_f32(ax);
        let t = self.b.ins().fmul(b, l);
        let r = self.vexp_f32(t);
        // Odd integer `b`: the sign of `a` (also for -0 and -inf).
        let fb = self.b.ins().floor(b);
        let is_int = self.b.ins().fcmp(FloatCC::Equal, fb, b);
        let half = self.fconst(0.5);
        let hb = self.b.ins().fmul(b, half);
        let fhb = self.b.ins().floor(hb);
        let even = self.b.ins().fcmp(FloatCC::Equal, fhb, hb);
        let odd = self.b.ins().band_not(is_int, even);
        let sign = self.iconst4(i32::MIN);
        let abits = self.as_int_bits(a);
        let sa = self.b.ins().band(abits, sign);
        let odd = self.as_int_bits(odd);
        let sa = self.b.ins().band(sa, odd);
        let rbits = self.as_int_bits(r);
        let rbits = self.b.ins().bor(rbits, sa);
        let r = self.as_float_bits(rbits);
        self.pow_specials(a, b, is_int, r)
    }

    /// `pow`'s NaN for negative finite `a` with non-integer `b`, and its
    /// results that are 1.
    fn pow_specials(&mut self, a: Value, b: Value, is_int: Value, r: Value) -> Value {
        let (zero, one) = (self.fconst(0.0), self.fconst(1.0));
        let (ninf, nan) = (self.fconst(f64::NEG_INFINITY), self.fconst(f64::NAN));
        let neg = self.b.ins().fcmp(FloatCC::LessThan, a, zero);
        let finite = self.b.ins().fcmp(FloatCC::NotEqual, a, ninf);
        let bad = self.b.ins().band(neg, finite);
        let bad = self.b.ins().band_not(bad, is_int);
        let r = self.select_mask(bad, nan, r);
        let ab = self.b.ins().fabs(b);
        let inf = self.fconst(f64::INFINITY);
        let b_inf = self.b.ins().fcmp(FloatCC::Equal, ab, inf);
        let mone = self.fconst(-1.0);
        let a_m1 = self.b.ins().fcmp(FloatCC::Equal, a, mone);
        let m1_inf = self.b.ins().band(a_m1, b_inf);
        let r = self.select_mask(m1_inf, one, r);
        let a_1 = self.b.ins().fcmp(FloatCC::Equal, a, one);
        let r = self.select_mask(a_1, one, r);
        let b_0 = self.b.ins().fcmp(FloatCC::Equal, b, zero);
        self.select_mask(b_0, one, r)
    }
}

/// Cephes `sinf` / `cosf` polynomials on `[-pi/4, pi/4]`, highest first.
pub(super) const SIN_P: [f64; 3] = [-1.951_529_589_1e-4, 8.332_160_873_6e-3, -1.666_665_461_1e-1];
pub(super) const COS_P: [f64; 3] = [
    2.443_315_711_809_948e-5,
    -1.388_731_625_493_765e-3,
    4.166_664_568_298_827e-2,
];
/// `pi/4` in three parts (Cody-Waite).
pub(super) const PIO4: [f64; 3] = [
    0.785_156_25,
    2.418_756_484_985_351_6e-4,
    3.774_894_977_445_941e-8,
];
/// Above this `|x|` the three-part reduction loses accuracy: such vectors
/// take the scalar helper lane by lane.
pub(super) const TRIG_FAST_MAX: f64 = 1024.0;

impl Emitter<'_, '_> {
    /// `sin(x)` (`cos = false`) or `cos(x)` for an f32x4 `x`: octant `j` of
    /// `|x|` by `4/pi`, Cody-Waite reduction, the sine or cosine polynomial
    /// by octant and the sign from the octant (and `x` for sine). Vectors
    /// with a lane above `TRIG_FAST_MAX` (or inf/NaN) call `helper` per lane.
    /// Max error 1.49 ulp (sin), 1.47 ulp (cos).
    pub fn vsincos_f32(&mut self, x: Value, cos: bool, helper: &'static str) -> Res<Value> {
        let ax = self.b.ins().fabs(x);
        let fopi = self.fconst(4.0 / std::f64::consts::PI);
        let y = self.b.ins().fmul(ax, fopi);
        let j = if cfg!(target_arch = "x86_64") {
            self.b.ins().x86_cvtt2dq(types::I32X4, y)
        } else {
            self.b.ins().fcvt_to_sint_sat(types::I32X4, y)
        };
        let (one, not1) = (self.iconst4(1), self.iconst4(!1));
        let j = self.b.ins().iadd(j, one);
        let j = self.b.ins().band(j, not1);
        let yf = self.b.ins().fcvt_from_sint(types::F32X4, j);
        let j = if cos {
            let two = self.iconst4(2);
            self.b.ins().isub(j, two)
        } else {
            j
        };
        let mut r = ax;
        for c in PIO4 {
            let k = self.fconst(-c);
            r = self.mul_add(yf, k, r);
        }
        let z = self.b.ins().fmul(r, r);
        let s = self.horner(&SIN_P, z);
        let s = self.b.ins().fmul(s, z);
        let s = self.mul_add(s, r, r);
        let c = self.horner(&COS_P, z);
        let c = self.b.ins().fmul(c, z);
        let c = self.b.ins().fmul(c, z);
        let mhalf = self.fconst(-0.5);
        let c = self.mul_add(z, mhalf, c);
        let onef = self.fconst(1.0);
        let c = self.b.ins().fadd(c, onef);
        // Octants 1, 2 (mod 4) use the cosine polynomial.
        let two = self.iconst4(2);
        let j2 = self.b.ins().band(j, two);
        let zero = self.iconst4(0);
        let use_sin = self.b.ins().icmp(IntCC::Equal, j2, zero);
        let use_sin = self.as_float_bits(use_sin);
        let v = self.b.ins().bitselect(use_sin, s, c);
        // Sign: octant bit 2 (inverted for cos), xor x's sign for sin.
        let four = self.iconst4(4);
        let jj = if cos { self.b.ins().bnot(j) } else { j };
        let flip = self.b.ins().band(jj, four);
        let flip = self.b.ins().ishl_imm_s(flip, 29);
        let flip = if cos {
            flip
        } else {
            let sign = self.iconst4(i32::MIN);
            let xb = self.as_int_bits(x);
            let sx = self.b.ins().band(xb, sign);
            self.b.ins().bxor(flip, sx)
        };
        let vb = self.as_int_bits(v);
        let vb = self.b.ins().bxor(vb, flip);
        let fast = self.as_float_bits(vb);
        self.unless_large(x, ax, fast, helper)
    }

    /// `fast`, or `helper` on `x` lane by lane when some lane of `|x|` is
    /// above `TRIG_FAST_MAX` or NaN.
    fn unless_large(
        &mut self,
        x: Value,
        ax: Value,
        fast: Value,
        helper: &'static str,
    ) -> Res<Value> {
        let limit = self.fconst(TRIG_FAST_MAX);
        let ok = self.b.ins().fcmp(FloatCC::LessThanOrEqual, ax, limit);
        let all_ok = self.b.ins().vall_true(ok);
        let var = self.b.declare_var(types::F32X4);
        self.b.def_var(var, fast);
        let (slow, done) = (self.b.create_block(), self.b.create_block());
        self.b.ins().brif(all_ok, done, &[], slow, &[]);
        self.b.switch_to_block(slow);
        let v = self.lanewise(&[x], &mut |s, a| s.call_helper(helper, a))?;
        self.b.def_var(var, v);
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(done);
        Ok(self.b.use_var(var))
    }
}
