//! Window pooling over NCHW-style f32 tensors of any spatial rank: max,
//! average and Lp pools with any kernel, strides, dilations, asymmetric pads
//! and `ceil_mode` (the geometry comes in a [`PoolDesc`], as
//! `kiln_ir::ops::conv::window` computes it).
//!
//! The work unit is one output row (a plane and an index over the outer
//! spatial dims); the last spatial axis is the vectorised one. Each input row
//! the unit's window reads is staged once into a slot that holds it padded
//! (with -inf for max, 0 for sums) and split into its `stride` phases: tap
//! `kx` of output column `ox` then reads entry `ox + (kx·dil)/s` of phase
//! `(kx·dil) % s`, a plain contiguous load with no bounds checks. Padding rows
//! of the outer dims are simply not read. Averages divide by a per-row and a
//! per-column count (the window's count is their product). Threads split the
//! units. The AVX-512 path lives in [`super::pool_avx512`]; the portable
//! path here runs the same staging and loops in scalar code.
//!
//! With AVX-512, strides ≤ 2 and enough planes, the unit is a whole plane
//! and the window is separated: every input row is staged once and reduced
//! over the last axis's taps into a row of partial results, and each output
//! row then reduces the partial rows its window reads (a 3×3 window costs
//! 3 + 3 vector operations per output vector instead of 9, and no row is
//! staged twice).

use super::par::{split, tasks_for, SendPtr};
use super::{invalid, need};
use crate::CodegenError;

/// What a window reduces to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PoolKind {
    /// The maximum (NaN never selected); an empty window gives -inf.
    Max,
    /// The mean; `count_include_pad` divides by the window positions inside
    /// the explicit padding, otherwise by the input elements read.
    Average { count_include_pad: bool },
    /// `(Σ |x|^p)^(1/p)`, `p > 0`.
    Lp { p: f32 },
}

/// A pooling's geometry: `planes` (batch × channels) planes of spatial shape
/// `input`, and per spatial dim the kernel, strides, dilations, the padding
/// before (`begin`) and after (`end`), and the output size `out`.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolDesc {
    pub kind: PoolKind,
    pub planes: usize,
    pub input: Vec<usize>,
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub begin: Vec<usize>,
    pub end: Vec<usize>,
    pub out: Vec<usize>,
}

/// Tuning knobs of [`Pool`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoolTuning {
    /// How many GEMM flops one window tap of one output weighs, for the
    /// thread split (pooling is memory-bound: one load per compare or add).
    pub flops_per_tap: usize,
    /// Most bytes of one plane's row reductions for the plane schedule
    /// (AVX-512, strides ≤ 2; see [`Pool::run`]); 0 always runs by rows.
    pub plane_bytes: usize,
    /// Max and average pools with last-axis stride ≤ 2 run on the direct
    /// schedule ([`super::pool_direct`], AVX-512) when set.
    pub direct: bool,
    /// Direct schedule on several threads: each task takes a band of output
    /// rows of every plane (the input rows a producer that split its rows
    /// the same way left in this core's cache) instead of whole planes.
    /// Off by default: GoogLeNet's 13 pools at 2 threads summed 0.74-0.94 ms
    /// with bands and 0.72-0.79 ms without, within this machine's noise
    /// (the `pool` family's `bands` knob lets the tuner decide).
    pub bands: bool,
}

impl Default for PoolTuning {
    fn default() -> Self {
        PoolTuning {
            flops_per_tap: 8,
            plane_bytes: 256 << 10,
            direct: true,
            bands: false,
        }
    }
}

