//! CumSum of a tensor seen as `[outer, len, inner]` along the middle axis,
//! optionally exclusive (each output leaves its own element out) and reversed
//! (sums run from the end). The running sums of a whole inner row are
//! carried at once (contiguous, so the compiler vectorises the additions).
//! Integer sums wrap, as the reference does.

use super::softmax_axis::AxisShape;
use super::{invalid, need};
use crate::CodegenError;

/// Element types CumSum runs on.
pub trait CumElem: Copy + Default + Send + Sync {
    /// The multiplicative identity (the start of a running product).
    const ONE: Self;
    fn add(self, other: Self) -> Self;
    fn mul(self, other: Self) -> Self;
}

impl CumElem for f32 {
    const ONE: f32 = 1.0;
    fn add(self, o: f32) -> f32 {
        self + o
    }
    fn mul(self, o: f32) -> f32 {
        self * o
    }
}
impl CumElem for f64 {
    const ONE: f64 = 1.0;
    fn add(self, o: f64) -> f64 {
        self + o
    }
    fn mul(self, o: f64) -> f64 {
        self * o
    }
}
impl CumElem for i32 {
    const ONE: i32 = 1;
    fn add(self, o: i32) -> i32 {
        self.wrapping_add(o)
    }
    fn mul(self, o: i32) -> i32 {
        self.wrapping_mul(o)
    }
}
impl CumElem for i64 {
    const ONE: i64 = 1;
    fn add(self, o: i64) -> i64 {
        self.wrapping_add(o)
    }
    fn mul(self, o: i64) -> i64 {
        self.wrapping_mul(o)
    }
}

/// Direction and inclusion of the sums, and whether they are products.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CumSpec {
    pub exclusive: bool,
    pub reverse: bool,
    /// Running products (CumProd) instead of sums.
    pub product: bool,
}

/// `y = cumsum(x)` (or the running product) along the middle axis of `shape`.
pub fn cumsum<T: CumElem>(
    x: &[T],
    y: &mut [T],
    shape: AxisShape,
    spec: CumSpec,
) -> Result<(), CodegenError> {
    let AxisShape { outer, len, inner } = shape;
    let n = outer
        .checked_mul(len)
        .and_then(|v| v.checked_mul(inner))
        .ok_or(CodegenError::Overflow { operand: "x" })?;
    need("x", x.len(), n)?;
    need("y", y.len(), n)?;
    if inner == 0 || len == 0 {
        return if n == 0 {
            Ok(())
        } else {
            Err(invalid("cumsum", "empty axis"))
        };
    }
    let start = if spec.product { T::ONE } else { T::default() };
    let op = |a: T, v: T| if spec.product { a.mul(v) } else { a.add(v) };
    let mut acc = vec![start; inner];
    for o in 0..outer {
        acc.fill(start);
        for step in 0..len {
            let i = if spec.reverse { len - 1 - step } else { step };
            let at = (o * len + i) * inner;
            let (xr, yr) = (&x[at..at + inner], &mut y[at..at + inner]);
            if spec.exclusive {
                yr.copy_from_slice(&acc);
                acc.iter_mut().zip(xr).for_each(|(a, &v)| *a = op(*a, v));
            } else {
                acc.iter_mut().zip(xr).for_each(|(a, &v)| *a = op(*a, v));
                yr.copy_from_slice(&acc);
            }
        }
    }
    Ok(())
}
