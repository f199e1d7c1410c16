//! Batched f32 matmul `C[b] = A[b]·B[b]` with a fused epilogue.
//!
//! Paths: `k == 0` writes the epilogue of zeros; `B` transposed with `m == 1` is
//! a GEMV of dot products over `B`'s contiguous rows ([`super::gemv`]); `B`
//! transposed with `m > 1` copies `B` to k×n first; every other case runs the
//! register-tiled kernel ([`super::tile`]) over all batches at once, except
//! GEMMs with m, n and k all at least [`LARGE`], which go to the cache-blocking,
//! packing [`crate::cpu::gemm_f32`] followed by an epilogue pass.

use super::epilogue::{Bias, Epi, Epilogue};
use super::tile::{self, Dims, Gemm, Offsets};
use super::{gemv, invalid, need};
use crate::cpu::{gemm_f32, Strides};
use crate::CodegenError;

/// GEMMs with m, n and k all at least this use the packing `gemm` crate.
pub const LARGE: usize = 384;

/// Shapes of a batched matmul: `A` is m×k row-major, `B` is k×n row-major (or
/// n×k when `b_transposed`), `C` is m×n; batch strides are in elements, 0
/// broadcasts one matrix to every batch. `C` (and a residual) are dense: batch
/// `b` starts at `b·m·n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MatmulDesc {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a_batch_stride: usize,
    pub b_batch_stride: usize,
    pub b_transposed: bool,
}

/// `C[b] = A[b]·B[b]` then the epilogue (bias per column), for every batch `b`.
///
/// Fails without writing when `threads == 0`, a slice is too short, the bias
/// length is not `n`, or sizes overflow.
pub fn matmul_f32(
    desc: &MatmulDesc,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    epilogue: &Epilogue,
    threads: usize,
) -> Result<(), CodegenError> {
    check(desc, a, b, c, epilogue, threads)?;
    let d = *desc;
    tracing::trace!(?d, threads, "matmul_f32");
    if d.batch == 0 || d.m == 0 || d.n == 0 {
        return Ok(());
    }
    let epi = epi_of(epilogue);
    if d.b_transposed && d.m == 1 && d.k > 0 {
        // SAFETY: `check` proved every addressed element in bounds.
        unsafe { gemv::run(&d, a.as_ptr(), b.as_ptr(), c.as_mut_ptr(), epi, threads) };
        return Ok(());
    }
    if d.b_transposed && d.k > 0 {
        return TRANSPOSED.with_borrow_mut(|bt| {
            let stride = transpose_b(&d, b, bt);
            let d2 = MatmulDesc {
                b_transposed: false,
                b_batch_stride: stride,
                ..d
            };
            // SAFETY: `bt` holds every batch's k×n `B`; the rest as checked above.
            unsafe { run_kn(&d2, a.as_ptr(), bt.as_ptr(), c, epi, threads) };
            Ok(())
        });
    }
    // SAFETY: `check` proved every addressed element in bounds.
    unsafe { run_kn(&d, a.as_ptr(), b.as_ptr(), c, epi, threads) };
    Ok(())
}

/// The raw-pointer epilogue of `e` (bias per column).
pub(crate) fn epi_of(e: &Epilogue) -> Epi {
    Epi {
        bias: e.bias.map_or(Bias::None, |b| Bias::Col(b.as_ptr())),
        residual: e.residual.map_or(std::ptr::null(), |r| r.as_ptr()),
        act: e.activation,
    }
}

/// Runs a batched matmul with k×n `B`.
///
/// # Safety
/// `a`, `b` and the epilogue must hold every element `d` addresses; `c` is checked.
pub(crate) unsafe fn run_kn(
    d: &MatmulDesc,
    a: *const f32,
    b: *const f32,
    c: &mut [f32],
    epi: Epi,
    threads: usize,
) {
    let (m, n, k) = (d.m, d.n, d.k);
    if k == 0 {
        zero_k(c, m, n, d.batch, epi);
        return;
    }
    let base = Gemm {
        a,
        lda: k,
        panel: 0,
        b,
        ldb: n,
        b_rows: std::ptr::null(),
        c: c.as_mut_ptr(),
        ldc: n,
        epi,
    };
    let offs = |g: usize| Offsets {
        a: g * d.a_batch_stride,
        b: g * d.b_batch_stride,
        c: g * m * n,
        row: 0,
        col: 0,
    };
    if m >= LARGE && n >= LARGE && k >= LARGE {
        for g in 0..d.batch {
            let o = offs(g);
            let at = Gemm {
                a: a.wrapping_add(o.a),
                b: b.wrapping_add(o.b),
                epi: epi.offset(0, 0, o.c),
                ..base
            };
            large(&at, m, n, k, c, o.c, threads);
        }
        return;
    }
    tile::run(d.batch, Dims { m, n, k }, base, offs, threads);
}