/// A pooling kernel with its index tables built (see the module doc).
#[derive(Clone, Debug)]
pub struct Pool {
    pub(super) kind: PoolKind,
    planes: usize,
    in_plane: usize,
    in_w: usize,
    /// Input rows per plane (the product of the outer spatial dims).
    in_rows: usize,
    /// Output columns (last axis) and output rows per plane.
    pub(super) ow: usize,
    out_rows: usize,
    pub(super) stride: usize,
    pub(super) pad: usize,
    /// Length of one phase of a staged row (a multiple of 16, covering every
    /// tap of every output column rounded up to a vector).
    pub(super) half: usize,
    /// Offset of each last-axis tap into a staged row.
    pub(super) taps: Vec<usize>,
    /// Per output row, the input rows (flat over the outer dims) it reads.
    rows: Vec<Vec<usize>>,
    /// Per output row, 1 / its outer-dims count (averages).
    row_scale: Vec<f32>,
    /// Per output column (padded to `half`), 1 / its last-axis count.
    pub(super) col_scale: Vec<f32>,
    max_rows: usize,
    /// The direct schedule's tap picks and vectors per block, where it applies.
    #[cfg(target_arch = "x86_64")]
    direct: Option<super::pool_direct::Direct>,
    tuning: PoolTuning,
}

/// Per dim and output index: the input coordinates read, and how many
/// window positions lie inside the explicit padding.
fn axis_taps(d: &PoolDesc, a: usize) -> Vec<(Vec<usize>, usize)> {
    let (n, b) = (d.input[a] as isize, d.begin[a] as isize);
    let hi = n + d.end[a] as isize;
    (0..d.out[a])
        .map(|o| {
            let start = (o * d.strides[a]) as isize - b;
            let pos: Vec<isize> = (0..d.kernel[a])
                .map(|k| start + (k * d.dilations[a]) as isize)
                .collect();
            let incl = pos.iter().filter(|&&i| i >= -b && i < hi).count();
            let valid = pos.iter().filter(|&&i| i >= 0 && i < n);
            (valid.map(|&i| i as usize).collect(), incl)
        })
        .collect()
}

fn check(d: &PoolDesc) -> Result<(), CodegenError> {
    let n = d.input.len();
    let bad = |r: String| Err(invalid("pool", r));
    if n == 0 {
        return bad("needs at least one spatial dim".into());
    }
    for (name, v) in [
        ("kernel", &d.kernel),
        ("strides", &d.strides),
        ("dilations", &d.dilations),
        ("begin", &d.begin),
        ("end", &d.end),
        ("out", &d.out),
    ] {
        if v.len() != n {
            return bad(format!(
                "{name} has {} values for {n} spatial dims",
                v.len()
            ));
        }
    }
    let positive = |v: &[usize]| v.iter().all(|&x| x >= 1);
    if !positive(&d.kernel) || !positive(&d.strides) || !positive(&d.dilations) {
        return bad("kernel, strides and dilations must be >= 1".into());
    }
    if let PoolKind::Lp { p } = d.kind {
        if p.is_nan() || p <= 0.0 {
            return bad(format!("p must be positive, got {p}"));
        }
    }
    Ok(())
}

fn scale(count: usize, kind: PoolKind) -> f32 {
    match kind {
        PoolKind::Average { .. } => 1.0 / count as f32,
        _ => 1.0,
    }
}

