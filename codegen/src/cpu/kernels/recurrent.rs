//! [`Recurrent`]: ONNX RNN, GRU and LSTM layers in f32.
//!
//! One GEMM projects the inputs of every time step and both directions at once
//! (`X·W^T + bias`, `W` of all directions stacked, `Wb + Rb` folded into the
//! bias except GRU's `Rb_h` under `linear_before_reset`); then each time step
//! is a small GEMM `H_{t-1}·R^T` over the batch (`R` prepacked) followed by a
//! fused cell pass over the hidden units ([`super::recurrent_cell`]). GRU
//! without `linear_before_reset` needs `r ⊙ H_{t-1}` before its `h` gate, so
//! it runs a second GEMM with `R_h` between two cell passes.
//!
//! Weights are prepacked into [`PackedMatmul`] panels when `prepack` is set
//! (constant weights: packed once at build time); otherwise they are kept
//! plain and multiplied transposed by [`matmul_f32`] (weights that are
//! computed each run, packed per run would cost more than they save).

use super::epilogue::{Activation, Epilogue};
use super::matmul::{matmul_f32, MatmulDesc};
use super::packed::PackedMatmul;
use super::par::{split, SendPtr};
pub use super::recurrent_cell::RecurrentAct;
use super::recurrent_cell::{run_pass, Pass, State, Step};
use super::{invalid, need};
use crate::CodegenError;

/// Which recurrent layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecurrentCell {
    Rnn,
    Gru { linear_before_reset: bool },
    Lstm { input_forget: bool },
}

impl RecurrentCell {
    /// Gates per hidden unit.
    pub fn gates(self) -> usize {
        match self {
            RecurrentCell::Rnn => 1,
            RecurrentCell::Gru { .. } => 3,
            RecurrentCell::Lstm { .. } => 4,
        }
    }
    /// Activations per direction.
    pub fn acts(self) -> usize {
        match self {
            RecurrentCell::Rnn => 1,
            RecurrentCell::Gru { .. } => 2,
            RecurrentCell::Lstm { .. } => 3,
        }
    }
}

/// The shape and attributes of one layer (ONNX semantics).
#[derive(Debug, Clone, PartialEq)]
pub struct RecurrentDesc {
    pub cell: RecurrentCell,
    pub seq: usize,
    pub batch: usize,
    pub input: usize,
    pub hidden: usize,
    /// 1 or 2 (bidirectional).
    pub dirs: usize,
    /// With one direction: run it backwards in time.
    pub reverse: bool,
    /// ONNX `layout = 1`: `X` is `[batch, seq, input]`, `Y` `[batch, seq,
    /// dirs, hidden]`, states `[batch, dirs, hidden]`.
    pub batch_major: bool,
    pub clip: Option<f32>,
    /// `cell.acts()` activations per direction, direction 0 first.
    pub acts: Vec<RecurrentAct>,
    /// Steps per batch entry (`None`: all `seq`).
    pub seq_lens: Option<Vec<usize>>,
}

/// Machine-dependent choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecurrentKnobs {
    /// Prepack `W` and `R` into GEMM panels (for constant weights).
    pub prepack: bool,
    /// Per-step `H·R^T` multiply-adds (batch 1) from which `R` is split into
    /// `step_parts` column blocks that threads share each step (below,
    /// waking threads costs more than a step saves). Default 2^19 (`R` of
    /// 2 MiB, one core's L2 on the 2-core Xeon measured with
    /// `codegen/benches/recurrent.rs`: a GRU with hidden 512 (`R` 3 MiB)
    /// went from 1.72 to 0.41 ms (min) split on 2 threads, while hidden 128
    /// and 256 got slower split).
    pub step_par_min_macs: usize,
    /// Column blocks of a split `R` (threads take whole blocks).
    pub step_parts: usize,
}

impl Default for RecurrentKnobs {
    fn default() -> Self {
        RecurrentKnobs {
            prepack: true,
            step_par_min_macs: 1 << 19,
            step_parts: 4,
        }
    }
}

/// The weights in ONNX layout, per direction: `W` `[g·hidden, input]`, `R`
/// `[g·hidden, hidden]`, `B` `[2·g·hidden]` (`Wb` then `Rb`), `P` `[3·hidden]`.
pub struct RecurrentWeights<'a> {
    pub w: &'a [f32],
    pub r: &'a [f32],
    pub b: Option<&'a [f32]>,
    pub p: Option<&'a [f32]>,
}

