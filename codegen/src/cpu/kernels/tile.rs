//! The register-tiled GEMM behind matmul and convolution: `C = A·B` then the epilogue.
//!
//! `A` (m×k), `B` (k×n) and `C` (m×n) are row-major with leading dimensions, so a
//! convolution's OIHW weights and NCHW activations are used in place, without
//! packing. The AVX-512 micro-kernel keeps a 12×32 block of `C` in 24 registers
//! (`m == 1` uses a 1×128 block), streams rows of `B` with masked loads (so column
//! tails need no copies), broadcasts `A` from memory, and applies the epilogue to
//! each vector while it is still in a register. Tiles run in strips (one row
//! block across a chunk of columns, see [`Order`]); the strip list (over all
//! GEMMs of a batch) is cut into contiguous ranges for threads.

use super::epilogue::{lanes, Activation, Bias, Epi};
use super::par::{split, tasks_for};
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// One GEMM's operands; the caller has checked that every addressed element exists.
#[derive(Clone, Copy)]
pub(crate) struct Gemm {
    pub a: *const f32,
    pub lda: usize,
    /// 0: `A` is row-major with leading dimension `lda`. Otherwise `A` is in
    /// [`MR`]-row panels (see [`pack_panels`]) `panel` elements apart: element
    /// `(i, p)` at `(i / MR)·panel + p·MR + i % MR` (`lda` unused).
    pub panel: usize,
    pub b: *const f32,
    pub ldb: usize,
    /// Null: row `p` of `B` is at `b + p·ldb`. Otherwise row `p` is at
    /// `b + b_rows[p]` (`ldb` unused): `B` as rows of another buffer, e.g.
    /// the shifted rows of a padded input (implicit-GEMM convolution).
    pub b_rows: *const usize,
    pub c: *mut f32,
    pub ldc: usize,
    pub epi: Epi,
}

// SAFETY: a Gemm is a view the caller keeps valid for the whole call; tasks write
// disjoint tiles of `c` only.
unsafe impl Send for Gemm {}
unsafe impl Sync for Gemm {}

/// Sizes shared by every GEMM of a batch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims {
    pub m: usize,
    pub n: usize,
    pub k: usize,
}

/// Rows of the main micro-tile (and of a panel of packed `A`).
pub(crate) const MR: usize = 12;

/// Packs row-major `a` (`m` rows of `k`) into panels of [`MR`] rows, each
/// `k × MR` (`a[i][p]` at `p·MR + i % MR` of panel `i / MR`), zero rows past
/// `m`: the micro-kernel's broadcasts of one k-step then read one cache
/// line, and a tile's `A` is one sequential stream (prefetch-friendly when
/// the weights come from L3).
pub(crate) fn pack_panels(a: &[f32], m: usize, k: usize) -> Vec<f32> {
    let mut out = vec![0f32; m.div_ceil(MR) * k * MR];
    for (i, row) in a.chunks_exact(k).take(m).enumerate() {
        for (p, &v) in row.iter().enumerate() {
            out[(i / MR * k + p) * MR + i % MR] = v;
        }
    }
    out
}

/// The micro-tile a GEMM runs on (AVX-512; elsewhere always [`Shape::Tall`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// 12 rows × 32 columns (1 × 128 for `m == 1`); `A` row-major or in panels.
    Tall,
    /// 8 rows × 48 columns, `A` row-major: 3 loads of `B` and 8 broadcasts
    /// per 24 FMAs (12×32: 2 + 12), and fewer padded rows where `m` is 4 to
    /// 8 past a multiple of 12 (on a Zen 5 at m = 16, `B` in L2: 210 vs 164
    /// GFLOP/s; see [`ConvKnobs::wide_tiles`](super::ConvKnobs::wide_tiles)).
    Wide,
}

/// Rows and columns of one micro-tile.
fn block(m: usize, shape: Shape) -> (usize, usize) {
    match (m, shape) {
        (1, _) => (1, 128),
        (_, Shape::Wide) => (8, 48),
        _ => (MR, 32),
    }
}

/// Where GEMM `g` of a batch starts, in elements from the base [`Gemm`]'s
/// pointers; `row` and `col` also shift a per-row or per-column bias.
#[derive(Clone, Copy, Default)]
pub(crate) struct Offsets {
    pub a: usize,
    pub b: usize,
    pub c: usize,
    pub row: usize,
    /// Shifts a per-column bias.
    pub col: usize,
}

