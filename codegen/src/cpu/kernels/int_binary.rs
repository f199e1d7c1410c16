//! Element-wise integer arithmetic and comparisons with numpy broadcasting,
//! for the i32/i64 work real models carry at run time (position ids, masks).
//!
//! Arithmetic wraps like the dtype; Div truncates toward zero; Mod follows
//! the divisor's sign (Python) unless `fmod` (C). Division or modulo by zero
//! is an error, as in the reference interpreter. Each input is read through
//! per-output-axis element strides (0 on broadcast axes), row by row.

use super::invalid;
use crate::CodegenError;

/// Integer element types.
pub trait IntElem: Copy + Ord + Send + Sync + Default {
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn div(self, o: Self) -> Self;
    fn rem(self, o: Self) -> Self;
    fn is_zero(self) -> bool;
    fn is_neg(self) -> bool;
}

macro_rules! int_elem {
    ($($t:ty),*) => {$(
        impl IntElem for $t {
            fn add(self, o: $t) -> $t { self.wrapping_add(o) }
            fn sub(self, o: $t) -> $t { self.wrapping_sub(o) }
            fn mul(self, o: $t) -> $t { self.wrapping_mul(o) }
            fn div(self, o: $t) -> $t { self.wrapping_div(o) }
            fn rem(self, o: $t) -> $t { self.wrapping_rem(o) }
            fn is_zero(self) -> bool { self == 0 }
            fn is_neg(self) -> bool { self < 0 }
        }
    )*};
}
int_elem!(i32, i64);

/// The operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntOp {
    Add,
    Sub,
    Mul,
    Div,
    /// Python's modulo (sign of the divisor).
    Mod,
    /// C's remainder (sign of the dividend).
    Fmod,
    Max,
    Min,
    Equal,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl IntOp {
    /// True when the result is a bool.
    pub fn compares(self) -> bool {
        matches!(
            self,
            IntOp::Equal
                | IntOp::Less
                | IntOp::LessOrEqual
                | IntOp::Greater
                | IntOp::GreaterOrEqual
        )
    }

    /// Arithmetic result (`None`: division by zero).
    fn arith<T: IntElem>(self, a: T, b: T) -> Option<T> {
        Some(match self {
            IntOp::Add => a.add(b),
            IntOp::Sub => a.sub(b),
            IntOp::Mul => a.mul(b),
            IntOp::Max => a.max(b),
            IntOp::Min => a.min(b),
            IntOp::Div | IntOp::Mod | IntOp::Fmod if b.is_zero() => return None,
            IntOp::Div => a.div(b),
            IntOp::Fmod => a.rem(b),
            IntOp::Mod => {
                let m = a.rem(b);
                if !m.is_zero() && m.is_neg() != b.is_neg() {
                    m.add(b)
                } else {
                    m
                }
            }
            _ => T::default(),
        })
    }

    fn compare<T: IntElem>(self, a: T, b: T) -> bool {
        match self {
            IntOp::Equal => a == b,
            IntOp::Less => a < b,
            IntOp::LessOrEqual => a <= b,
            IntOp::Greater => a > b,
            _ => a >= b,
        }
    }
}

/// The output shape and each input's element stride per output axis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broadcast {
    pub out: Vec<usize>,
    pub a: Vec<usize>,
    pub b: Vec<usize>,
}

impl Broadcast {
    /// Numpy broadcasting of shapes `a` and `b` to `out`; `None` if they do not broadcast to it.
    pub fn new(a: &[usize], b: &[usize], out: &[usize]) -> Option<Broadcast> {
        let strides = |s: &[usize]| -> Option<Vec<usize>> {
            let lead = out.len().checked_sub(s.len())?;
            let mut st = vec![0; out.len()];
            let mut acc = 1;
            for d in (0..s.len()).rev() {
                match s[d] {
                    n if n == out[lead + d] => st[lead + d] = if n == 1 { 0 } else { acc },
                    1 => {}
                    _ => return None,
                }
                acc *= s[d];
            }
            Some(st)
        };
        Some(Broadcast {
            out: out.to_vec(),
            a: strides(a)?,
            b: strides(b)?,
        })
    }

    fn numel(&self) -> usize {
        self.out.iter().product()
    }

    /// Calls `f(k, ia, ib)` for every output element `k`, in order.
    fn each(&self, mut f: impl FnMut(usize, usize, usize) -> bool) -> bool {
        let r = self.out.len();
        let mut idx = vec![0usize; r];
        let (mut ia, mut ib) = (0usize, 0usize);
        for k in 0..self.numel() {
            if !f(k, ia, ib) {
                return false;
            }
            for d in (0..r).rev() {
                idx[d] += 1;
                ia += self.a[d];
                ib += self.b[d];
                if idx[d] < self.out[d] {
                    break;
                }
                ia -= self.a[d] * self.out[d];
                ib -= self.b[d] * self.out[d];
                idx[d] = 0;
            }
        }
        true
    }
}

/// `out[k] = a[..] op b[..]` for arithmetic ops.
pub fn int_binary<T: IntElem>(
    a: &[T],
    b: &[T],
    out: &mut [T],
    bc: &Broadcast,
    op: IntOp,
) -> Result<(), CodegenError> {
    check(a.len(), b.len(), out.len(), bc, op.compares())?;
    let ok = bc.each(|k, ia, ib| match op.arith(a[ia], b[ib]) {
        Some(v) => {
            out[k] = v;
            true
        }
        None => false,
    });
    if !ok {
        return Err(invalid("int_binary", "integer division or modulo by zero"));
    }
    Ok(())
}

/// `out[k] = a[..] cmp b[..]` (bools as 0/1 bytes).
pub fn int_compare<T: IntElem>(
    a: &[T],
    b: &[T],
    out: &mut [u8],
    bc: &Broadcast,
    op: IntOp,
) -> Result<(), CodegenError> {
    check(a.len(), b.len(), out.len(), bc, !op.compares())?;
    bc.each(|k, ia, ib| {
        out[k] = op.compare(a[ia], b[ib]) as u8;
        true
    });
    Ok(())
}

fn check(
    a: usize,
    b: usize,
    out: usize,
    bc: &Broadcast,
    wrong_kind: bool,
) -> Result<(), CodegenError> {
    if wrong_kind {
        return Err(invalid(
            "int_binary",
            "comparison and arithmetic take different entry points",
        ));
    }
    let reach = |len: usize, st: &[usize]| {
        let last: usize = st
            .iter()
            .zip(&bc.out)
            .map(|(s, n)| s * n.saturating_sub(1))
            .sum();
        bc.numel() == 0 || last < len
    };
    if out < bc.numel() || !reach(a, &bc.a) || !reach(b, &bc.b) {
        return Err(invalid("int_binary", "buffers too short for the broadcast"));
    }
    Ok(())
}
