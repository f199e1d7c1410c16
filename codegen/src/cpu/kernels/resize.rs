//! Separable resize (nearest, linear, cubic; any rank) from per-axis taps
//! precomputed at build time (`kiln_ir::ops::resize::plan` gives them).
//!
//! Leading unchanged axes are planes. The work unit is one output row (a
//! plane and an index over the other outer axes): its input rows are
//! combined with the product of their outer-axis weights into a temporary
//! row (a row with a single unit weight is read in place), then each output
//! column gathers its last-axis taps from it: `y[ox] = Σ_j w_j[ox] ·
//! t[i_j[ox]] + e[ox]`, with the taps padded to a fixed count per column
//! (weight 0) and `e` the extrapolation value where a column takes it. An
//! output row that reads what the previous one read is a copy of it.
//! Threads split the units; the AVX-512 path lives in
//! [`super::resize_avx512`].

use super::par::{split, tasks_for, SendPtr};
use super::{invalid, need};
use crate::CodegenError;

/// One axis: `None` when unchanged, else per output index its (input index,
/// weight) taps, or `None` where it takes the extrapolation value.
pub type ResizeAxis = Option<Vec<Option<Vec<(usize, f32)>>>>;

/// A resize of a tensor of shape `input`, one [`ResizeAxis`] per axis.
#[derive(Clone, Debug, PartialEq)]
pub struct ResizeDesc {
    pub input: Vec<usize>,
    pub axes: Vec<ResizeAxis>,
    pub extrapolation: f32,
}

/// Tuning knobs of [`Resize`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ResizeTuning {
    /// GEMM flops one tap of one output weighs, for the thread split.
    pub flops_per_tap: usize,
}

impl Default for ResizeTuning {
    fn default() -> Self {
        ResizeTuning { flops_per_tap: 8 }
    }
}

/// Input rows of one output row: (flat outer index, weight), or `None` for
/// an extrapolated row.
type RowTaps = Option<Vec<(usize, f32)>>;

/// A resize kernel with its tables built (see the module doc).
#[derive(Clone, Debug)]
pub struct Resize {
    planes: usize,
    in_rows: usize,
    pub(super) in_w: usize,
    pub(super) ow: usize,
    rows: Vec<RowTaps>,
    /// Whether output row `r` has the same input rows and weights as row
    /// `r - 1` (nearest upsampling): it is then a copy of that row.
    repeat: Vec<bool>,
    /// Taps per output column.
    pub(super) ntaps: usize,
    /// `idx[j·ow_pad + ox]`, `wt[..]`: tap `j` of column `ox` (padded to 16).
    pub(super) idx: Vec<i32>,
    pub(super) wt: Vec<f32>,
    pub(super) add: Vec<f32>,
    pub(super) ow_pad: usize,
    /// Per tap `j` and block of 16 columns (`j·ow_pad/16 + b`): the first
    /// input column its live taps read, when every block's taps lie within
    /// 32 columns of it (then `idx` holds offsets from it and the AVX-512
    /// path permutes two loaded vectors instead of gathering); else empty.
    pub(super) window: Vec<usize>,
    /// With [`Self::window`]: `idx` as offsets from the block's window.
    pub(super) local: Vec<i32>,
    /// Per tap and block (as [`Self::window`]): the lanes inside the row
    /// whose weight is not zero (computed once: a compare per tap and block
    /// cost about as much as the tap's multiply-add).
    pub(super) live: Vec<u16>,
    extrapolation: f32,
    tuning: ResizeTuning,
}

/// The taps of an unchanged axis of length `n`.
fn unit_taps(n: usize) -> Vec<Option<Vec<(usize, f32)>>> {
    (0..n).map(|i| Some(vec![(i, 1.0)])).collect()
}

fn check(d: &ResizeDesc) -> Result<(), CodegenError> {
    let bad = |r: String| Err(invalid("resize", r));
    if d.input.is_empty() || d.axes.len() != d.input.len() {
        return bad(format!("{} axes for input {:?}", d.axes.len(), d.input));
    }
    for (a, ax) in d.axes.iter().enumerate() {
        let Some(ax) = ax else { continue };
        let out_of_range = ax.iter().flatten().flatten().any(|&(i, _)| i >= d.input[a]);
        if out_of_range || (d.input[a] == 0 && !ax.is_empty()) {
            return bad(format!("axis {a}: a tap reads outside {}", d.input[a]));
        }
    }
    Ok(())
}