/// A run's operands; absent outputs are not written.
pub struct RecurrentIo<'a> {
    pub x: &'a [f32],
    pub h0: Option<&'a [f32]>,
    pub c0: Option<&'a [f32]>,
    pub y: Option<&'a mut [f32]>,
    pub y_h: Option<&'a mut [f32]>,
    pub y_c: Option<&'a mut [f32]>,
}

/// `C = A·B^T (+ bias)` for a fixed n×k `B`.
#[derive(Debug, Clone)]
enum Mat {
    Packed(PackedMatmul),
    Plain {
        bt: Vec<f32>,
        n: usize,
        k: usize,
        bias: Option<Vec<f32>>,
    },
}

impl Mat {
    fn new(
        bt: &[f32],
        n: usize,
        k: usize,
        bias: Option<Vec<f32>>,
        pack: bool,
    ) -> Result<Mat, CodegenError> {
        Ok(if pack {
            Mat::Packed(PackedMatmul::new(
                k,
                n,
                bt,
                true,
                bias.as_deref(),
                Activation::None,
            )?)
        } else {
            Mat::Plain {
                bt: bt[..n * k].to_vec(),
                n,
                k,
                bias,
            }
        })
    }

    fn run(&self, a: &[f32], m: usize, c: &mut [f32], threads: usize) -> Result<(), CodegenError> {
        match self {
            Mat::Packed(p) => p.run(a, m, None, c, threads),
            Mat::Plain { bt, n, k, bias } => {
                let d = MatmulDesc {
                    batch: 1,
                    m,
                    n: *n,
                    k: *k,
                    b_transposed: true,
                    ..MatmulDesc::default()
                };
                let epi = Epilogue {
                    bias: bias.as_deref(),
                    residual: None,
                    activation: Activation::None,
                };
                matmul_f32(&d, a, bt, c, &epi, threads)
            }
        }
    }
}

/// `R^T` of a step, whole or in column blocks `(first column, block)`.
#[derive(Debug, Clone)]
struct StepMat {
    parts: Vec<(usize, Mat)>,
}

impl StepMat {
    /// `r` (n×k); split in `parts` column blocks when `parts > 1`.
    fn new(
        r: &[f32],
        n: usize,
        k: usize,
        parts: usize,
        pack: bool,
    ) -> Result<StepMat, CodegenError> {
        let per = n.div_ceil(parts.max(1));
        let parts = (0..n)
            .step_by(per.max(1))
            .map(|j0| {
                let nb = per.min(n - j0);
                Ok((j0, Mat::new(&r[j0 * k..], nb, k, None, pack)?))
            })
            .collect::<Result<_, CodegenError>>()?;
        Ok(StepMat { parts })
    }