impl Pool {
    /// Builds the index tables of `d`.
    pub fn new(d: &PoolDesc, tuning: PoolTuning) -> Result<Pool, CodegenError> {
        check(d)?;
        let n = d.input.len();
        let last = n - 1;
        let incl = matches!(
            d.kind,
            PoolKind::Average {
                count_include_pad: true
            }
        );
        let count = |(v, i): &(Vec<usize>, usize)| if incl { *i } else { v.len() };
        // Outer dims: the cartesian product of each dim's taps, row-major.
        let (mut rows, mut row_count) = (vec![vec![0usize]], vec![1usize]);
        for a in 0..last {
            let taps = axis_taps(d, a);
            let (mut r2, mut c2) = (vec![], vec![]);
            for (prev, &pc) in rows.iter().zip(&row_count) {
                for t in &taps {
                    r2.push(
                        prev.iter()
                            .flat_map(|&p| t.0.iter().map(move |&i| p * d.input[a] + i))
                            .collect(),
                    );
                    c2.push(pc * count(t));
                }
            }
            (rows, row_count) = (r2, c2);
        }
        let (s, dil, k, ow) = (
            d.strides[last],
            d.dilations[last],
            d.kernel[last],
            d.out[last],
        );
        let reach = ((k - 1) * dil) / s;
        let half = (ow.div_ceil(16) * 16 + reach).div_ceil(16) * 16;
        let mut col_scale: Vec<f32> = axis_taps(d, last)
            .iter()
            .map(|t| scale(count(t), d.kind))
            .collect();
        col_scale.resize(half, 1.0);
        #[cfg(target_arch = "x86_64")]
        let direct = match d.kind {
            PoolKind::Lp { .. } => None,
            _ => {
                let offsets: Vec<usize> = (0..k).map(|t| t * dil).collect();
                super::pool_direct::Direct::new(&offsets, s, d.input[last], d.begin[last], ow)
            }
        };
        Ok(Pool {
            kind: d.kind,
            planes: d.planes,
            in_plane: d.input.iter().product(),
            in_w: d.input[last],
            in_rows: d.input[..last].iter().product(),
            ow,
            out_rows: rows.len(),
            stride: s,
            pad: d.begin[last],
            half,
            taps: (0..k)
                .map(|t| (t * dil) % s * half + (t * dil) / s)
                .collect(),
            max_rows: rows.iter().map(Vec::len).max().unwrap_or(0),
            row_scale: row_count.iter().map(|&c| scale(c, d.kind)).collect(),
            rows,
            col_scale,
            #[cfg(target_arch = "x86_64")]
            direct,
            tuning,
        })
    }

    /// Input and output element counts.
    pub fn sizes(&self) -> (usize, usize) {
        (
            self.planes * self.in_plane,
            self.planes * self.out_rows * self.ow,
        )
    }

    /// What a padding position reads as (after the Lp transform).
    pub(super) fn pad_value(&self) -> f32 {
        match self.kind {
            PoolKind::Max => f32::NEG_INFINITY,
            _ => 0.0,
        }
    }

    /// Pools `x` into `y` on up to `threads` tasks.
    pub fn run(&self, x: &[f32], y: &mut [f32], threads: usize) -> Result<(), CodegenError> {
        if threads == 0 {
            return Err(CodegenError::ZeroThreads);
        }
        let (ni, no) = self.sizes();
        need("x", x.len(), ni)?;
        need("y", y.len(), no)?;
        let units = self.planes * self.out_rows;
        let taps: usize = self.rows.iter().map(Vec::len).sum::<usize>() * self.taps.len();
        let flops = self.planes * taps * self.ow * self.tuning.flops_per_tap;
        let out = SendPtr(y.as_mut_ptr());
        let simd = super::use_avx512();
        let tasks = tasks_for(threads, flops);
        #[cfg(target_arch = "x86_64")]
        if let (true, true, Some(direct)) = (simd, self.tuning.direct, &self.direct) {
            use super::pool_direct::Units;
            let band = self.tuning.bands && tasks > 1 && self.out_rows >= tasks;
            let items = if band { self.out_rows } else { units };
            split(items, tasks, |range| {
                let u = match band {
                    true => Units::Band(range),
                    false => Units::Flat(range),
                };
                // SAFETY: AVX-512F is available; `need` proved both sizes; the
                // output rows of `u` belong to this task only.
                unsafe { super::pool_direct::units(self, x, u, out.get(), direct) }
            });
            return Ok(());
        }
        #[cfg(target_arch = "x86_64")]
        if simd && self.plane_schedule(tasks) {
            // SAFETY: AVX-512F is available; `need` proved both sizes.
            unsafe { self.run_planes(x, out, tasks) };
            return Ok(());
        }
        split(units, tasks, |range| {
            let mut staged = Staged::new(self);
            for u in range {
                let (p, r) = (u / self.out_rows, u % self.out_rows);
                let plane = &x[p * self.in_plane..][..self.in_plane];
                staged.fill(self, p, plane, &self.rows[r], simd);
                // SAFETY: output row u belongs to this task only; `need` proved it exists.
                let yr =
                    unsafe { std::slice::from_raw_parts_mut(out.get().add(u * self.ow), self.ow) };
                self.reduce(&staged, self.row_scale[r], yr, simd);
            }
        });
        Ok(())
    }

