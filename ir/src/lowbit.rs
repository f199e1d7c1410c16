//! Low-precision element types: 8-bit floats (float8 e4m3fn, e4m3fnuz, e5m2,
//! e5m2fnuz, e8m0), the 4-bit float e2m1, and 4- and 2-bit integers.
//!
//! Kiln stores each element unpacked in one byte; importers pack and unpack.
//! Conversions from wider types round to nearest even and, by default,
//! saturate (out-of-range values clamp to the largest finite value), which is
//! ONNX's `Cast(saturate=1)`; [`Format::encode`] also offers the
//! non-saturating rule (overflow gives infinity where the type has one, NaN
//! otherwise).

use std::sync::OnceLock;

/// How a minifloat format encodes special values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    /// IEEE-like: all-ones exponent is infinity (mantissa 0) or NaN.
    Ieee,
    /// "FN": no infinity; all-ones exponent and mantissa is NaN.
    Fn,
    /// "FNUZ": no infinity, no negative zero; sign bit alone (0x80) is NaN.
    Fnuz,
    /// No infinity and no NaN (float4 e2m1).
    None,
}

/// A small float format: sign bit, `exp` exponent bits, `man` mantissa bits.
#[derive(Debug)]
pub struct Format {
    pub exp: u32,
    pub man: u32,
    pub bias: i32,
    pub special: Special,
    /// Positive finite values by code, sorted (codes are monotonic in magnitude).
    table: OnceLock<Vec<(f64, u8)>>,
}

impl Format {
    const fn new(exp: u32, man: u32, bias: i32, special: Special) -> Format {
        Format {
            exp,
            man,
            bias,
            special,
            table: OnceLock::new(),
        }
    }
    fn bits(&self) -> u32 {
        1 + self.exp + self.man
    }
    fn sign_bit(&self) -> u8 {
        1 << (self.bits() - 1)
    }
    fn nan(&self) -> u8 {
        match self.special {
            Special::Fnuz => 0x80,
            // No NaN code: ONNX maps NaN to negative zero.
            Special::None => self.sign_bit(),
            _ => self.sign_bit() - 1,
        }
    }

    /// The value of a code.
    pub fn decode(&self, code: u8) -> f64 {
        let sign = if code & self.sign_bit() != 0 {
            -1.0
        } else {
            1.0
        };
        let mag = code & (self.sign_bit() - 1);
        let emax = (1u8 << self.exp) - 1;
        let e = mag >> self.man;
        let m = mag & ((1 << self.man) - 1);
        match self.special {
            Special::Fnuz if code == 0x80 => return f64::NAN,
            Special::Fn if mag == self.sign_bit() - 1 => return f64::NAN,
            Special::Ieee if e == emax => {
                return if m == 0 {
                    sign * f64::INFINITY
                } else {
                    f64::NAN
                }
            }
            _ => {}
        }
        let frac = m as f64 / (1u32 << self.man) as f64;
        let v = if e == 0 {
            frac * 2f64.powi(1 - self.bias)
        } else {
            (1.0 + frac) * 2f64.powi(e as i32 - self.bias)
        };
        sign * v
    }

    fn table(&self) -> &[(f64, u8)] {
        self.table.get_or_init(|| {
            let mut t: Vec<(f64, u8)> = (0..self.sign_bit())
                .map(|c| (self.decode(c), c))
                .filter(|(v, _)| v.is_finite())
                .collect();
            t.sort_by(|a, b| a.0.total_cmp(&b.0));
            t
        })
    }

    /// Largest finite value.
    pub fn max(&self) -> f64 {
        self.table().last().map_or(0.0, |e| e.0)
    }

