//! The `Elem` trait: what the interpreter needs of a Rust type that stores tensor elements.

use crate::{DType, TensorData};
use half::{bf16, f16};

/// A Rust element type of a tensor (`f32`, `i64`, `bool`, ...).
///
/// Conversions go through the widest type of the same kind (`f64`, `i64` or
/// `u64`) so that casts between any two dtypes follow Rust's `as` rules:
/// integer to integer wraps, float to integer truncates toward zero and saturates.
pub trait Elem:
    Copy + Send + Sync + std::fmt::Debug + PartialEq + PartialOrd + Default + 'static
{
    const DTYPE: DType;
    fn wrap(v: Vec<Self>) -> TensorData;
    fn slice(d: &TensorData) -> Option<&[Self]>;
    fn slice_mut(d: &mut TensorData) -> Option<&mut [Self]>;
    fn to_f64(self) -> f64;
    fn to_i64(self) -> i64;
    fn to_u64(self) -> u64;
    fn from_f64(v: f64) -> Self;
    fn from_i64(v: i64) -> Self;
    fn from_u64(v: u64) -> Self;
    /// Converts from another element type with `as`-style semantics.
    fn from_elem<U: Elem>(u: U) -> Self {
        match U::DTYPE {
            d if d.is_float() => Self::from_f64(u.to_f64()),
            d if d.is_signed_int() => Self::from_i64(u.to_i64()),
            _ => Self::from_u64(u.to_u64()),
        }
    }
}

/// The storage methods of `Elem` for the `TensorData` variant `$d`.
macro_rules! storage {
    ($d:ident) => {
        fn wrap(v: Vec<Self>) -> TensorData {
            TensorData::$d(v)
        }
        fn slice(d: &TensorData) -> Option<&[Self]> {
            match d {
                TensorData::$d(v) => Some(v),
                _ => None,
            }
        }
        fn slice_mut(d: &mut TensorData) -> Option<&mut [Self]> {
            match d {
                TensorData::$d(v) => Some(v),
                _ => None,
            }
        }
    };
}

macro_rules! elem_prim {
    ($t:ty, $d:ident) => {
        impl Elem for $t {
            const DTYPE: DType = DType::$d;
            storage!($d);
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn to_i64(self) -> i64 {
                self as i64
            }
            fn to_u64(self) -> u64 {
                self as u64
            }
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn from_i64(v: i64) -> Self {
                v as $t
            }
            fn from_u64(v: u64) -> Self {
                v as $t
            }
        }
    };
}
elem_prim!(f32, F32);
elem_prim!(f64, F64);
elem_prim!(i8, I8);
elem_prim!(u8, U8);
elem_prim!(i16, I16);
elem_prim!(u16, U16);
elem_prim!(i32, I32);
elem_prim!(u32, U32);
elem_prim!(i64, I64);
elem_prim!(u64, U64);

macro_rules! elem_half {
    ($t:ty, $d:ident) => {
        impl Elem for $t {
            const DTYPE: DType = DType::$d;
            storage!($d);
            fn to_f64(self) -> f64 {
                self.to_f64()
            }
            fn to_i64(self) -> i64 {
                self.to_f64() as i64
            }
            fn to_u64(self) -> u64 {
                self.to_f64() as u64
            }
            fn from_f64(v: f64) -> Self {
                <$t>::from_f64(v)
            }
            fn from_i64(v: i64) -> Self {
                <$t>::from_f64(v as f64)
            }
            fn from_u64(v: u64) -> Self {
                <$t>::from_f64(v as f64)
            }
        }
    };
}
elem_half!(f16, F16);
elem_half!(bf16, BF16);

impl Elem for bool {
    const DTYPE: DType = DType::Bool;
    storage!(Bool);
    fn to_f64(self) -> f64 {
        self as u8 as f64
    }
    fn to_i64(self) -> i64 {
        self as i64
    }
    fn to_u64(self) -> u64 {
        self as u64
    }
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
    fn from_i64(v: i64) -> Self {
        v != 0
    }
    fn from_u64(v: u64) -> Self {
        v != 0
    }
}