    /// Whether whole planes (separated window) are the unit: max or
    /// average, strides ≤ 2, at least 4 planes per task, and a plane's staged
    /// and partial rows within `plane_bytes`.
    fn plane_schedule(&self, tasks: usize) -> bool {
        let per_row = self.ow.div_ceil(16) * 16 + self.stride * self.half;
        self.stride <= 2
            && !matches!(self.kind, PoolKind::Lp { .. })
            && self.planes >= 4 * tasks
            && self.in_rows * per_row * 4 <= self.tuning.plane_bytes
    }

    /// The plane schedule (see the module doc).
    ///
    /// # Safety
    /// AVX-512F must be available; `x` and `y` hold [`Self::sizes`].
    #[cfg(target_arch = "x86_64")]
    unsafe fn run_planes(&self, x: &[f32], y: SendPtr<f32>, tasks: usize) {
        let pitch = self.ow.div_ceil(16) * 16;
        split(self.planes, tasks, |range| {
            let mut slots = vec![0f32; self.in_rows * self.stride * self.half];
            let mut part = vec![0f32; self.in_rows * pitch];
            for p in range {
                let plane = &x[p * self.in_plane..][..self.in_plane];
                let n = self.out_rows * self.ow;
                // SAFETY: plane p's output rows belong to this task only.
                let yp = unsafe { std::slice::from_raw_parts_mut(y.get().add(p * n), n) };
                // SAFETY: AVX-512F; the buffers have the sizes `plane` expects.
                unsafe { super::pool_avx512::plane(self, plane, &mut slots, &mut part, yp) };
            }
        });
    }

    /// The input rows each output row reads and its scale, per output row.
    #[cfg(target_arch = "x86_64")]
    pub(super) fn row_windows(&self) -> impl Iterator<Item = (&[usize], f32)> {
        self.rows
            .iter()
            .map(Vec::as_slice)
            .zip(self.row_scale.iter().copied())
    }

    /// Planes and output rows per plane.
    #[cfg(target_arch = "x86_64")]
    pub(super) fn grid(&self) -> (usize, usize) {
        (self.planes, self.out_rows)
    }