    /// `c = a·R^T` for `m` rows; blocks (only built for `m == 1`) run as
    /// tasks on up to `threads` threads.
    fn run(&self, a: &[f32], m: usize, c: &mut [f32], threads: usize) -> Result<(), CodegenError> {
        if let [(_, whole)] = self.parts.as_slice() {
            return whole.run(a, m, c, threads);
        }
        let out = SendPtr(c.as_mut_ptr());
        let len = c.len();
        let failed = std::sync::Mutex::new(None);
        split(self.parts.len(), threads.min(self.parts.len()), |range| {
            for p in range {
                let (j0, mat) = &self.parts[p];
                let n = match mat {
                    Mat::Packed(pm) => pm.n(),
                    Mat::Plain { n, .. } => *n,
                };
                debug_assert!(j0 + n <= len, "step block inside the output");
                // SAFETY: blocks cover disjoint columns of the one output row.
                let c = unsafe { std::slice::from_raw_parts_mut(out.get().add(*j0), n) };
                if let Err(e) = mat.run(a, 1, c, 1) {
                    *failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                }
            }
        });
        match failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// One direction's step weights.
#[derive(Debug, Clone)]
struct Dir {
    /// `R` (all gates; GRU without lbr: `z, r` only).
    r: StepMat,
    /// GRU without lbr: `R_h`.
    r_h: Option<StepMat>,
    /// LSTM peepholes (3·hidden), GRU lbr `Rb_h` (hidden), else empty.
    aux: Vec<f32>,
}

/// A compiled recurrent layer.
#[derive(Debug, Clone)]
pub struct Recurrent {
    d: RecurrentDesc,
    proj: Mat,
    dirs: Vec<Dir>,
    knobs: RecurrentKnobs,
}

impl Recurrent {
    /// Checks `d` and packs the weights.
    pub fn new(
        d: RecurrentDesc,
        wt: &RecurrentWeights,
        knobs: RecurrentKnobs,
    ) -> Result<Recurrent, CodegenError> {
        check_desc(&d)?;
        let (g, hs, nd) = (d.cell.gates(), d.hidden, d.dirs);
        let gh = g * hs;
        need("w", wt.w.len(), nd * gh * d.input)?;
        need("r", wt.r.len(), nd * gh * hs)?;
        if let Some(b) = wt.b {
            need("b", b.len(), nd * 2 * gh)?;
        }
        if let Some(p) = wt.p {
            need("p", p.len(), nd * 3 * hs)?;
        }
        let lbr = d.cell
            == RecurrentCell::Gru {
                linear_before_reset: true,
            };
        let bias = wt.b.map(|b| {
            let mut v = vec![0f32; nd * gh];
            for (di, out) in v.chunks_mut(gh).enumerate() {
                let bd = &b[di * 2 * gh..(di + 1) * 2 * gh];
                for (i, o) in out.iter_mut().enumerate() {
                    let folded = !(lbr && i >= 2 * hs);
                    *o = bd[i] + if folded { bd[gh + i] } else { 0.0 };
                }
            }
            v
        });
        let proj = Mat::new(wt.w, nd * gh, d.input, bias, knobs.prepack)?;
        let parts = if d.batch == 1 && gh * hs >= knobs.step_par_min_macs {
            knobs.step_parts.max(1)
        } else {
            1
        };
        let mut dirs = Vec::with_capacity(nd);
        for di in 0..nd {
            let r = &wt.r[di * gh * hs..(di + 1) * gh * hs];
            let two_phase = d.cell
                == RecurrentCell::Gru {
                    linear_before_reset: false,
                };
            let (rows, r_h) = if two_phase {
                let rh = StepMat::new(&r[2 * hs * hs..], hs, hs, parts, knobs.prepack)?;
                (2 * hs, Some(rh))
            } else {
                (gh, None)
            };
            let aux = match d.cell {
                RecurrentCell::Lstm { .. } => wt.p.map_or(vec![0.0; 3 * hs], |p| {
                    p[di * 3 * hs..(di + 1) * 3 * hs].to_vec()
                }),
                _ if lbr => wt.b.map_or(vec![0.0; hs], |b| {
                    b[di * 2 * gh + gh + 2 * hs..di * 2 * gh + 2 * gh].to_vec()
                }),
                _ => Vec::new(),
            };
            dirs.push(Dir {
                r: StepMat::new(r, rows, hs, parts, knobs.prepack)?,
                r_h,
                aux,
            });
        }
        Ok(Recurrent {
            d,
            proj,
            dirs,
            knobs,
        })
    }

    /// The layer's description.
    pub fn desc(&self) -> &RecurrentDesc {
        &self.d
    }

    /// f32 scratch values [`Recurrent::run`] needs.
    pub fn scratch_len(&self) -> usize {
        self.d.scratch_len()
    }
}

impl RecurrentDesc {
    /// Fails when the description is inconsistent (directions, sizes,
    /// activation count, `sequence_lens`, a negative clip).
    pub fn check(&self) -> Result<(), CodegenError> {
        check_desc(self)
    }

    /// f32 scratch values a [`Recurrent`] of this shape needs per run.
    pub fn scratch_len(&self) -> usize {
        let gh = self.cell.gates() * self.hidden;
        let state = self.dirs * self.batch * self.hidden;
        // projection, step GEMM, h, c, GRU z and r⊙h per batch entry
        self.seq * self.batch * self.dirs * gh
            + self.batch * gh
            + 2 * state
            + 2 * self.batch * self.hidden
    }
}

fn check_desc(d: &RecurrentDesc) -> Result<(), CodegenError> {
    let bad = |why: String| Err(invalid("Recurrent", why));
    if d.dirs != 1 && d.dirs != 2 {
        return bad(format!("{} directions", d.dirs));
    }
    if d.hidden == 0 || d.input == 0 {
        return bad("hidden and input sizes must be positive".into());
    }
    if d.acts.len() != d.dirs * d.cell.acts() {
        return bad(format!(
            "{} activations for {} direction(s) of {:?}",
            d.acts.len(),
            d.dirs,
            d.cell
        ));
    }
    if let Some(l) = &d.seq_lens {
        if l.len() != d.batch || l.iter().any(|&v| v > d.seq) {
            return bad(format!(
                "sequence_lens {l:?} must hold {} lengths in 0..={}",
                d.batch, d.seq
            ));
        }
    }
    if d.clip.is_some_and(|c| c.is_nan() || c < 0.0) {
        return bad(format!("clip {:?} must be non-negative", d.clip));
    }
    Ok(())
}

/// Scratch regions of one run.
struct Scratch<'a> {
    xw: &'a mut [f32],
    hr: &'a mut [f32],
    h: &'a mut [f32],
    c: &'a mut [f32],
    z: &'a mut [f32],
    rh: &'a mut [f32],
}

impl Recurrent {
    /// Runs the layer: fills the outputs `io` holds.
    ///
    /// Fails without writing when a slice is too short or `threads == 0`.
    pub fn run(
        &self,
        io: RecurrentIo,
        scratch: &mut [f32],
        threads: usize,
    ) -> Result<(), CodegenError> {
        if threads == 0 {
            return Err(CodegenError::ZeroThreads);
        }
        let d = &self.d;
        let state = d.dirs * d.batch * d.hidden;
        need("x", io.x.len(), d.seq * d.batch * d.input)?;
        need("scratch", scratch.len(), self.scratch_len())?;
        for (name, s) in [("initial_h", io.h0), ("initial_c", io.c0)] {
            if let Some(s) = s {
                need(name, s.len(), state)?;
            }
        }
        if let Some(y) = io.y.as_deref() {
            need("y", y.len(), d.seq * state)?;
        }
        for (name, s) in [("y_h", io.y_h.as_deref()), ("y_c", io.y_c.as_deref())] {
            if let Some(s) = s {
                need(name, s.len(), state)?;
            }
        }
        let gh = d.cell.gates() * d.hidden;
        let (xw, rest) = scratch.split_at_mut(d.seq * d.batch * d.dirs * gh);
        let (hr, rest) = rest.split_at_mut(d.batch * gh);
        let (h, rest) = rest.split_at_mut(state);
        let (c, rest) = rest.split_at_mut(state);
        let (z, rest) = rest.split_at_mut(d.batch * d.hidden);
        let rh = &mut rest[..d.batch * d.hidden];
        let mut s = Scratch {
            xw,
            hr,
            h,
            c,
            z,
            rh,
        };
        self.proj.run(io.x, d.seq * d.batch, s.xw, threads)?;
        self.load_state(io.h0, s.h);
        self.load_state(io.c0, s.c);
        let mut y = io.y;
        if let (Some(y), Some(_)) = (y.as_deref_mut(), &d.seq_lens) {
            y[..d.seq * state].fill(0.0);
        }
        for di in 0..d.dirs {
            self.direction(di, &mut s, y.as_deref_mut(), threads)?;
        }
        if let Some(yh) = io.y_h {
            self.store_state(s.h, yh);
        }
        if let Some(yc) = io.y_c {
            self.store_state(s.c, yc);
        }
        Ok(())
    }

