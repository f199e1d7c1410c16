//! GEMV for `m == 1` with a transposed `B` (n×k, e.g. a Linear layer's weight):
//! `c[j] = a · B[j, :]`, dot products over contiguous rows.
//!
//! The AVX-512 kernel takes 8 rows of `B` at once (8 accumulators, one load of
//! `a` shared by 8 FMAs, masked tail), reduces each, and applies the epilogue.
//! Threads split the output columns (over all batches) into contiguous ranges.

use super::epilogue::Epi;
use super::matmul::MatmulDesc;
use super::par::{split, tasks_for, SendPtr};
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Rows of `B` one kernel call covers.
const ROWS: usize = 8;

/// `c[b][j] = a[b] · B[b][j, :]` then the epilogue, for `d.m == 1`.
///
/// # Safety
/// Every element `d` addresses in `a`, `b`, `c` and the epilogue must exist.
pub(crate) unsafe fn run(
    d: &MatmulDesc,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    epi: Epi,
    threads: usize,
) {
    let blocks = d.n.div_ceil(ROWS);
    let items = d.batch * blocks;
    let (a, b, c) = (SendPtr(a as *mut f32), SendPtr(b as *mut f32), SendPtr(c));
    // Memory-bound: about 4× slower per flop than a GEMM.
    let tasks = tasks_for(threads, 8 * d.batch * d.n * d.k);
    split(items, tasks, |range| {
        for t in range {
            let (g, j0) = (t / blocks, (t % blocks) * ROWS);
            let rows = ROWS.min(d.n - j0);
            let ag = a.get().wrapping_add(g * d.a_batch_stride) as *const f32;
            let bg = b.get().wrapping_add(g * d.b_batch_stride + j0 * d.k) as *const f32;
            let cg = c.get().wrapping_add(g * d.n);
            let e = epi.offset(0, 0, g * d.n);
            // SAFETY: rows j0..j0+rows of batch g exist, per the contract.
            unsafe { dots(ag, bg, d.k, rows, cg, j0, e) };
        }
    });
}

/// `rows` dot products of `a` with consecutive k-length rows from `b`, stored at `c[j0..]`.
unsafe fn dots(
    a: *const f32,
    b: *const f32,
    k: usize,
    rows: usize,
    c: *mut f32,
    j0: usize,
    e: Epi,
) {
    let mut out = [0f32; ROWS];
    #[cfg(target_arch = "x86_64")]
    if super::use_avx512() {
        dots512(a, b, k, rows, &mut out);
    } else {
        dots_portable(a, b, k, rows, &mut out);
    }
    #[cfg(not(target_arch = "x86_64"))]
    dots_portable(a, b, k, rows, &mut out);
    for (r, &x) in out[..rows].iter().enumerate() {
        *c.add(j0 + r) = e.scalar(x, 0, j0 + r, j0 + r);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dots512(a: *const f32, b: *const f32, k: usize, rows: usize, out: &mut [f32; ROWS]) {
    let mut acc = [_mm512_setzero_ps(); ROWS];
    let mut p = 0;
    while p < k {
        let mask = super::epilogue::lanes(k - p);
        let av = _mm512_maskz_loadu_ps(mask, a.add(p));
        for (r, x) in acc.iter_mut().enumerate() {
            // Rows past `rows` read nothing (mask 0) and are dropped below.
            let m = if r < rows { mask } else { 0 };
            let bv = _mm512_maskz_loadu_ps(m, b.wrapping_add(r * k + p));
            *x = _mm512_fmadd_ps(av, bv, *x);
        }
        p += 16;
    }
    for (o, x) in out.iter_mut().zip(acc) {
        *o = _mm512_reduce_add_ps(x);
    }
}

unsafe fn dots_portable(
    a: *const f32,
    b: *const f32,
    k: usize,
    rows: usize,
    out: &mut [f32; ROWS],
) {
    let a = std::slice::from_raw_parts(a, k);
    for (r, o) in out[..rows].iter_mut().enumerate() {
        let row = std::slice::from_raw_parts(b.add(r * k), k);
        *o = a.iter().zip(row).map(|(x, y)| x * y).sum();
    }
}
