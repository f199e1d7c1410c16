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
    fn add(self, other: Self) -> Self;
}

impl CumElem for f32 {
    fn add(self, o: f32) -> f32 {
        self + o
    }
}
impl CumElem for f64 {
    fn add(self, o: f64) -> f64 {
        self + o
    }
}
impl CumElem for i32 {
    fn add(self, o: i32) -> i32 {
        self.wrapping_add(o)
    }
}
impl CumElem for i64 {
    fn add(self, o: i64) -> i64 {
        self.wrapping_add(o)
    }
}

/// Direction and inclusion of the sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CumSpec {
    pub exclusive: bool,
    pub reverse: bool,
}

/// `y = cumsum(x)` along the middle axis of `shape`.
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
    let mut acc = vec![T::default(); inner];
    for o in 0..outer {
        acc.fill(T::default());
        for step in 0..len {
            let i = if spec.reverse { len - 1 - step } else { step };
            let at = (o * len + i) * inner;
            let (xr, yr) = (&x[at..at + inner], &mut y[at..at + inner]);
            if spec.exclusive {
                yr.copy_from_slice(&acc);
                acc.iter_mut().zip(xr).for_each(|(a, &v)| *a = a.add(v));
            } else {
                acc.iter_mut().zip(xr).for_each(|(a, &v)| *a = a.add(v));
                yr.copy_from_slice(&acc);
            }
        }
    }
    Ok(())
}