/// Outer rows: the product of the taps of axes `from..last`.
fn outer_rows(d: &ResizeDesc, from: usize) -> Vec<RowTaps> {
    let mut rows: Vec<RowTaps> = vec![Some(vec![(0, 1.0)])];
    for a in from..d.input.len() - 1 {
        let taps = d.axes[a].clone().unwrap_or_else(|| unit_taps(d.input[a]));
        let mut next = Vec::with_capacity(rows.len() * taps.len());
        for prev in &rows {
            for t in &taps {
                next.push(match (prev, t) {
                    (Some(p), Some(t)) => Some(
                        p.iter()
                            .flat_map(|&(i, w)| {
                                t.iter().map(move |&(j, v)| (i * d.input[a] + j, w * v))
                            })
                            .collect(),
                    ),
                    _ => None,
                });
            }
        }
        rows = next;
    }
    rows
}

/// The windows of [`Resize::window`] and the lanes' offsets into them
/// (dead lanes, of weight 0, read offset 0), or none if some block's live
/// taps span 32 input columns or more.
fn windows(idx: &[i32], wt: &[f32]) -> (Vec<usize>, Vec<i32>) {
    let mut starts = Vec::with_capacity(idx.len() / 16);
    let mut local = vec![0i32; idx.len()];
    for (b, (ib, wb)) in idx.chunks_exact(16).zip(wt.chunks_exact(16)).enumerate() {
        let live = || {
            ib.iter()
                .zip(wb)
                .filter(|(_, &w)| w != 0.0)
                .map(|(&i, _)| i)
        };
        let (lo, hi) = (live().min().unwrap_or(0), live().max().unwrap_or(0));
        if hi - lo >= 32 {
            return (Vec::new(), Vec::new());
        }
        starts.push(lo as usize);
        for (l, (&i, &w)) in local[b * 16..].iter_mut().zip(ib.iter().zip(wb)) {
            *l = if w != 0.0 { i - lo } else { 0 };
        }
    }
    (starts, local)
}

/// `repeat[r]`: row `r` reads what row `r - 1` reads.
fn repeats(rows: &[RowTaps]) -> Vec<bool> {
    (0..rows.len())
        .map(|r| r > 0 && rows[r] == rows[r - 1])
        .collect()
}

impl Resize {
    /// Builds the row and column tables of `d`.
    pub fn new(d: &ResizeDesc, tuning: ResizeTuning) -> Result<Resize, CodegenError> {
        check(d)?;
        let last = d.input.len() - 1;
        let from = d.axes[..last].iter().take_while(|a| a.is_none()).count();
        let cols = d.axes[last]
            .clone()
            .unwrap_or_else(|| unit_taps(d.input[last]));
        let ow = cols.len();
        let ow_pad = ow.div_ceil(16) * 16;
        let ntaps = cols
            .iter()
            .flatten()
            .map(Vec::len)
            .max()
            .unwrap_or(0)
            .max(1);
        let (mut idx, mut wt) = (vec![0i32; ntaps * ow_pad], vec![0f32; ntaps * ow_pad]);
        // (`idx` and `wt` are filled below; `windows` reads them after.)
        let mut add = vec![0f32; ow_pad];
        for (ox, c) in cols.iter().enumerate() {
            match c {
                None => add[ox] = d.extrapolation,
                Some(t) => {
                    for (j, &(i, w)) in t.iter().enumerate() {
                        idx[j * ow_pad + ox] = i as i32;
                        wt[j * ow_pad + ox] = w;
                    }
                }
            }
        }
        if d.input[last] > i32::MAX as usize {
            return Err(invalid("resize", "rows longer than i32::MAX".to_string()));
        }
        let rows = outer_rows(d, from);
        let (window, local) = windows(&idx, &wt);
        let live = wt
            .chunks(16)
            .enumerate()
            .map(|(b, w)| {
                let ox = (b * 16) % ow_pad;
                let nonzero = w
                    .iter()
                    .enumerate()
                    .filter(|(_, &v)| v != 0.0)
                    .fold(0u16, |m, (l, _)| m | 1 << l);
                nonzero & super::epilogue::lanes(ow.saturating_sub(ox))
            })
            .collect();
        Ok(Resize {
            planes: d.input[..from].iter().product(),
            in_rows: d.input[from..last].iter().product(),
            in_w: d.input[last],
            ow,
            repeat: repeats(&rows),
            rows,
            window,
            local,
            live,
            ntaps,
            idx,
            wt,
            add,
            ow_pad,
            extrapolation: d.extrapolation,
            tuning,
        })
    }

