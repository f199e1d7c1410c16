//! Strided f32 GEMM: `C := alpha·A·B + beta·C` with `A` m×k, `B` k×n, `C` m×n.
//!
//! Every operand is a slice plus [`Strides`] in elements, so row-major,
//! column-major and transposed views need no copies. The arguments are checked
//! (slice lengths, stride overflow, `C` elements that would alias) before the
//! one `unsafe` call into the `gemm` crate, whose kernels are chosen at run
//! time (AVX-512, AVX2+FMA, scalar; see [`super::features`]).
//!
//! BLAS semantics for `beta`: when `beta == 0`, `C` is not read, so NaNs in it
//! do not propagate. Threads: `threads == 1` runs on the caller's thread;
//! more splits the work into that many rayon tasks on the current rayon pool
//! (the global one has a thread per core unless configured otherwise).

use crate::CodegenError;
use gemm::Parallelism;

/// Element strides of a matrix view: element `(i, j)` lives at `i·row + j·col`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strides {
    pub row: usize,
    pub col: usize,
}

impl Strides {
    /// A dense row-major matrix with `cols` columns.
    pub fn row_major(cols: usize) -> Self {
        Strides { row: cols, col: 1 }
    }

    /// A dense column-major matrix with `rows` rows.
    pub fn col_major(rows: usize) -> Self {
        Strides { row: 1, col: rows }
    }

    /// The same memory read as the transposed matrix.
    pub fn transposed(self) -> Self {
        Strides {
            row: self.col,
            col: self.row,
        }
    }
}

/// `C := alpha·A·B + beta·C` for an m×k `A`, a k×n `B` and an m×n `C`.
///
/// Fails without touching `C` when `threads` is 0, a slice is too short for
/// its sizes and strides, an offset overflows, or two `C` elements overlap.
#[allow(clippy::too_many_arguments)]
pub fn gemm_f32(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    a_strides: Strides,
    b: &[f32],
    b_strides: Strides,
    c: &mut [f32],
    c_strides: Strides,
    alpha: f32,
    beta: f32,
    threads: usize,
) -> Result<(), CodegenError> {
    if threads == 0 {
        return Err(CodegenError::ZeroThreads);
    }
    check_operand("a", a.len(), m, k, a_strides)?;
    check_operand("b", b.len(), k, n, b_strides)?;
    check_operand("c", c.len(), m, n, c_strides)?;
    check_no_overlap("c", m, n, c_strides)?;
    tracing::trace!(m, n, k, threads, "gemm_f32");
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        scale(c, m, n, c_strides, beta);
        return Ok(());
    }
    // SAFETY: check_operand proved every addressed element of a, b and c is in
    // bounds with offsets that fit in isize; check_no_overlap proved distinct
    // (i, j) of c are distinct locations; c is borrowed mutably, so it cannot
    // alias a or b. gemm computes dst := alpha·dst + beta·lhs·rhs, hence the swap.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_strides.col as isize,
            c_strides.row as isize,
            beta != 0.0,
            a.as_ptr(),
            a_strides.col as isize,
            a_strides.row as isize,
            b.as_ptr(),
            b_strides.col as isize,
            b_strides.row as isize,
            beta,
            alpha,
            false,
            false,
            false,
            parallelism(threads),
        );
    }
    Ok(())
}

fn parallelism(threads: usize) -> Parallelism {
    if threads == 1 {
        Parallelism::None
    } else {
        Parallelism::Rayon(threads)
    }
}

/// `C := beta·C` (the `k == 0` case), with `C` not read when `beta == 0`.
fn scale(c: &mut [f32], m: usize, n: usize, s: Strides, beta: f32) {
    for i in 0..m {
        for j in 0..n {
            let x = &mut c[i * s.row + j * s.col];
            *x = if beta == 0.0 { 0.0 } else { beta * *x };
        }
    }
}

/// Checks that a rows×cols view with strides `s` fits in `len` elements and
/// that every offset, and each stride, fits in `isize`.
fn check_operand(
    operand: &'static str,
    len: usize,
    rows: usize,
    cols: usize,
    s: Strides,
) -> Result<(), CodegenError> {
    let overflow = CodegenError::Overflow { operand };
    if s.row > isize::MAX as usize || s.col > isize::MAX as usize {
        return Err(overflow);
    }
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    let last = (rows - 1)
        .checked_mul(s.row)
        .and_then(|r| (cols - 1).checked_mul(s.col).and_then(|c| r.checked_add(c)))
        .filter(|&last| last < isize::MAX as usize)
        .ok_or(overflow)?;
    if last >= len {
        return Err(CodegenError::TooShort {
            operand,
            needed: last + 1,
            len,
        });
    }
    Ok(())
}

/// Checks that distinct elements of a rows×cols view land on distinct
/// locations: with the dimensions ordered by stride, each non-trivial
/// dimension's stride must step over the whole extent of the smaller one.
fn check_no_overlap(
    operand: &'static str,
    rows: usize,
    cols: usize,
    s: Strides,
) -> Result<(), CodegenError> {
    let mut dims = [(s.row, rows), (s.col, cols)];
    dims.sort_unstable();
    let mut span = 1usize; // elements covered by the smaller dimensions so far
    for (stride, extent) in dims {
        if extent <= 1 {
            continue;
        }
        if stride < span {
            return Err(CodegenError::Overlap {
                operand,
                rows,
                cols,
                strides: [s.row, s.col],
            });
        }
        // check_operand bounded every offset, so this cannot overflow.
        span = stride * extent;
    }
    Ok(())
}
