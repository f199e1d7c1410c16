//! 1×1 convolutions on small planes, computed with vectors over output channels.
//!
//! The NCHW GEMM vectorizes over pixels, so a 7×7 plane (49 pixels) fills 64
//! lanes. Here each micro-tile holds `R ≤ 7` pixels × `NV ≤ 3` vectors of 16
//! output channels: per input channel it loads `NV` weight vectors (weights
//! prepacked `k × 48` per block of [`CB`] output channels) and broadcasts `R`
//! input pixels. The tile is written to a small buffer, then each output
//! channel's `R` pixels are gathered into one vector, get the epilogue, and are
//! stored with a mask into the NCHW output. Threads split (batch, channel
//! block, pixel tile) items, channel-block-major so a block's weights are
//! reused from cache across its pixel tiles (pixel-tile-major when several
//! threads share fewer than 8 blocks, so uneven blocks do not unbalance the threads).

#[cfg(target_arch = "x86_64")]
use super::epilogue::{lanes, Epi};
#[cfg(target_arch = "x86_64")]
use super::par::{split, tasks_for, SendPtr};
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Output channels per weight block (3 vectors: 7×3 accumulators, 3 weight
/// vectors and a broadcast fit the 32 registers; 7×4 spilled).
pub(crate) const CB: usize = 48;
/// Pixels per micro-tile.
const PR: usize = 7;

/// Whether the channel-vectorized kernel beats the NCHW GEMM for `n` pixels:
/// when a pixel row fills its vectors badly.
pub(crate) fn wanted(n: usize) -> bool {
    n < 100 && !n.is_multiple_of(16)
}

/// Packs OI weights (`m` rows of `k`) into blocks of [`CB`] channels, each
/// `k × CB` row-major with zero padding past `m`.
pub(crate) fn pack(weight: &[f32], m: usize, k: usize) -> Vec<f32> {
    let mut out = vec![0f32; m.div_ceil(CB) * k * CB];
    for (co, row) in weight.chunks_exact(k).take(m).enumerate() {
        for (ci, &w) in row.iter().enumerate() {
            out[(co / CB * k + ci) * CB + co % CB] = w;
        }
    }
    out
}

/// Sizes of one run: `batch` GEMMs of `m` channels × `n` pixels × `k` inputs.
#[derive(Clone, Copy)]
pub(crate) struct Shape {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
}

/// `c[b] (m×n) = epi(W (m×k) · x[b] (k×n))` with `wt` from [`pack`].
///
/// # Safety
/// `x`, `c` and the epilogue must hold `batch` planes of the sizes `s` implies;
/// `wt` must come from [`pack`] for `s.m`, `s.k`; AVX-512F must be available.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn run(s: Shape, wt: &[f32], x: &[f32], c: &mut [f32], epi: Epi, threads: usize) {
    let (blocks, tiles) = (s.m.div_ceil(CB), s.n.div_ceil(PR));
    let items = s.batch * blocks * tiles;
    let out = SendPtr(c.as_mut_ptr());
    let flops = 2 * s.batch * s.m * s.n * s.k;
    let tasks = tasks_for(threads, flops);
    let tile_major = tasks > 1 && blocks < 8;
    split(items, tasks, |range| {
        for t in range {
            let (b, rest) = (t / (blocks * tiles), t % (blocks * tiles));
            // Few blocks (160 channels: 48, 48, 48, 16) split block-major would
            // give threads unequal channel counts; pixel-tile-major is even.
            let (blk, tile) = if tile_major {
                (rest % blocks, rest / blocks)
            } else {
                (rest / tiles, rest % tiles)
            };
            let j0 = tile * PR;
            let r = PR.min(s.n - j0);
            let ch = CB.min(s.m - blk * CB);
            let w = wt.as_ptr().add(blk * s.k * CB);
            let xb = x.as_ptr().add(b * s.k * s.n + j0);
            let mut tmp = [[0f32; CB]; PR];
            // SAFETY: block blk has k×CB packed weights; pixels j0..j0+r exist.
            unsafe { micro(r, ch.div_ceil(16), w, xb, s.n, s.k, &mut tmp) };
            let e = epi.offset(0, 0, b * s.m * s.n);
            let cb = out.get().wrapping_add(b * s.m * s.n);
            // SAFETY: this item alone writes channels blk·CB.. at pixels j0..j0+r.
            unsafe { store(&tmp, r, blk * CB, ch, j0, s.n, cb, &e) };
        }
    });
}

/// Gathers each channel's `r` pixels from `tmp`, applies the epilogue, stores.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn store(
    tmp: &[[f32; CB]; PR],
    r: usize,
    c0: usize,
    ch: usize,
    j0: usize,
    n: usize,
    c: *mut f32,
    e: &Epi,
) {
    let s = CB as i32;
    let idx = _mm512_setr_epi32(
        0,
        s,
        2 * s,
        3 * s,
        4 * s,
        5 * s,
        6 * s,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    );
    let mask = lanes(r);
    let base = tmp.as_ptr() as *const f32;
    for cc in 0..ch {
        let v = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), mask, idx, base.add(cc));
        let i = c0 + cc;
        let off = i * n + j0;
        let y = e.vec16(v, mask, i, j0, off);
        _mm512_mask_storeu_ps(c.add(off), mask, y);
    }
}

/// Dispatches to the micro-tile for `r` pixels and `nv` channel vectors.
#[cfg(target_arch = "x86_64")]
unsafe fn micro(
    r: usize,
    nv: usize,
    w: *const f32,
    x: *const f32,
    n: usize,
    k: usize,
    tmp: &mut [[f32; CB]; PR],
) {
    macro_rules! by_nv {
        ($r:literal) => {
            match nv {
                1 => tile::<$r, 1>(w, x, n, k, tmp),
                2 => tile::<$r, 2>(w, x, n, k, tmp),
                _ => tile::<$r, 3>(w, x, n, k, tmp),
            }
        };
    }
    match r {
        1 => by_nv!(1),
        2 => by_nv!(2),
        3 => by_nv!(3),
        4 => by_nv!(4),
        5 => by_nv!(5),
        6 => by_nv!(6),
        _ => by_nv!(7),
    }
}

/// `R` pixels × `NV` vectors of channels, accumulated over `k` inputs into `tmp`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile<const R: usize, const NV: usize>(
    w: *const f32,
    x: *const f32,
    n: usize,
    k: usize,
    tmp: &mut [[f32; CB]; PR],
) {
    let mut acc = [[_mm512_setzero_ps(); NV]; R];
    for p in 0..k {
        let mut wv = [_mm512_setzero_ps(); NV];
        for (v, wv) in wv.iter_mut().enumerate() {
            *wv = _mm512_loadu_ps(w.add(p * CB + v * 16));
        }
        let xp = x.add(p * n);
        for (r, row) in acc.iter_mut().enumerate() {
            let xv = _mm512_set1_ps(*xp.add(r));
            for v in 0..NV {
                row[v] = _mm512_fmadd_ps(xv, wv[v], row[v]);
            }
        }
    }
    for (row, t) in acc.iter().zip(tmp.iter_mut()) {
        for (v, a) in row.iter().enumerate() {
            _mm512_storeu_ps(t.as_mut_ptr().add(v * 16), *a);
        }
    }
}