impl Gemm {
    pub(crate) fn at(&self, o: Offsets) -> Gemm {
        Gemm {
            a: self.a.wrapping_add(o.a),
            b: self.b.wrapping_add(o.b),
            c: self.c.wrapping_add(o.c),
            epi: self.epi.offset(o.row, o.col, o.c),
            ..*self
        }
    }
}

/// Runs `count` GEMMs of size `d`, the `g`-th at `base` shifted by `offs(g)`, over `threads`.
///
/// # Safety
/// Every GEMM must address in-bounds elements for `d`, and the outputs of
/// different GEMMs (and of one GEMM's distinct elements) must not overlap.
pub(crate) unsafe fn run<F>(count: usize, d: Dims, base: Gemm, offs: F, threads: usize)
where
    F: Fn(usize) -> Offsets + Sync,
{
    run_shaped(count, d, base, offs, threads, Shape::Tall)
}

/// [`run`] on micro-tiles of `shape` ([`Shape::Wide`] only for row-major `A`
/// on AVX-512; otherwise it runs [`Shape::Tall`]).
///
/// # Safety
/// As [`run`].
pub(crate) unsafe fn run_shaped<F>(
    count: usize,
    d: Dims,
    base: Gemm,
    offs: F,
    threads: usize,
    shape: Shape,
) where
    F: Fn(usize) -> Offsets + Sync,
{
    let at = |g: usize| base.at(offs(g));
    if count == 0 || d.m == 0 || d.n == 0 {
        return;
    }
    let wide = shape == Shape::Wide && d.m > 1 && base.panel == 0 && super::use_avx512();
    let shape = if wide { Shape::Wide } else { Shape::Tall };
    let o = Order::new(d, shape);
    let strips = count * o.strips;
    // m == 1 streams B once (memory-bound, about 4× slower per flop).
    let weight = if d.m == 1 { 8 } else { 2 };
    let flops = weight * count * d.m * d.n * d.k.max(1);
    let tasks = tasks_for(threads, flops).min(strips);
    let bounds = balanced(strips, tasks, |t| o.cost(d, t));
    split(tasks, tasks, |range| {
        for t in bounds[range.start]..bounds[range.end] {
            let (g, i0, j0, j1) = o.strip(t);
            let gemm = at(g);
            let rows = o.mr.min(d.m - i0);
            for j in (j0..j1).step_by(o.nr) {
                let cols = o.nr.min(j1 - j);
                // SAFETY: the tile lies inside GEMM g, per this function's contract.
                #[cfg(target_arch = "x86_64")]
                if wide {
                    unsafe { tile512_wide(&gemm, d.k, i0, j, rows, cols) };
                    continue;
                }
                unsafe { tile(&gemm, d.k, i0, j, rows, cols) };
            }
        }
    });
}

/// Cuts `0..items` into `tasks` contiguous ranges of about equal total
/// `cost`: `tasks + 1` boundaries, the first 0 and the last `items`.
/// (Equal item counts left one of two threads a 4-column tail chunk that
/// costs as much as 16 columns: 1.6× the other's work on a 14×14 plane.)
fn balanced(items: usize, tasks: usize, cost: impl Fn(usize) -> usize) -> Vec<usize> {
    let costs: Vec<usize> = (0..items).map(cost).collect();
    let total: usize = costs.iter().sum();
    let mut bounds = vec![0; tasks + 1];
    let (mut acc, mut t) = (0usize, 0usize);
    for task in 1..tasks {
        let target = total * task / tasks;
        while t < items && acc + costs[t] / 2 < target {
            acc += costs[t];
            t += 1;
        }
        bounds[task] = t.max(bounds[task - 1]);
    }
    bounds[tasks] = items;
    bounds
}

/// Bytes of `B` one column chunk may span (the chunk stays in L2 while every
/// row block of `A` passes over it).
const CHUNK_BYTES: usize = 192 * 1024;