    /// Input and output element counts.
    pub fn sizes(&self) -> (usize, usize) {
        let plane = self.in_rows * self.in_w;
        (self.planes * plane, self.planes * self.rows.len() * self.ow)
    }

    /// Resizes `x` into `y` on up to `threads` tasks.
    pub fn run(&self, x: &[f32], y: &mut [f32], threads: usize) -> Result<(), CodegenError> {
        if threads == 0 {
            return Err(CodegenError::ZeroThreads);
        }
        let (ni, no) = self.sizes();
        need("x", x.len(), ni)?;
        need("y", y.len(), no)?;
        let units = self.planes * self.rows.len();
        let flops = no * (self.ntaps + 2) * self.tuning.flops_per_tap;
        let out = SendPtr(y.as_mut_ptr());
        let simd = super::use_avx512();
        let plane = self.in_rows * self.in_w;
        split(units, tasks_for(threads, flops), |range| {
            let mut tmp = vec![0f32; self.in_w.max(1)];
            let start = range.start;
            for u in range {
                let (p, r) = (u / self.rows.len(), u % self.rows.len());
                let xp = &x[p * plane..][..plane];
                let yr = out.get().wrapping_add(u * self.ow);
                if self.repeat[r] && u > start {
                    // SAFETY: rows u - 1 and u are this task's, distinct, inside `y`.
                    unsafe { std::ptr::copy_nonoverlapping(yr.sub(self.ow), yr, self.ow) };
                    continue;
                }
                // SAFETY: output row u belongs to this task only; `need` proved it exists.
                let yr = unsafe { std::slice::from_raw_parts_mut(yr, self.ow) };
                let t = self.combine(xp, &self.rows[r], &mut tmp, simd);
                self.columns(t, yr, simd);
            }
        });
        Ok(())
    }

    /// The weighted sum of an output row's input rows (in place for one
    /// unit-weight row).
    fn combine<'a>(
        &self,
        xp: &'a [f32],
        taps: &RowTaps,
        tmp: &'a mut [f32],
        simd: bool,
    ) -> &'a [f32] {
        let w = self.in_w;
        let Some(taps) = taps else {
            tmp.fill(self.extrapolation);
            return tmp;
        };
        if let [(i, 1.0)] = taps[..] {
            return &xp[i * w..][..w];
        }
        if taps.is_empty() {
            tmp.fill(0.0);
        }
        for (n, &(i, c)) in taps.iter().enumerate() {
            let row = &xp[i * w..][..w];
            #[cfg(target_arch = "x86_64")]
            if simd {
                // SAFETY: AVX-512F is available; `row` and `tmp` are `w` long.
                unsafe { super::resize_avx512::axpy(c, row, tmp, n == 0) };
                continue;
            }
            let _ = simd;
            match n {
                0 => tmp.iter_mut().zip(row).for_each(|(t, &v)| *t = c * v),
                _ => tmp.iter_mut().zip(row).for_each(|(t, &v)| *t += c * v),
            }
        }
        tmp
    }

    /// Output columns from the combined row `t`.
    fn columns(&self, t: &[f32], y: &mut [f32], simd: bool) {
        #[cfg(target_arch = "x86_64")]
        if simd {
            // SAFETY: AVX-512F is available; every index is < `t.len()`.
            return unsafe { super::resize_avx512::columns(self, t, y) };
        }
        let _ = simd;
        for (ox, v) in y.iter_mut().enumerate() {
            let mut s = 0.0;
            for j in 0..self.ntaps {
                let k = j * self.ow_pad + ox;
                if self.wt[k] != 0.0 {
                    s += self.wt[k] * t[self.idx[k] as usize];
                }
            }
            *v = s + self.add[ox];
        }
    }
}