/// One large GEMM through `gemm_f32`, then the epilogue in place.
unsafe fn large(g: &Gemm, m: usize, n: usize, k: usize, c: &mut [f32], off: usize, threads: usize) {
    let a = std::slice::from_raw_parts(g.a, m * k);
    let b = std::slice::from_raw_parts(g.b, k * n);
    let out = &mut c[off..off + m * n];
    let done = gemm_f32(
        m,
        n,
        k,
        a,
        Strides::row_major(k),
        b,
        Strides::row_major(n),
        out,
        Strides::row_major(n),
        1.0,
        0.0,
        threads,
    );
    debug_assert!(done.is_ok());
    for i in 0..m {
        for j in 0..n {
            let x = &mut out[i * n + j];
            *x = g.epi.scalar(*x, i, j, i * n + j);
        }
    }
}

/// `C` = epilogue(0) for every batch (the empty sum when `k == 0`).
unsafe fn zero_k(c: &mut [f32], m: usize, n: usize, batch: usize, epi: Epi) {
    for (idx, x) in c[..batch * m * n].iter_mut().enumerate() {
        let (i, j) = ((idx / n) % m, idx % n);
        *x = epi.scalar(0.0, i, j, idx);
    }
}

/// `dst` (k×n) = transpose of `src` (n×k): one 16-lane gather per output vector.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transpose512(src: &[f32], dst: &mut [f32], n: usize, k: usize) {
    use std::arch::x86_64::*;
    let step = _mm512_set1_epi32(k as i32);
    let idx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        step,
    );
    for j0 in (0..n).step_by(16) {
        let mask = super::epilogue::lanes(n - j0);
        let base = src.as_ptr().add(j0 * k);
        for p in 0..k {
            let v = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), mask, idx, base.add(p));
            _mm512_mask_storeu_ps(dst.as_mut_ptr().add(p * n + j0), mask, v);
        }
    }
}

thread_local! {
    /// The calling thread's buffer for transposed `B` operands, reused across calls.
    static TRANSPOSED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Writes every distinct batch of a transposed `B` (n×k) into `out` as k×n and
/// returns the new batch stride. Blocks of 16×16 keep reads and writes in cache.
fn transpose_b(d: &MatmulDesc, b: &[f32], out: &mut Vec<f32>) -> usize {
    let (n, k) = (d.n, d.k);
    let count = if d.b_batch_stride == 0 { 1 } else { d.batch };
    out.clear();
    out.resize(count * k * n, 0.0);
    for g in 0..count {
        let src = &b[g * d.b_batch_stride..][..n * k];
        let dst = &mut out[g * k * n..][..k * n];
        #[cfg(target_arch = "x86_64")]
        if super::use_avx512() && k < (1 << 26) {
            // SAFETY: AVX-512F is available; src holds n×k, dst k×n elements.
            unsafe { transpose512(src, dst, n, k) };
            continue;
        }
        for j0 in (0..n).step_by(16) {
            for p0 in (0..k).step_by(16) {
                for j in j0..(j0 + 16).min(n) {
                    for p in p0..(p0 + 16).min(k) {
                        dst[p * n + j] = src[j * k + p];
                    }
                }
            }
        }
    }
    if count == 1 {
        0
    } else {
        k * n
    }
}

/// Elements an operand of `batch` matrices of `size` with `stride` needs.
fn span(batch: usize, stride: usize, size: usize) -> Option<usize> {
    if batch == 0 || size == 0 {
        return Some(0);
    }
    (batch - 1).checked_mul(stride)?.checked_add(size)
}

fn check(
    d: &MatmulDesc,
    a: &[f32],
    b: &[f32],
    c: &[f32],
    e: &Epilogue,
    threads: usize,
) -> Result<(), CodegenError> {
    if threads == 0 {
        return Err(CodegenError::ZeroThreads);
    }
    let over = |operand| CodegenError::Overflow { operand };
    let mk = d.m.checked_mul(d.k).ok_or(over("a"))?;
    let kn = d.k.checked_mul(d.n).ok_or(over("b"))?;
    let mn = d.m.checked_mul(d.n).ok_or(over("c"))?;
    need(
        "a",
        a.len(),
        span(d.batch, d.a_batch_stride, mk).ok_or(over("a"))?,
    )?;
    need(
        "b",
        b.len(),
        span(d.batch, d.b_batch_stride, kn).ok_or(over("b"))?,
    )?;
    let out = d.batch.checked_mul(mn).ok_or(over("c"))?;
    if out > isize::MAX as usize / 4 {
        return Err(over("c"));
    }
    need("c", c.len(), out)?;
    if let Some(bias) = e.bias {
        if bias.len() != d.n {
            return Err(invalid(
                "matmul_f32",
                format!("bias has {} elements, n is {}", bias.len(), d.n),
            ));
        }
    }
    if let Some(r) = e.residual {
        need("residual", r.len(), out)?;
    }
    Ok(())
}