/// Implements `Elem` for a minifloat code type through its `lowbit::Format`.
macro_rules! elem_minifloat {
    ($t:ident, $d:ident, $fmt:ident) => {
        impl Elem for crate::lowbit::$t {
            const DTYPE: DType = DType::$d;
            storage!($d);
            fn to_f64(self) -> f64 {
                crate::lowbit::$fmt.decode(self.0)
            }
            fn to_i64(self) -> i64 {
                self.to_f64() as i64
            }
            fn to_u64(self) -> u64 {
                self.to_f64() as u64
            }
            fn from_f64(v: f64) -> Self {
                Self(crate::lowbit::$fmt.encode(v, true))
            }
            fn from_i64(v: i64) -> Self {
                Self::from_f64(v as f64)
            }
            fn from_u64(v: u64) -> Self {
                Self::from_f64(v as f64)
            }
        }
    };
}
elem_minifloat!(F8E4M3Fn, F8E4M3FN, E4M3FN);
elem_minifloat!(F8E4M3Fnuz, F8E4M3FNUZ, E4M3FNUZ);
elem_minifloat!(F8E5M2, F8E5M2, E5M2);
elem_minifloat!(F8E5M2Fnuz, F8E5M2FNUZ, E5M2FNUZ);
elem_minifloat!(F4E2M1, F4E2M1, E2M1);

impl Elem for crate::lowbit::F8E8M0 {
    const DTYPE: DType = DType::F8E8M0;
    storage!(F8E8M0);
    fn to_f64(self) -> f64 {
        crate::lowbit::e8m0::decode(self.0)
    }
    fn to_i64(self) -> i64 {
        self.to_f64() as i64
    }
    fn to_u64(self) -> u64 {
        self.to_f64() as u64
    }
    fn from_f64(v: f64) -> Self {
        Self(crate::lowbit::e8m0::encode(
            v,
            crate::lowbit::e8m0::Round::Up,
            true,
        ))
    }
    fn from_i64(v: i64) -> Self {
        Self::from_f64(v as f64)
    }
    fn from_u64(v: u64) -> Self {
        Self::from_f64(v as f64)
    }
}

/// Implements `Elem` for a small integer type: conversions round to nearest
/// even and wrap to the type's bits (ONNX's Cast rule for int4/int2).
macro_rules! elem_small_int {
    ($t:ident, $d:ident, $repr:ty, $bits:expr, $signed:expr) => {
        impl Elem for crate::lowbit::$t {
            const DTYPE: DType = DType::$d;
            storage!($d);
            fn to_f64(self) -> f64 {
                self.0 as f64
            }
            fn to_i64(self) -> i64 {
                self.0 as i64
            }
            fn to_u64(self) -> u64 {
                self.0 as u64
            }
            fn from_f64(v: f64) -> Self {
                Self(crate::lowbit::to_small_int(v, $bits, $signed) as $repr)
            }
            fn from_i64(v: i64) -> Self {
                Self(crate::lowbit::wrap_small_int(v, $bits, $signed) as $repr)
            }
            fn from_u64(v: u64) -> Self {
                Self(crate::lowbit::wrap_small_int(v as i64, $bits, $signed) as $repr)
            }
        }
    };
}
elem_small_int!(I4, I4, i8, 4, true);
elem_small_int!(U4, U4, u8, 4, false);
elem_small_int!(I2, I2, i8, 2, true);
elem_small_int!(U2, U2, u8, 2, false);

/// The stand-in element type that generic (`dispatch_dtype!`) code sees for
/// string tensors. It holds no data: `slice` is `None`, so generic numeric
/// code gets a clean "does not support string tensors" error, while
/// constructors (`Tensor::zeros`) make empty strings. String-aware ops use
/// [`Tensor::as_strings`](crate::Tensor::as_strings).
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Default)]
pub struct StringSlot;

impl Elem for StringSlot {
    const DTYPE: DType = DType::String;
    fn wrap(v: Vec<Self>) -> TensorData {
        TensorData::String(vec![String::new(); v.len()])
    }
    fn slice(_: &TensorData) -> Option<&[Self]> {
        None
    }
    fn slice_mut(_: &mut TensorData) -> Option<&mut [Self]> {
        None
    }
    fn to_f64(self) -> f64 {
        f64::NAN
    }
    fn to_i64(self) -> i64 {
        0
    }
    fn to_u64(self) -> u64 {
        0
    }
    fn from_f64(_: f64) -> Self {
        StringSlot
    }
    fn from_i64(_: i64) -> Self {
        StringSlot
    }
    fn from_u64(_: u64) -> Self {
        StringSlot
    }
}

/// Lets generic text parsing compile; string tensors are parsed before it.
impl std::str::FromStr for StringSlot {
    type Err = std::convert::Infallible;
    fn from_str(_: &str) -> Result<Self, Self::Err> {
        Ok(StringSlot)
    }
}
