//! Depthwise convolution of any kernel size, stride and dilation, on a staged
//! plane (AVX-512F).
//!
//! The input rows that a band of output rows reads are first copied into a
//! zero-padded, phase-split buffer: with strides `(sh, sw)` the padded plane
//! becomes `sh·sw` sub-images, sub-image `(a, b)` holding padded rows
//! `a, a+sh, …` and columns `b, b+sw, …`. Tap `(ky, kx)` of output `(oy, ox)`
//! then reads sub-image `((ky·dh) mod sh, (kx·dw) mod sw)` at row
//! `oy + ⌊ky·dh/sh⌋` and column `ox + ⌊kx·dw/sw⌋`: for 16 consecutive outputs,
//! one unmasked contiguous load per tap, whatever the padding, stride or
//! dilation. No mask is computed in the inner loop, and the tap loop is
//! unrolled for the common kernel sizes (3×3, 5×5, 7×7, 1×k, k×1).
//!
//! Two layouts of the output vectors over the band ([`StagedLayout`]):
//! - rows: each output row in 16-lane vectors (the last one partial);
//! - grid: the band flattened with the sub-image pitch, so one vector spans
//!   several short rows (7×7 outputs of a 5×5 kernel: 5 vectors, not 7); the
//!   lanes that fall in the pitch's padding are computed and dropped.
//!
//! Both write raw sums to a per-thread scratch grid that is then copied to the
//! output row by row with the epilogue (bias, residual, activation) applied.

use super::conv::Conv2dDesc;
use super::depthwise::{range_mask, Plane};
use super::epilogue::{lanes, Epi};
use std::arch::x86_64::*;
use std::cell::RefCell;

/// How the 16-lane output vectors cover a band of output rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StagedLayout {
    /// Each output row on its own vectors.
    Rows,
    /// The band flattened with the staged pitch (vectors span rows).
    Grid,
}

/// The staged geometry of a band of `nb` output rows.
#[derive(Clone, Copy, PartialEq)]
struct Geo {
    sh: usize,
    sw: usize,
    /// Columns of one sub-image row (the grid's pitch).
    wph: usize,
    /// Rows of one sub-image.
    hph: usize,
    /// Floats per sub-image, slack included.
    sub: usize,
    /// Output rows in the band.
    nb: usize,
}

impl Geo {
    fn new(d: &Conv2dDesc, nb: usize) -> Geo {
        let (sh, sw) = (d.stride_h, d.stride_w);
        let wp = sw * (d.out_w() - 1) + d.dilation_w * (d.kw - 1) + 1;
        let hp = sh * (nb - 1) + d.dilation_h * (d.kh - 1) + 1;
        let (wph, hph) = (wp.div_ceil(sw), hp.div_ceil(sh));
        let qx = d.dilation_w * (d.kw - 1) / sw;
        Geo {
            sh,
            sw,
            wph,
            hph,
            sub: hph * wph + 32 + qx,
            nb,
        }
    }

    /// Floats of the scratch grid (the last vector may run 16 past the band).
    fn grid_len(&self) -> usize {
        self.nb * self.wph + 32
    }
}

/// The layout with fewer output vectors for `d`'s bands of `nb` rows (rows on a tie).
pub(super) fn auto_layout(d: &Conv2dDesc, nb: usize) -> StagedLayout {
    let g = Geo::new(d, nb.max(1));
    let rows = g.nb * d.out_w().div_ceil(16);
    let grid = (g.nb * g.wph).div_ceil(16);
    if grid < rows {
        StagedLayout::Grid
    } else {
        StagedLayout::Rows
    }
}

/// Per-thread buffers: the staged input, the raw output grid, the tap
/// offsets and the vector starts of the last (descriptor, band, layout), so
/// that consecutive planes of one convolution reuse them.
#[derive(Default)]
struct Scratch {
    staged: Vec<f32>,
    grid: Vec<f32>,
    offs: Vec<usize>,
    starts: Vec<usize>,
    ops: Vec<StageOp>,
    key: Option<(Conv2dDesc, std::ops::Range<usize>, StagedLayout)>,
    geo: Option<Geo>,
}

