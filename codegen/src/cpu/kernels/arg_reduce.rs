//! ArgMax / ArgMin of an f32 tensor seen as `[outer, len, inner]` along the
//! middle axis, to i64 indices. The scan walks the axis once, comparing whole
//! inner rows (contiguous, so the compiler vectorises the common case).
//! Semantics follow the reference: ties go to the first index (the last with
//! `select_last`), and the first NaN wins.

use super::par::{split, SendPtr};
use super::softmax_axis::AxisShape;
use super::{invalid, need};
use crate::CodegenError;

/// Elements per extra task.
const PAR_MIN_ELEMS: usize = 1 << 16;

/// What to select.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgSpec {
    /// Maximum (else minimum).
    pub max: bool,
    /// On ties, the last index (else the first).
    pub select_last: bool,
}

/// `out[o, j] = arg{max,min}_i x[o, i, j]`.
pub fn arg_reduce_f32(
    x: &[f32],
    out: &mut [i64],
    shape: AxisShape,
    spec: ArgSpec,
    threads: usize,
) -> Result<(), CodegenError> {
    let AxisShape { outer, len, inner } = shape;
    if threads == 0 {
        return Err(CodegenError::ZeroThreads);
    }
    if len == 0 {
        return Err(invalid("arg_reduce_f32", "the axis is empty"));
    }
    let n = outer
        .checked_mul(len)
        .and_then(|v| v.checked_mul(inner))
        .ok_or(CodegenError::Overflow { operand: "x" })?;
    need("x", x.len(), n)?;
    need("out", out.len(), outer * inner)?;
    let tasks = threads.min(n / PAR_MIN_ELEMS).max(1).min(outer.max(1));
    let dst = SendPtr(out.as_mut_ptr());
    split(outer, tasks, |range| {
        let mut best = vec![0f32; inner];
        for o in range {
            // SAFETY: slice o of out is written by this task only.
            let idx = unsafe { std::slice::from_raw_parts_mut(dst.get().add(o * inner), inner) };
            scan(
                &x[o * len * inner..][..len * inner],
                idx,
                &mut best,
                inner,
                spec,
            );
        }
    });
    Ok(())
}

fn scan(x: &[f32], idx: &mut [i64], best: &mut [f32], inner: usize, spec: ArgSpec) {
    best.copy_from_slice(&x[..inner]);
    idx.fill(0);
    for (i, row) in x.chunks_exact(inner).enumerate().skip(1) {
        for ((b, k), &v) in best.iter_mut().zip(idx.iter_mut()).zip(row) {
            let better = match (spec.max, spec.select_last) {
                (true, false) => v > *b,
                (true, true) => v >= *b,
                (false, false) => v < *b,
                (false, true) => v <= *b,
            };
            if !b.is_nan() && (better || v.is_nan()) {
                *b = v;
                *k = i as i64;
            }
        }
    }
}