/// The order tiles run in: GEMM, then column chunks of `nc` columns, then row
/// blocks; a strip is one row block across one chunk, run panel by panel.
/// Within a strip the output rows and the rows of `B` stay on the same few
/// pages (few TLB misses), and one chunk of `B` is reused from L2 by every
/// row block. Threads split the strips.
struct Order {
    mr: usize,
    nr: usize,
    /// Columns per chunk, a multiple of `nr`.
    nc: usize,
    /// Row blocks per GEMM.
    mt: usize,
    n: usize,
    /// Strips per GEMM.
    strips: usize,
}

impl Order {
    fn new(d: Dims, shape: Shape) -> Order {
        let (mr, nr) = block(d.m, shape);
        let panels = (CHUNK_BYTES / (4 * d.k.max(1) * nr)).max(1);
        // Equal chunks (e.g. 64 + 64, not 96 + 32), so threads get equal strips.
        let chunks = d.n.div_ceil(panels * nr);
        let nc = d.n.div_ceil(chunks).div_ceil(nr) * nr;
        let mt = d.m.div_ceil(mr);
        let strips = mt * d.n.div_ceil(nc);
        Order {
            mr,
            nr,
            nc,
            mt,
            n: d.n,
            strips,
        }
    }

    /// Work of strip `t`: rows × columns rounded up to whole vectors.
    fn cost(&self, d: Dims, t: usize) -> usize {
        let (_, i0, j0, j1) = self.strip(t);
        let cols: usize = (j0..j1)
            .step_by(self.nr)
            .map(|j| self.nr.min(j1 - j).div_ceil(16) * 16)
            .sum();
        self.mr.min(d.m - i0) * cols
    }

    /// GEMM index, first row, and column range of strip `t`.
    fn strip(&self, t: usize) -> (usize, usize, usize, usize) {
        let (g, rest) = (t / self.strips, t % self.strips);
        let (chunk, ib) = (rest / self.mt, rest % self.mt);
        let j0 = chunk * self.nc;
        (g, ib * self.mr, j0, (j0 + self.nc).min(self.n))
    }
}

/// One `rows × cols` tile at `(i0, j0)`.
unsafe fn tile(g: &Gemm, k: usize, i0: usize, j0: usize, rows: usize, cols: usize) {
    #[cfg(target_arch = "x86_64")]
    if super::use_avx512() {
        return if g.panel != 0 {
            tile512_rows::<true>(g, k, i0, j0, rows, cols)
        } else {
            tile512_rows::<false>(g, k, i0, j0, rows, cols)
        };
    }
    #[cfg(target_arch = "x86_64")]
    if super::use_avx2() && g.panel == 0 && g.b_rows.is_null() {
        return super::tile_avx2::tile(g, k, i0, j0, rows, cols);
    }
    tile_portable(g, k, i0, j0, rows, cols)
}

/// The [`Shape::Wide`] micro-kernel for `rows` ≤ 8 rows of row-major `A`.
#[cfg(target_arch = "x86_64")]
unsafe fn tile512_wide(g: &Gemm, k: usize, i0: usize, j0: usize, rows: usize, cols: usize) {
    macro_rules! by_rows {
        ($nv:literal) => {
            match rows {
                1 => tile512::<1, $nv, false>(g, k, i0, j0, cols),
                2 => tile512::<2, $nv, false>(g, k, i0, j0, cols),
                3 => tile512::<3, $nv, false>(g, k, i0, j0, cols),
                4 => tile512::<4, $nv, false>(g, k, i0, j0, cols),
                5 => tile512::<5, $nv, false>(g, k, i0, j0, cols),
                6 => tile512::<6, $nv, false>(g, k, i0, j0, cols),
                7 => tile512::<7, $nv, false>(g, k, i0, j0, cols),
                _ => tile512::<8, $nv, false>(g, k, i0, j0, cols),
            }
        };
    }
    debug_assert!(rows <= 8 && cols <= 48 && g.panel == 0);
    match cols.div_ceil(16) {
        1 => by_rows!(1),
        2 => by_rows!(2),
        _ => by_rows!(3),
    }
}