    /// Offset of (direction, batch entry) in an ONNX state tensor.
    fn state_at(&self, di: usize, b: usize) -> usize {
        let d = &self.d;
        if d.batch_major {
            (b * d.dirs + di) * d.hidden
        } else {
            (di * d.batch + b) * d.hidden
        }
    }

    fn load_state(&self, from: Option<&[f32]>, to: &mut [f32]) {
        let hs = self.d.hidden;
        for (k, dst) in to.chunks_mut(hs).enumerate() {
            let (di, b) = (k / self.d.batch, k % self.d.batch);
            match from {
                Some(f) => dst.copy_from_slice(&f[self.state_at(di, b)..][..hs]),
                None => dst.fill(0.0),
            }
        }
    }

    fn store_state(&self, from: &[f32], to: &mut [f32]) {
        let hs = self.d.hidden;
        for (k, src) in from.chunks(hs).enumerate() {
            let (di, b) = (k / self.d.batch, k % self.d.batch);
            to[self.state_at(di, b)..][..hs].copy_from_slice(src);
        }
    }

    /// Row of `X` (and of the projection) for time `t`, batch entry `b`.
    fn row(&self, t: usize, b: usize) -> usize {
        if self.d.batch_major {
            b * self.d.seq + t
        } else {
            t * self.d.batch + b
        }
    }

