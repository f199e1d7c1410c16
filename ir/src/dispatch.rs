//! Macros that run generic code for the Rust element type of a runtime `DType`.

/// Runs `$body` with `$T` bound to the Rust element type of dtype `$dt`.
///
/// ```
/// use kiln_ir::{dispatch_dtype, DType, Elem};
/// let size = dispatch_dtype!(DType::I16, T => std::mem::size_of::<T>());
/// assert_eq!(size, 2);
/// ```
#[macro_export]
macro_rules! dispatch_dtype {
    ($dt:expr, $T:ident => $body:expr) => {{
        use $crate::DType as __D;
        match $dt {
            __D::F32 => {
                type $T = f32;
                $body
            }
            __D::F64 => {
                type $T = f64;
                $body
            }
            __D::F16 => {
                type $T = $crate::half::f16;
                $body
            }
            __D::BF16 => {
                type $T = $crate::half::bf16;
                $body
            }
            __D::I8 => {
                type $T = i8;
                $body
            }
            __D::U8 => {
                type $T = u8;
                $body
            }
            __D::I16 => {
                type $T = i16;
                $body
            }
            __D::U16 => {
                type $T = u16;
                $body
            }
            __D::I32 => {
                type $T = i32;
                $body
            }
            __D::U32 => {
                type $T = u32;
                $body
            }
            __D::I64 => {
                type $T = i64;
                $body
            }
            __D::U64 => {
                type $T = u64;
                $body
            }
            __D::Bool => {
                type $T = bool;
                $body
            }
            __D::F8E4M3FN => {
                type $T = $crate::lowbit::F8E4M3Fn;
                $body
            }
            __D::F8E4M3FNUZ => {
                type $T = $crate::lowbit::F8E4M3Fnuz;
                $body
            }
            __D::F8E5M2 => {
                type $T = $crate::lowbit::F8E5M2;
                $body
            }
            __D::F8E5M2FNUZ => {
                type $T = $crate::lowbit::F8E5M2Fnuz;
                $body
            }
            __D::F8E8M0 => {
                type $T = $crate::lowbit::F8E8M0;
                $body
            }
            __D::F4E2M1 => {
                type $T = $crate::lowbit::F4E2M1;
                $body
            }
            __D::I4 => {
                type $T = $crate::lowbit::I4;
                $body
            }
            __D::U4 => {
                type $T = $crate::lowbit::U4;
                $body
            }
            __D::I2 => {
                type $T = $crate::lowbit::I2;
                $body
            }
            __D::U2 => {
                type $T = $crate::lowbit::U2;
                $body
            }
            __D::String => {
                type $T = $crate::elem::StringSlot;
                $body
            }
            // `DType` is non-exhaustive for other crates; every variant has an arm above.
            #[allow(unreachable_patterns)]
            _ => unreachable!("a DType without a dispatch arm"),
        }
    }};
}

/// Like [`dispatch_dtype!`] for the numeric dtypes; `$other` runs for bool.
#[macro_export]
macro_rules! dispatch_numeric {
    ($dt:expr, $T:ident => $body:expr, _ => $other:expr) => {{
        use $crate::DType as __D;
        match $dt {
            __D::F32 => {
                type $T = f32;
                $body
            }
            __D::F64 => {
                type $T = f64;
                $body
            }
            __D::F16 => {
                type $T = $crate::half::f16;
                $body
            }
            __D::BF16 => {
                type $T = $crate::half::bf16;
                $body
            }
            __D::I8 => {
                type $T = i8;
                $body
            }
            __D::U8 => {
                type $T = u8;
                $body
            }
            __D::I16 => {
                type $T = i16;
                $body
            }
            __D::U16 => {
                type $T = u16;
                $body
            }
            __D::I32 => {
                type $T = i32;
                $body
            }
            __D::U32 => {
                type $T = u32;
                $body
            }
            __D::I64 => {
                type $T = i64;
                $body
            }
            __D::U64 => {
                type $T = u64;
                $body
            }
            __D::F8E4M3FN => {
                type $T = $crate::lowbit::F8E4M3Fn;
                $body
            }
            __D::F8E4M3FNUZ => {
                type $T = $crate::lowbit::F8E4M3Fnuz;
                $body
            }
            __D::F8E5M2 => {
                type $T = $crate::lowbit::F8E5M2;
                $body
            }
            __D::F8E5M2FNUZ => {
                type $T = $crate::lowbit::F8E5M2Fnuz;
                $body
            }
            __D::F8E8M0 => {
                type $T = $crate::lowbit::F8E8M0;
                $body
            }
            __D::F4E2M1 => {
                type $T = $crate::lowbit::F4E2M1;
                $body
            }
            __D::I4 => {
                type $T = $crate::lowbit::I4;
                $body
            }
            __D::U4 => {
                type $T = $crate::lowbit::U4;
                $body
            }
            __D::I2 => {
                type $T = $crate::lowbit::I2;
                $body
            }
            __D::U2 => {
                type $T = $crate::lowbit::U2;
                $body
            }
            #[allow(unreachable_patterns)]
            _ => $other,
        }
    }};
}

/// Like [`dispatch_dtype!`] for the float dtypes (including float8/float4); `$other` runs for the rest.
#[macro_export]
macro_rules! dispatch_float {
    ($dt:expr, $T:ident => $body:expr, _ => $other:expr) => {{
        use $crate::DType as __D;
        match $dt {
            __D::F32 => {
                type $T = f32;
                $body
            }
            __D::F64 => {
                type $T = f64;
                $body
            }
            __D::F16 => {
                type $T = $crate::half::f16;
                $body
            }
            __D::BF16 => {
                type $T = $crate::half::bf16;
                $body
            }
            __D::F8E4M3FN => {
                type $T = $crate::lowbit::F8E4M3Fn;
                $body
            }
            __D::F8E4M3FNUZ => {
                type $T = $crate::lowbit::F8E4M3Fnuz;
                $body
            }
            __D::F8E5M2 => {
                type $T = $crate::lowbit::F8E5M2;
                $body
            }
            __D::F8E5M2FNUZ => {
                type $T = $crate::lowbit::F8E5M2Fnuz;
                $body
            }
            __D::F8E8M0 => {
                type $T = $crate::lowbit::F8E8M0;
                $body
            }
            __D::F4E2M1 => {
                type $T = $crate::lowbit::F4E2M1;
                $body
            }
            #[allow(unreachable_patterns)]
            _ => $other,
        }
    }};
}