/// One vector of staging: input lanes at `row + base` (from the plane's
/// origin; `base` the row's first column, maybe negative) under `load`
/// (bit e: element e, 32 for column stride 2) to `dst` under `store`.
#[derive(Clone, Copy)]
struct StageOp {
    row: isize,
    base: isize,
    dst: usize,
    load: u32,
    store: u16,
}

impl Scratch {
    /// The geometry of `d`'s band `rows`, buffers and tables ready. The
    /// staged buffer is zeroed when the geometry changes; the planes then
    /// only rewrite the in-image rows (the padding stays zero).
    fn prepare(
        &mut self,
        d: &Conv2dDesc,
        rows: &std::ops::Range<usize>,
        layout: StagedLayout,
    ) -> Geo {
        let key = Some((*d, rows.clone(), layout));
        if let (true, Some(g)) = (self.key == key, self.geo) {
            return g;
        }
        let g = Geo::new(d, rows.len());
        self.staged.clear();
        // Two buffers: [`planes`] stages one plane ahead.
        self.staged.resize(2 * g.sh * g.sw * g.sub, 0.0);
        grow(&mut self.grid, g.grid_len());
        offsets(d, &g, &mut self.offs);
        starts(d, &g, layout, &mut self.starts);
        stage_ops(d, &g, rows.start, &mut self.ops);
        (self.key, self.geo) = (key, Some(g));
        g
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Rows `p.rows` of one plane into `y` (the plane's output origin).
///
/// # Safety
/// As [`super::depthwise::plane_rows`]; AVX-512F must be available. Only the
/// input rows the band reads are touched (masked loads inside each row).
pub(super) unsafe fn plane(p: &Plane, y: *mut f32, epi: &Epi, layout: StagedLayout) {
    if p.rows.is_empty() {
        return;
    }
    SCRATCH.with(|s| {
        let s = &mut *s.borrow_mut();
        let g = s.prepare(p.d, &p.rows, layout);
        // SAFETY: the buffers hold what `g` needs; the rest is the contract.
        unsafe {
            stage(p, &g, &s.ops, s.staged.as_mut_ptr());
            let grid = s.grid.as_mut_ptr();
            compute(s.staged.as_ptr(), &s.offs, p.w, &s.starts, grid);
            store(p, &g, grid, y, epi);
        }
    })
}

/// Whole planes `ts` (batch·c_out + channel) of `d` from the input at `x`
/// into the output at `y` (both the tensors' origins), each plane staged
/// one plane ahead of its computation (two staged buffers), so no load
/// waits on the stores that staged it; `layout`: `None` for the one with
/// fewer vectors.
///
/// # Safety
/// AVX-512F must be available; `x`, `weight`, `y` and the epilogue hold
/// the sizes `d` implies.
pub(super) unsafe fn planes(
    d: &Conv2dDesc,
    ts: std::ops::Range<usize>,
    x: *const f32,
    weight: &[f32],
    y: *mut f32,
    epi: &Epi,
    layout: Option<StagedLayout>,
) {
    let (oh, ow, kk) = (d.out_h(), d.out_w(), d.kh * d.kw);
    if ts.is_empty() || oh == 0 {
        return;
    }
    let layout = layout.unwrap_or_else(|| auto_layout(d, oh));
    let plane = |t: usize| Plane {
        d,
        x: x.wrapping_add(t * d.h * d.w),
        w: &weight[t % d.c_out * kk..][..kk],
        c: t % d.c_out,
        off: t * oh * ow,
        rows: 0..oh,
        zeros: &[],
        masks: &[],
    };
    SCRATCH.with(|s| {
        let s = &mut *s.borrow_mut();
        let g = s.prepare(d, &(0..oh), layout);
        let len = g.sh * g.sw * g.sub;
        let buf = s.staged.as_mut_ptr();
        let grid = s.grid.as_mut_ptr();
        // SAFETY: the buffers hold what `g` needs (two staged planes); the
        // rest is the contract.
        unsafe {
            stage(&plane(ts.start), &g, &s.ops, buf);
            for (i, t) in ts.clone().enumerate() {
                if t + 1 < ts.end {
                    stage(&plane(t + 1), &g, &s.ops, buf.add((i + 1) % 2 * len));
                }
                let p = plane(t);
                compute(buf.add(i % 2 * len), &s.offs, p.w, &s.starts, grid);
                store(&p, &g, grid, y.add(p.off), epi);
            }
        }
    })
}

/// The raw sums of one staged plane (taps unrolled for the common sizes).
#[target_feature(enable = "avx512f")]
unsafe fn compute(buf: *const f32, offs: &[usize], w: &[f32], starts: &[usize], grid: *mut f32) {
    match offs.len() {
        9 => vectors::<9>(buf, offs, w, starts, grid),
        25 => vectors::<25>(buf, offs, w, starts, grid),
        49 => vectors::<49>(buf, offs, w, starts, grid),
        3 => vectors::<3>(buf, offs, w, starts, grid),
        5 => vectors::<5>(buf, offs, w, starts, grid),
        7 => vectors::<7>(buf, offs, w, starts, grid),
        _ => vectors::<0>(buf, offs, w, starts, grid),
    }
}

fn grow(v: &mut Vec<f32>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
}

/// The staging of band `r0..` of `d`: for every in-image input row it reads
/// and every sub-image column phase, the vectors that copy its lanes.
fn stage_ops(d: &Conv2dDesc, g: &Geo, r0: usize, ops: &mut Vec<StageOp>) {
    ops.clear();
    let (w, pl) = (d.w as isize, d.pad_left as isize);
    for a in 0..g.sh {
        for i in 0..g.hph {
            let iy = (g.sh * r0 + a + g.sh * i).wrapping_sub(d.pad_top);
            if iy >= d.h {
                continue;
            }
            for b in 0..g.sw {
                let dst = (a * g.sw + b) * g.sub + i * g.wph;
                for i0 in (0..g.wph).step_by(16) {
                    let base = (b + g.sw * i0) as isize - pl;
                    let span = if g.sw == 1 { 16 } else { 32 };
                    ops.push(StageOp {
                        row: (iy * d.w) as isize,
                        base,
                        dst: dst + i0,
                        load: range_mask(-base, (w - base).min(span)),
                        store: lanes(g.wph - i0),
                    });
                }
            }
        }
    }
}

/// Copies the in-image rows the band reads into the sub-images at `buf`
/// (column strides above 2 element by element).
#[target_feature(enable = "avx512f")]
unsafe fn stage(p: &Plane, g: &Geo, ops: &[StageOp], buf: *mut f32) {
    match g.sw {
        1 => {
            for op in ops {
                let v =
                    _mm512_maskz_loadu_ps(op.load as u16, p.x.wrapping_offset(op.row + op.base));
                _mm512_mask_storeu_ps(buf.add(op.dst), op.store, v);
            }
        }
        2 => {
            let evens =
                _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            for op in ops {
                let s = p.x.wrapping_offset(op.row + op.base);
                let lo = _mm512_maskz_loadu_ps(op.load as u16, s);
                let hi = _mm512_maskz_loadu_ps((op.load >> 16) as u16, s.wrapping_add(16));
                let v = _mm512_permutex2var_ps(lo, evens, hi);
                _mm512_mask_storeu_ps(buf.add(op.dst), op.store, v);
            }
        }
        sw => {
            let w = p.d.w as isize;
            for op in ops {
                for e in 0..16 {
                    if op.store >> e & 1 == 1 {
                        let ix = op.base + (sw * e) as isize;
                        let inside = (0..w).contains(&ix);
                        *buf.add(op.dst + e) = if inside {
                            *p.x.offset(op.row + ix)
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
    }
}

/// Per tap `ky·kw + kx`: its load offset in the staged buffer (from a vector's start).
fn offsets(d: &Conv2dDesc, g: &Geo, offs: &mut Vec<usize>) {
    offs.clear();
    for ky in 0..d.kh {
        let (a, qy) = ((ky * d.dilation_h) % g.sh, ky * d.dilation_h / g.sh);
        for kx in 0..d.kw {
            let (b, qx) = ((kx * d.dilation_w) % g.sw, kx * d.dilation_w / g.sw);
            offs.push((a * g.sw + b) * g.sub + qy * g.wph + qx);
        }
    }
}

/// The grid positions (row · pitch + column) where output vectors start, increasing.
fn starts(d: &Conv2dDesc, g: &Geo, layout: StagedLayout, out: &mut Vec<usize>) {
    out.clear();
    match layout {
        StagedLayout::Grid => out.extend((0..g.nb * g.wph).step_by(16)),
        StagedLayout::Rows => {
            for j in 0..g.nb {
                out.extend((0..d.out_w()).step_by(16).map(|x| j * g.wph + x));
            }
        }
    }
}

/// Raw sums of the vectors at `starts` into `grid`: `T` taps (0: `offs.len()`).
/// Eight vectors at a time hide the FMA latency; the last few split their
/// taps over several partial sums instead. Starts increase, so a vector's
/// spill past its row is overwritten by the next row's own vectors.
#[target_feature(enable = "avx512f")]
unsafe fn vectors<const T: usize>(
    buf: *const f32,
    offs: &[usize],
    w: &[f32],
    starts: &[usize],
    grid: *mut f32,
) {
    let n = if T == 0 { offs.len() } else { T };
    let (offs, w) = (&offs[..n], &w[..n]);
    let mut rest = starts;
    while rest.len() >= 8 {
        block::<T, 8, 1>(buf, offs, w, &rest[..8], grid);
        rest = &rest[8..];
    }
    if rest.len() >= 4 {
        block::<T, 4, 2>(buf, offs, w, &rest[..4], grid);
        rest = &rest[4..];
    }
    if rest.len() >= 2 {
        block::<T, 2, 4>(buf, offs, w, &rest[..2], grid);
        rest = &rest[2..];
    }
    if !rest.is_empty() {
        block::<T, 1, 8>(buf, offs, w, rest, grid);
    }
}

/// `U` vectors at `s`, each summed over `P` partial accumulators (taps round robin).
/// (Index loops: constant bounds the compiler unrolls, keeping `acc` in registers.)
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn block<const T: usize, const U: usize, const P: usize>(
    buf: *const f32,
    offs: &[usize],
    w: &[f32],
    s: &[usize],
    grid: *mut f32,
) {
    let n = if T == 0 { offs.len() } else { T };
    let mut acc = [[_mm512_setzero_ps(); P]; U];
    // Taps in groups of P (one per partial sum, indices known at compile
    // time so the sums stay in registers), then the last few into sum 0.
    let mut t = 0;
    while t + P <= n {
        for q in 0..P {
            let p = buf.add(*offs.get_unchecked(t + q));
            let wv = _mm512_set1_ps(*w.get_unchecked(t + q));
            for u in 0..U {
                let v = _mm512_loadu_ps(p.add(*s.get_unchecked(u)));
                acc[u][q] = _mm512_fmadd_ps(wv, v, acc[u][q]);
            }
        }
        t += P;
    }
    for t in t..n {
        let (p, wv) = (
            buf.add(*offs.get_unchecked(t)),
            _mm512_set1_ps(*w.get_unchecked(t)),
        );
        for u in 0..U {
            let v = _mm512_loadu_ps(p.add(*s.get_unchecked(u)));
            acc[u][0] = _mm512_fmadd_ps(wv, v, acc[u][0]);
        }
    }
    for u in 0..U {
        let mut a = acc[u][0];
        for q in 1..P {
            a = _mm512_add_ps(a, acc[u][q]);
        }
        _mm512_storeu_ps(grid.add(*s.get_unchecked(u)), a);
    }
}

/// The band's rows from the raw grid into the output, with the epilogue.
#[target_feature(enable = "avx512f")]
unsafe fn store(p: &Plane, g: &Geo, grid: *const f32, y: *mut f32, epi: &Epi) {
    let ow = p.d.out_w();
    for (j, oy) in p.rows.clone().enumerate() {
        for ox0 in (0..ow).step_by(16) {
            let mask = lanes(ow - ox0);
            let v = _mm512_maskz_loadu_ps(mask, grid.add(j * g.wph + ox0));
            let r = epi.vec16(v, mask, p.c, 0, p.off + oy * ow + ox0);
            _mm512_mask_storeu_ps(y.add(oy * ow + ox0), mask, r);
        }
    }
}