    /// Rounds `x` to nearest even; out of range saturates to ±max when `saturate`,
    /// else becomes ±infinity (IEEE formats) or NaN.
    pub fn encode(&self, x: f64, saturate: bool) -> u8 {
        if x.is_nan() {
            return self.nan();
        }
        let neg = x.is_sign_negative() && self.special != Special::Fnuz;
        let sign = if x < 0.0 && self.special == Special::Fnuz || neg {
            self.sign_bit()
        } else {
            0
        };
        let a = x.abs();
        let t = self.table();
        let (max, max_code) = *t.last().expect("table has values");
        let overflow = || match (saturate, self.special) {
            (true, _) | (false, Special::None) => max_code | sign,
            (false, Special::Ieee) => (((1u8 << self.exp) - 1) << self.man) | sign,
            (false, _) => self.nan(),
        };
        if a.is_infinite() {
            return overflow();
        }
        if a > max {
            // Values within half an ulp of max round down to max.
            let ulp = max - t[t.len() - 2].0;
            return if a < max + ulp / 2.0 || (a == max + ulp / 2.0 && max_code & 1 == 0) {
                max_code | sign
            } else {
                overflow()
            };
        }
        let i = t.partition_point(|e| e.0 < a);
        let code = if i < t.len() && t[i].0 == a {
            t[i].1
        } else {
            let (lo, hi) = (t[i - 1], t[i]);
            let (dl, dh) = (a - lo.0, hi.0 - a);
            if dl < dh || (dl == dh && lo.1 & 1 == 0) {
                lo.1
            } else {
                hi.1
            }
        };
        if code == 0 && self.special == Special::Fnuz {
            return 0;
        }
        code | sign
    }
}

pub static E4M3FN: Format = Format::new(4, 3, 7, Special::Fn);
pub static E4M3FNUZ: Format = Format::new(4, 3, 8, Special::Fnuz);
pub static E5M2: Format = Format::new(5, 2, 15, Special::Ieee);
pub static E5M2FNUZ: Format = Format::new(5, 2, 16, Special::Fnuz);
pub static E2M1: Format = Format::new(2, 1, 1, Special::None);

/// float8 e8m0: an unsigned power of two, `2^(code - 127)`; 0xFF is NaN.
pub mod e8m0 {
    /// How values between two powers of two round.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Round {
        Up,
        Down,
        Nearest,
    }

    pub fn decode(code: u8) -> f64 {
        if code == 0xFF {
            f64::NAN
        } else {
            2f64.powi(code as i32 - 127)
        }
    }

    /// Encodes |x|'s exponent (the sign is dropped: the type is unsigned).
    pub fn encode(x: f64, round: Round, saturate: bool) -> u8 {
        if x.is_nan() || (x.is_infinite() && !saturate) {
            return 0xFF;
        }
        let a = x.abs();
        if a.is_infinite() {
            return 254;
        }
        if a == 0.0 {
            return 0;
        }
        let e = a.log2().floor();
        let base = 2f64.powf(e);
        let up = match round {
            Round::Down => false,
            Round::Up => a > base,
            // Round on the float32 mantissa: halfway (1.5 x 2^e) and above goes up.
            Round::Nearest => a >= 1.5 * base,
        };
        let e = e as i64 + up as i64 + 127;
        match e {
            e if e > 254 => {
                if saturate {
                    254
                } else {
                    0xFF
                }
            }
            e if e < 0 => 0,
            e => e as u8,
        }
    }
}

/// Rounds to nearest even and wraps into the `bits`-bit range (ONNX's Cast
/// to 4- and 2-bit integers; QuantizeLinear clamps before it gets here).
pub fn to_small_int(x: f64, bits: u32, signed: bool) -> i64 {
    if !x.is_finite() {
        return 0;
    }
    wrap_small_int(x.round_ties_even() as i64, bits, signed)
}

/// Keeps the low `bits` bits of `v`, sign-extended when `signed`.
pub fn wrap_small_int(v: i64, bits: u32, signed: bool) -> i64 {
    let shift = 64 - bits;
    if signed {
        (v << shift) >> shift
    } else {
        ((v as u64) << shift >> shift) as i64
    }
}

/// Defines a one-byte element type stored as its code.
macro_rules! code_type {
    ($(#[$m:meta])* $name:ident, $repr:ty) => {
        $(#[$m])*
        #[derive(Clone, Copy, Default)]
        #[repr(transparent)]
        pub struct $name(pub $repr);

        impl PartialEq for $name {
            fn eq(&self, o: &Self) -> bool {
                crate::Elem::to_f64(*self) == crate::Elem::to_f64(*o)
            }
        }
        impl PartialOrd for $name {
            fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
                crate::Elem::to_f64(*self).partial_cmp(&crate::Elem::to_f64(*o))
            }
        }
        /// Prints the value (exact), so the text form round-trips.
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{:?}", crate::Elem::to_f64(*self))
            }
        }
        impl std::str::FromStr for $name {
            type Err = std::num::ParseFloatError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(<$name as crate::Elem>::from_f64(s.parse::<f64>()?))
            }
        }
    };
}