    /// Offset of `Y[t, di, b]` (or its layout-1 counterpart).
    fn y_at(&self, t: usize, di: usize, b: usize) -> usize {
        let d = &self.d;
        if d.batch_major {
            ((b * d.seq + t) * d.dirs + di) * d.hidden
        } else {
            ((t * d.dirs + di) * d.batch + b) * d.hidden
        }
    }

    /// All time steps of direction `di`.
    fn direction(
        &self,
        di: usize,
        s: &mut Scratch,
        mut y: Option<&mut [f32]>,
        threads: usize,
    ) -> Result<(), CodegenError> {
        let d = &self.d;
        let (hs, nb) = (d.hidden, d.batch);
        let dir = &self.dirs[di];
        let macs = nb * d.cell.gates() * hs * hs;
        let step_threads = if macs >= self.knobs.step_par_min_macs {
            threads
        } else {
            1
        };
        let first = match d.cell {
            RecurrentCell::Rnn => Pass::Rnn,
            RecurrentCell::Gru {
                linear_before_reset: true,
            } => Pass::GruLbr,
            RecurrentCell::Gru { .. } => Pass::GruZr,
            RecurrentCell::Lstm { input_forget } => Pass::Lstm(input_forget),
        };
        let hdir = di * nb * hs;
        let longest = (0..nb).map(|b| self.len(b)).max().unwrap_or(0);
        for step in 0..longest {
            dir.r
                .run(&s.h[hdir..hdir + nb * hs], nb, s.hr, step_threads)?;
            self.cells(first, di, step, s);
            if let Some(r_h) = &dir.r_h {
                r_h.run(s.rh, nb, s.hr, step_threads)?;
                self.cells(Pass::GruH, di, step, s);
            }
            if let Some(y) = y.as_deref_mut() {
                for (b, t) in self.active(di, step) {
                    let hb = hdir + b * hs;
                    y[self.y_at(t, di, b)..][..hs].copy_from_slice(&s.h[hb..hb + hs]);
                }
            }
        }
        Ok(())
    }

    /// Steps of batch entry `b`.
    fn len(&self, b: usize) -> usize {
        self.d.seq_lens.as_ref().map_or(self.d.seq, |l| l[b])
    }

    /// (batch entry, time) of the entries of direction `di` still running at `step`.
    fn active(&self, di: usize, step: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        let reverse = di == 1 || self.d.reverse;
        (0..self.d.batch)
            .filter(move |&b| step < self.len(b))
            .map(move |b| {
                (
                    b,
                    if reverse {
                        self.len(b) - 1 - step
                    } else {
                        step
                    },
                )
            })
    }

    /// One cell pass over every running batch entry of direction `di`.
    fn cells(&self, pass: Pass, di: usize, step: usize, s: &mut Scratch) {
        let d = &self.d;
        let (hs, gh) = (d.hidden, d.cell.gates() * d.hidden);
        let hr_w = match pass {
            Pass::GruZr => 2 * hs,
            Pass::GruH => hs,
            _ => gh,
        };
        let hdir = di * d.batch * hs;
        for (b, t) in self.active(di, step) {
            let hb = hdir + b * hs;
            let st = Step {
                xw: &s.xw[self.row(t, b) * d.dirs * gh + di * gh..][..gh],
                hr: &s.hr[b * hr_w..][..hr_w],
                clip: d.clip.unwrap_or(f32::INFINITY),
                acts: &d.acts[di * d.cell.acts()..(di + 1) * d.cell.acts()],
                aux: &self.dirs[di].aux,
            };
            let mut state = State {
                h: &mut s.h[hb..hb + hs],
                c: &mut s.c[hb..hb + hs],
                z: &mut s.z[b * hs..][..hs],
                rh: &mut s.rh[b * hs..][..hs],
            };
            // SAFETY: xw holds every gate, hr the `hr_w` values the pass
            // reads, the state slices `hs` units and aux what the cell needs.
            unsafe { run_pass(pass, &st, &mut state, hs) };
        }
    }
}