/// The AVX-512 micro-kernel for `rows` rows, `P`: `A` in panels.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn tile512_rows<const P: bool>(
    g: &Gemm,
    k: usize,
    i0: usize,
    j0: usize,
    rows: usize,
    cols: usize,
) {
    if cols <= 16 {
        // A column tail of one vector: half the work of a 2-vector tile.
        return match rows {
            1 => tile512::<1, 1, P>(g, k, i0, j0, cols),
            2 => tile512::<2, 1, P>(g, k, i0, j0, cols),
            3 => tile512::<3, 1, P>(g, k, i0, j0, cols),
            4 => tile512::<4, 1, P>(g, k, i0, j0, cols),
            5 => tile512::<5, 1, P>(g, k, i0, j0, cols),
            6 => tile512::<6, 1, P>(g, k, i0, j0, cols),
            7 => tile512::<7, 1, P>(g, k, i0, j0, cols),
            8 => tile512::<8, 1, P>(g, k, i0, j0, cols),
            9 => tile512::<9, 1, P>(g, k, i0, j0, cols),
            10 => tile512::<10, 1, P>(g, k, i0, j0, cols),
            11 => tile512::<11, 1, P>(g, k, i0, j0, cols),
            _ => tile512::<12, 1, P>(g, k, i0, j0, cols),
        };
    }
    match rows {
        1 if cols > 32 => tile512::<1, 8, P>(g, k, i0, j0, cols),
        1 => tile512::<1, 2, P>(g, k, i0, j0, cols),
        2 => tile512::<2, 2, P>(g, k, i0, j0, cols),
        3 => tile512::<3, 2, P>(g, k, i0, j0, cols),
        4 => tile512::<4, 2, P>(g, k, i0, j0, cols),
        5 => tile512::<5, 2, P>(g, k, i0, j0, cols),
        6 => tile512::<6, 2, P>(g, k, i0, j0, cols),
        7 => tile512::<7, 2, P>(g, k, i0, j0, cols),
        8 => tile512::<8, 2, P>(g, k, i0, j0, cols),
        9 => tile512::<9, 2, P>(g, k, i0, j0, cols),
        10 => tile512::<10, 2, P>(g, k, i0, j0, cols),
        11 => tile512::<11, 2, P>(g, k, i0, j0, cols),
        _ => tile512::<12, 2, P>(g, k, i0, j0, cols),
    }
}

/// The AVX-512 micro-kernel: `MR` rows, `NV` vectors of 16 columns (`cols` valid).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile512<const MR: usize, const NV: usize, const P: bool>(
    g: &Gemm,
    k: usize,
    i0: usize,
    j0: usize,
    cols: usize,
) {
    let mut mask = [0u16; NV];
    for (v, m) in mask.iter_mut().enumerate() {
        *m = lanes(cols.saturating_sub(v * 16));
    }
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    // Panels: i0 is a multiple of the panel height (strips start on row blocks).
    let a = if P {
        g.a.add(i0 / self::MR * g.panel)
    } else {
        g.a.add(i0 * g.lda)
    };
    let b = g.b.wrapping_add(j0);
    match (cols >= 16 * NV, g.b_rows.is_null()) {
        (true, true) => k_loop::<MR, NV, P, false, false>(g, k, a, b, &mask, &mut acc),
        (false, true) => k_loop::<MR, NV, P, true, false>(g, k, a, b, &mask, &mut acc),
        (true, false) => k_loop::<MR, NV, P, false, true>(g, k, a, b, &mask, &mut acc),
        (false, false) => k_loop::<MR, NV, P, true, true>(g, k, a, b, &mask, &mut acc),
    }
    let simple = matches!(g.epi.bias, Bias::None | Bias::Row(_)) && g.epi.residual.is_null();
    match g.epi.act {
        Activation::Clip { min, max } if simple => {
            let (lo, hi) = (_mm512_set1_ps(min), _mm512_set1_ps(max));
            store_rows::<MR, NV, _>(g, &acc, i0, j0, &mask, |x| {
                _mm512_min_ps(_mm512_max_ps(x, lo), hi)
            })
        }
        Activation::None if simple => store_rows::<MR, NV, _>(g, &acc, i0, j0, &mask, |x| x),
        _ => {
            for (i, row) in acc.iter().enumerate() {
                for v in 0..NV {
                    if mask[v] == 0 {
                        continue;
                    }
                    let (r, j) = (i0 + i, j0 + v * 16);
                    let off = r * g.ldc + j;
                    let x = g.epi.vec16(row[v], mask[v], r, j, off);
                    _mm512_mask_storeu_ps(g.c.add(off), mask[v], x);
                }
            }
        }
    }
}

