//! 1×1 convolutions on small planes, computed with vectors over output channels.
//!
//! The NCHW GEMM vectorizes over pixels, so a 7×7 plane (49 pixels) fills 64
//! lanes. Here each micro-tile holds `R ≤ 7` pixels × `NV ≤ 3` vectors of 16
//! output channels: per input channel it loads `NV` weight vectors (weights
//! prepacked `k × 48` per block of [`CB`] output channels) and broadcasts `R`
//! input pixels. The tile is written to a small buffer, then each output
//! channel's `R` pixels are gathered into one vector, get the epilogue, and are
//! stored with a mask into the NCHW output. Threads take equal ranges of
//! 16-channel units (see [`run`]), so each reads only its share of the weights.

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
/// Weight rows (of [`CB`] values, 3 cache lines) fetched ahead.
const PREFETCH: usize = 24;
/// Input channels per chunk: its 96 × 48 weights (18 KiB) and the inputs it
/// reads (96 rows of a 7×7 plane, 19 KiB) stay in L1 together.
const KC: usize = 96;

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
/// Threads split (batch, 16-channel unit) items into contiguous ranges, so
/// each reads only its channels' weights (from L3 once, then L2). A range runs
/// in sub-blocks of at most [`CB`] channels inside one packed block; per
/// sub-block the inputs are taken in chunks of at most [`KC`] channels (the
/// chunk's weights stay in L1 across all pixel tiles), accumulating every
/// tile in a per-thread buffer that gets the epilogue after the last chunk.
///
/// # Safety
/// `x`, `c` and the epilogue must hold `batch` planes of the sizes `s` implies;
/// `wt` must come from [`pack`] for `s.m`, `s.k`; AVX-512F must be available.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn run(s: Shape, wt: &[f32], x: &[f32], c: &mut [f32], epi: Epi, threads: usize) {
    let units = s.m.div_ceil(16);
    let out = SendPtr(c.as_mut_ptr());
    let flops = 2 * s.batch * s.m * s.n * s.k;
    split(s.batch * units, tasks_for(threads, flops), |range| {
        // Unit ranges per batch image.
        let mut u = range.start;
        while u < range.end {
            let b = u / units;
            let end = range.end.min((b + 1) * units);
            let xb = x.as_ptr().wrapping_add(b * s.k * s.n);
            let cb = out.get().wrapping_add(b * s.m * s.n);
            let e = epi.offset(0, 0, b * s.m * s.n);
            // SAFETY: as this function's contract; these units lie in batch b.
            unsafe { part(s, wt, xb, cb, &e, u % units..end - b * units, 0..s.k) };
            u = end;
        }
    });
}

/// One image's channels of the 16-channel units `units`, summed over the
/// inputs `ks` only, on the calling thread: `c` = epi(W[units, ks] · x[ks]).
///
/// # Safety
/// `x` is the image's input origin (input channel `p` at `x + p·n`; rows
/// `ks` must exist), `c` its output origin (rows of `units` must exist), the
/// epilogue offset for this image; `wt` from [`pack`] for `s.m`, `s.k`;
/// AVX-512F must be available.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn part(
    s: Shape,
    wt: &[f32],
    x: *const f32,
    c: *mut f32,
    epi: &Epi,
    units: std::ops::Range<usize>,
    ks: std::ops::Range<usize>,
) {
    let mut u = units.start;
    while u < units.end {
        // Units left in this packed block and in this range.
        let in_block = CB / 16 - u % (CB / 16);
        let nv = in_block.min(units.end - u);
        let block = SubBlock {
            first: u,
            nv,
            ks: ks.clone(),
        };
        // SAFETY: as this function's contract.
        unsafe { sub_block(s, wt, x, c, epi, block) };
        u += nv;
    }
}

/// Channel vectors `first..first + nv` (inside one packed block) over inputs `ks`.
#[cfg(target_arch = "x86_64")]
struct SubBlock {
    first: usize,
    nv: usize,
    ks: std::ops::Range<usize>,
}