    /// The input plane, input rows and row scale of output row `u` (flat
    /// over planes and output rows).
    #[cfg(target_arch = "x86_64")]
    #[inline]
    pub(super) fn unit<'a>(&'a self, x: &'a [f32], u: usize) -> (&'a [f32], &'a [usize], f32) {
        let (p, r) = (u / self.out_rows, u % self.out_rows);
        let plane = &x[p * self.in_plane..][..self.in_plane];
        (plane, &self.rows[r], self.row_scale[r])
    }

    /// Input columns (last axis).
    #[cfg(target_arch = "x86_64")]
    pub(super) fn in_w(&self) -> usize {
        self.in_w
    }

    /// Input rows per plane and their length.
    #[cfg(target_arch = "x86_64")]
    pub(super) fn in_rows(&self) -> (usize, usize) {
        (self.in_rows, self.in_w)
    }

    /// One output row from its staged input rows.
    fn reduce(&self, st: &Staged, row_scale: f32, y: &mut [f32], simd: bool) {
        #[cfg(target_arch = "x86_64")]
        if simd {
            // SAFETY: AVX-512F is available; `st.order` names whole slots of `st.buf`.
            unsafe { super::pool_avx512::reduce_row(self, &st.buf, &st.order, row_scale, y) };
            return self.finish_lp(y);
        }
        let _ = simd;
        self.reduce_row_portable(&st.buf, &st.order, row_scale, y);
        self.finish_lp(y);
    }

    /// Stages one input row into `slot` (phases, padding, Lp transform).
    fn stage(&self, row: &[f32], slot: &mut [f32], simd: bool) {
        #[cfg(target_arch = "x86_64")]
        if simd && self.stride <= 2 {
            // SAFETY: AVX-512F is available; `slot` is `stride · half` long.
            unsafe { super::pool_avx512::stage(self, row, slot) };
        } else {
            self.stage_portable(row, slot);
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = simd;
            self.stage_portable(row, slot);
        }
        if let PoolKind::Lp { p } = self.kind {
            lp_transform(slot, p);
        }
    }

    fn stage_portable(&self, row: &[f32], slot: &mut [f32]) {
        let pv = self.pad_value();
        for (ph, dst) in slot.chunks_exact_mut(self.half).enumerate() {
            for (j, v) in dst.iter_mut().enumerate() {
                let c = (j * self.stride + ph).wrapping_sub(self.pad);
                *v = row.get(c).copied().unwrap_or(pv);
            }
        }
    }

    fn reduce_row_portable(&self, buf: &[f32], order: &[usize], row_scale: f32, y: &mut [f32]) {
        let slot_len = self.stride * self.half;
        let max = self.kind == PoolKind::Max;
        for (ox, out) in y.iter_mut().enumerate() {
            let mut acc = if max { f32::NEG_INFINITY } else { 0.0 };
            for &s in order {
                let slot = &buf[s * slot_len..][..slot_len];
                for &t in &self.taps {
                    let v = slot[t + ox];
                    if !max {
                        acc += v;
                    } else if v > acc {
                        acc = v;
                    }
                }
            }
            *out = if max {
                acc
            } else {
                acc * row_scale * self.col_scale[ox]
            };
        }
    }

    /// `s^(1/p)` of the sums of an Lp pool's output row (p = 1 is a no-op).
    fn finish_lp(&self, y: &mut [f32]) {
        let PoolKind::Lp { p } = self.kind else {
            return;
        };
        if p == 2.0 {
            y.iter_mut().for_each(|v| *v = v.sqrt());
        } else if p != 1.0 {
            y.iter_mut().for_each(|v| *v = v.powf(1.0 / p));
        }
    }
}

/// A task's staged input rows: a few slots, each tagged with the (plane,
/// row) it holds, so consecutive output rows re-use the rows they share.
struct Staged {
    buf: Vec<f32>,
    tags: Vec<usize>,
    /// The slot of each input row of the current output row, in window order.
    order: Vec<usize>,
}

impl Staged {
    fn new(p: &Pool) -> Staged {
        let slots = p.max_rows.max(1);
        Staged {
            buf: vec![0.0; slots * p.stride * p.half],
            tags: vec![usize::MAX; slots],
            order: Vec::with_capacity(slots),
        }
    }

    /// Stages the input `rows` of `plane` (number `pi`) not already held.
    fn fill(&mut self, p: &Pool, pi: usize, plane: &[f32], rows: &[usize], simd: bool) {
        let key = |ir: usize| pi * p.in_rows + ir;
        self.order.clear();
        for &ir in rows {
            let hit = self.tags.iter().position(|&t| t == key(ir));
            self.order.push(hit.unwrap_or(usize::MAX));
        }
        let slot_len = p.stride * p.half;
        for (i, &ir) in rows.iter().enumerate() {
            if self.order[i] != usize::MAX {
                continue;
            }
            // A free slot exists: there are as many slots as the most rows a window reads.
            let s = (0..self.tags.len())
                .find(|s| !self.order.contains(s))
                .unwrap_or(0);
            self.tags[s] = key(ir);
            self.order[i] = s;
            let row = &plane[ir * p.in_w..][..p.in_w];
            p.stage(row, &mut self.buf[s * slot_len..][..slot_len], simd);
        }
    }
}

/// `|x|^p` in place (padding zeros stay zero).
fn lp_transform(slot: &mut [f32], p: f32) {
    if p == 2.0 {
        slot.iter_mut().for_each(|v| *v *= *v);
    } else if p == 1.0 {
        slot.iter_mut().for_each(|v| *v = v.abs());
    } else {
        slot.iter_mut().for_each(|v| *v = v.abs().powf(p));
    }
}