/// Stores a tile whose epilogue is at most a per-row bias and `act`
/// (specialized per activation: no per-vector dispatch).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn store_rows<const MR: usize, const NV: usize, F: Fn(__m512) -> __m512>(
    g: &Gemm,
    acc: &[[__m512; NV]; MR],
    i0: usize,
    j0: usize,
    mask: &[u16; NV],
    act: F,
) {
    for (i, row) in acc.iter().enumerate() {
        let r = i0 + i;
        let bias = match g.epi.bias {
            Bias::Row(p) => _mm512_set1_ps(*p.add(r)),
            _ => _mm512_setzero_ps(),
        };
        let out = g.c.add(r * g.ldc + j0);
        for v in 0..NV {
            let x = act(_mm512_add_ps(row[v], bias));
            _mm512_mask_storeu_ps(out.add(16 * v), mask[v], x);
        }
    }
}

/// The k-loop of [`tile512`]: `acc += A[rows, ..k] · B[..k, cols]`, the rows
/// of `B` loaded under `mask` only for a column tail (`MASKED`), found
/// through [`Gemm::b_rows`] when `IND` (`b` is then the tile's column origin).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn k_loop<
    const MR: usize,
    const NV: usize,
    const P: bool,
    const MASKED: bool,
    const IND: bool,
>(
    g: &Gemm,
    k: usize,
    a: *const f32,
    mut b: *const f32,
    mask: &[u16; NV],
    acc: &mut [[__m512; NV]; MR],
) {
    let origin = b;
    for p in 0..k {
        if IND {
            b = origin.wrapping_add(*g.b_rows.add(p));
        }
        let mut bv = [_mm512_setzero_ps(); NV];
        for v in 0..NV {
            bv[v] = if MASKED {
                _mm512_maskz_loadu_ps(mask[v], b.wrapping_add(v * 16))
            } else {
                _mm512_loadu_ps(b.wrapping_add(v * 16))
            };
        }
        for (i, row) in acc.iter_mut().enumerate() {
            let at = if P { p * self::MR + i } else { i * g.lda + p };
            let av = _mm512_set1_ps(*a.add(at));
            for v in 0..NV {
                row[v] = _mm512_fmadd_ps(av, bv[v], row[v]);
            }
        }
        if !IND {
            b = b.wrapping_add(g.ldb);
        }
    }
}

/// The portable tile: one output row at a time, accumulated over `k`.
unsafe fn tile_portable(g: &Gemm, k: usize, i0: usize, j0: usize, rows: usize, cols: usize) {
    let mut acc = [0f32; 128];
    for r in i0..i0 + rows {
        let acc = &mut acc[..cols];
        acc.fill(0.0);
        for p in 0..k {
            let av = match g.panel {
                0 => *g.a.add(r * g.lda + p),
                panel => *g.a.add(r / MR * panel + p * MR + r % MR),
            };
            let row = match g.b_rows.is_null() {
                true => p * g.ldb,
                false => *g.b_rows.add(p),
            };
            let brow = std::slice::from_raw_parts(g.b.add(row + j0), cols);
            for (x, &bv) in acc.iter_mut().zip(brow) {
                *x += av * bv;
            }
        }
        for (jj, &x) in acc.iter().enumerate() {
            let off = r * g.ldc + j0 + jj;
            *g.c.add(off) = g.epi.scalar(x, r, j0 + jj, off);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::balanced;

    #[test]
    fn balanced_ranges_cover_items_in_order_with_near_equal_cost() {
        // Four column chunks of 8 row blocks: 64, 64, 64 and a 16-lane tail.
        let costs: Vec<usize> = (0..32).map(|t| if t >= 24 { 16 } else { 64 }).collect();
        let b = balanced(32, 2, |t| costs[t]);
        assert_eq!((b[0], b[2]), (0, 32));
        let first: usize = costs[..b[1]].iter().sum();
        let total: usize = costs.iter().sum();
        assert!(first.abs_diff(total - first) <= 64, "{b:?}");
        for tasks in 1..6 {
            let b = balanced(5, tasks, |_| 1);
            assert!(b.windows(2).all(|w| w[0] <= w[1]) && b[tasks] == 5, "{b:?}");
        }
        assert_eq!(balanced(3, 3, |t| [0, 0, 9][t]), vec![0, 2, 3, 3]);
    }
}