/// One sub-block of one image (origins `xb`, `cb`; epilogue already offset).
#[cfg(target_arch = "x86_64")]
unsafe fn sub_block(s: Shape, wt: &[f32], xb: *const f32, cb: *mut f32, epi: &Epi, blk: SubBlock) {
    let c0 = blk.first * 16;
    let ch = (blk.nv * 16).min(s.m - c0);
    let tiles = s.n.div_ceil(PR);
    let w = wt.as_ptr().add(c0 / CB * s.k * CB + c0 % CB);
    TILES.with(|buf| {
        let mut buf = buf.borrow_mut();
        if buf.len() < tiles {
            buf.resize(tiles, [[0f32; CB]; PR]);
        }
        let chunks = blk.ks.len().div_ceil(KC);
        let kc = blk.ks.len().div_ceil(chunks.max(1)).max(1);
        for p0 in blk.ks.clone().step_by(kc) {
            let kk = kc.min(blk.ks.end - p0);
            for (t, tmp) in buf[..tiles].iter_mut().enumerate() {
                let j0 = t * PR;
                let r = PR.min(s.n - j0);
                // SAFETY: inputs p0..p0+kk of pixels j0..j0+r and their weights exist.
                unsafe {
                    micro(
                        r,
                        blk.nv,
                        w.add(p0 * CB),
                        xb.wrapping_add(p0 * s.n + j0),
                        s.n,
                        kk,
                        p0 == blk.ks.start,
                        tmp,
                    )
                };
            }
        }
        if blk.ks.is_empty() {
            buf[..tiles].iter_mut().for_each(|t| *t = [[0f32; CB]; PR]);
        }
        for (t, tmp) in buf[..tiles].iter().enumerate() {
            let j0 = t * PR;
            // SAFETY: this sub-block alone writes channels c0..c0+ch.
            unsafe { store(tmp, PR.min(s.n - j0), c0, ch, j0, s.n, cb, epi) };
        }
    });
}

thread_local! {
    /// Per-thread accumulators: one `PR × CB` tile per pixel tile.
    static TILES: std::cell::RefCell<Vec<[[f32; CB]; PR]>> = const { std::cell::RefCell::new(Vec::new()) };
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
#[allow(clippy::too_many_arguments)]
unsafe fn micro(
    r: usize,
    nv: usize,
    w: *const f32,
    x: *const f32,
    n: usize,
    k: usize,
    first: bool,
    tmp: &mut [[f32; CB]; PR],
) {
    macro_rules! by_nv {
        ($r:literal) => {
            match nv {
                1 => tile::<$r, 1>(w, x, n, k, first, tmp),
                2 => tile::<$r, 2>(w, x, n, k, first, tmp),
                _ => tile::<$r, 3>(w, x, n, k, first, tmp),
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

/// `R` pixels × `NV` vectors of channels, accumulated over `k` inputs into
/// `tmp` (which is overwritten when `first`, else added to).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile<const R: usize, const NV: usize>(
    w: *const f32,
    x: *const f32,
    n: usize,
    k: usize,
    first: bool,
    tmp: &mut [[f32; CB]; PR],
) {
    let mut acc = [[_mm512_setzero_ps(); NV]; R];
    if !first {
        for (row, t) in acc.iter_mut().zip(tmp.iter()) {
            for (v, a) in row.iter_mut().enumerate() {
                *a = _mm512_loadu_ps(t.as_ptr().add(v * 16));
            }
        }
    }
    for p in 0..k {
        let mut wv = [_mm512_setzero_ps(); NV];
        // The weights stream from L3 once per run (a packed block is
        // contiguous, the next one follows): fetch ahead.
        _mm_prefetch::<_MM_HINT_T0>(w.wrapping_add((p + PREFETCH) * CB) as *const i8);
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