code_type!(/// float8 e4m3fn (one code byte).
    F8E4M3Fn, u8);
code_type!(/// float8 e4m3fnuz (one code byte).
    F8E4M3Fnuz, u8);
code_type!(/// float8 e5m2 (one code byte).
    F8E5M2, u8);
code_type!(/// float8 e5m2fnuz (one code byte).
    F8E5M2Fnuz, u8);
code_type!(/// float8 e8m0 (one code byte).
    F8E8M0, u8);
code_type!(/// float4 e2m1 (code in the low 4 bits).
    F4E2M1, u8);
code_type!(/// Signed 4-bit integer, -8..=7, stored unpacked.
    I4, i8);
code_type!(/// Unsigned 4-bit integer, 0..=15, stored unpacked.
    U4, u8);
code_type!(/// Signed 2-bit integer, -2..=1, stored unpacked.
    I2, i8);
code_type!(/// Unsigned 2-bit integer, 0..=3, stored unpacked.
    U2, u8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e4m3fn_values() {
        assert_eq!(E4M3FN.max(), 448.0);
        assert_eq!(E4M3FN.decode(0x7E), 448.0);
        assert!(E4M3FN.decode(0x7F).is_nan());
        assert_eq!(E4M3FN.decode(0x01), 2f64.powi(-9));
        assert_eq!(E4M3FN.encode(1000.0, true), 0x7E);
        assert_eq!(E4M3FN.encode(-1000.0, true), 0xFE);
        assert!(E4M3FN.decode(E4M3FN.encode(1000.0, false)).is_nan());
        // 1.0625 is halfway between 1.0 (code 0x38, even) and 1.125 (0x39).
        assert_eq!(E4M3FN.encode(1.0625, true), 0x38);
        assert_eq!(E4M3FN.encode(1.1, true), 0x39);
    }

    #[test]
    fn e5m2_and_fnuz_specials() {
        assert_eq!(E5M2.max(), 57344.0);
        assert_eq!(
            E5M2.decode(E5M2.encode(f64::INFINITY, false)),
            f64::INFINITY
        );
        assert_eq!(E5M2.decode(E5M2.encode(f64::INFINITY, true)), 57344.0);
        assert_eq!(E4M3FNUZ.max(), 240.0);
        assert_eq!(E4M3FNUZ.encode(-0.0, true), 0);
        assert!(E5M2FNUZ.decode(0x80).is_nan());
    }

    #[test]
    fn e2m1_and_e8m0() {
        let vals: Vec<f64> = (0..8).map(|c| E2M1.decode(c)).collect();
        assert_eq!(vals, [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]);
        assert_eq!(E2M1.decode(E2M1.encode(100.0, true)), 6.0);
        assert_eq!(E2M1.decode(E2M1.encode(-2.5, true)), -2.0);
        assert_eq!(e8m0::decode(e8m0::encode(3.0, e8m0::Round::Up, true)), 4.0);
        assert_eq!(
            e8m0::decode(e8m0::encode(3.0, e8m0::Round::Down, true)),
            2.0
        );
        assert_eq!(
            e8m0::decode(e8m0::encode(2.9, e8m0::Round::Nearest, true)),
            2.0
        );
        assert_eq!(
            e8m0::decode(e8m0::encode(3.0, e8m0::Round::Nearest, true)),
            4.0
        );
        assert_eq!(
            e8m0::decode(e8m0::encode(2.5, e8m0::Round::Nearest, true)),
            2.0
        );
    }

    #[test]
    fn small_ints_round_and_wrap() {
        assert_eq!(to_small_int(2.5, 4, true), 2);
        assert_eq!(to_small_int(-9.0, 4, true), 7);
        assert_eq!(to_small_int(8.0, 4, true), -8);
        assert_eq!(to_small_int(-3.0, 2, false), 1);
        assert_eq!(to_small_int(17.0, 4, false), 1);
    }

    #[test]
    fn e2m1_nan_is_negative_zero() {
        assert_eq!(E2M1.encode(f64::NAN, true), 0x8);
    }
}
