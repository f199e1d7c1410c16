//! A depthwise convolution fused with the 1×1 convolution that reads it (the
//! second half of a MobileNet inverted-residual block).
//!
//! Run separately, the depthwise output (e.g. 192 × 28 × 28, 600 KB) is
//! written to memory and read back by the 1×1 convolution, half of it from
//! the other core's cache when two threads split the two kernels differently:
//! measured, the 1×1 convolution then took 80 µs on 2 threads instead of 41.
//! Here each task computes a band of output rows: the depthwise rows of every
//! channel go to a per-task buffer of about [`BAND_BYTES`] (it stays in L2),
//! and the 1×1 GEMM reads them from there and writes the band's output rows.

use super::conv::{Conv2d, Conv2dDesc};
use super::par::{split, tasks_for, SendPtr};
use super::tile::{self, Dims, Gemm, Offsets};
use super::{invalid, need};
use crate::CodegenError;

/// Bytes of depthwise output one band may hold.
const BAND_BYTES: usize = 256 * 1024;

/// A depthwise [`Conv2d`] followed by a pointwise one on its output.
#[derive(Debug, Clone)]
pub struct DepthwisePointwise {
    dw: Conv2d,
    pw: Conv2d,
}

impl DepthwisePointwise {
    /// Checks that `dw` is depthwise, `pw` an ungrouped 1×1 stride-1
    /// convolution without padding, and that `pw` reads exactly `dw`'s output.
    pub fn new(dw: Conv2d, pw: Conv2d) -> Result<DepthwisePointwise, CodegenError> {
        let (d, p) = (*dw.desc(), *pw.desc());
        let bad = |r: &str| Err(invalid("DepthwisePointwise", r.to_string()));
        if !(d.groups == d.c_in && d.groups == d.c_out) {
            return bad("the first convolution is not depthwise");
        }
        let pointwise = p.kh == 1
            && p.kw == 1
            && p.stride_h == 1
            && p.stride_w == 1
            && p.groups == 1
            && [p.pad_top, p.pad_left, p.pad_bottom, p.pad_right] == [0; 4];
        if !pointwise {
            return bad("the second convolution is not an ungrouped 1x1 stride-1 convolution");
        }
        if [p.batch, p.c_in, p.h, p.w] != [d.batch, d.c_out, d.out_h(), d.out_w()] {
            return bad("the 1x1 convolution does not read the depthwise output");
        }
        Ok(DepthwisePointwise { dw, pw })
    }

    /// The depthwise descriptor.
    pub fn depthwise(&self) -> &Conv2dDesc {
        self.dw.desc()
    }

    /// The pointwise descriptor.
    pub fn pointwise(&self) -> &Conv2dDesc {
        self.pw.desc()
    }

    /// Output rows per band at `threads`: bands of at most [`BAND_BYTES`],
    /// a multiple of `threads` of them, of equal height.
    fn band_rows(&self, threads: usize) -> usize {
        let d = self.dw.desc();
        let bytes = 4 * d.batch * d.c_out * d.out_h() * d.out_w();
        let per_image = bytes.div_ceil(BAND_BYTES).div_ceil(d.batch);
        let bands = per_image.max(threads.div_ceil(d.batch)).min(d.out_h());
        d.out_h().div_ceil(bands.max(1))
    }

    /// f32 scratch elements [`DepthwisePointwise::run`] needs at `threads`.
    pub fn scratch_len(&self, threads: usize) -> usize {
        let d = self.dw.desc();
        threads.max(1) * d.c_out * self.band_rows(threads) * d.out_w()
    }

    /// `output` = pw(dw(`input`)) (+ `residual`), each with its own epilogue.
    pub fn run(
        &self,
        input: &[f32],
        residual: Option<&[f32]>,
        output: &mut [f32],
        scratch: &mut [f32],
        threads: usize,
    ) -> Result<(), CodegenError> {
        if threads == 0 {
            return Err(CodegenError::ZeroThreads);
        }
        let (d, p) = (self.dw.desc(), self.pw.desc());
        let out_len = p.batch * p.c_out * p.h * p.w;
        need("input", input.len(), d.batch * d.c_in * d.h * d.w)?;
        need("output", output.len(), out_len)?;
        if let Some(r) = residual {
            need("residual", r.len(), out_len)?;
        }
        need("scratch", scratch.len(), self.scratch_len(threads))?;
        let band_rows = self.band_rows(threads);
        let bands = d.out_h().div_ceil(band_rows);
        let items = d.batch * bands;
        let flops = 2 * out_len * p.c_in + 16 * d.batch * d.c_out * p.h * p.w * d.kh * d.kw;
        let tasks = tasks_for(threads, flops).min(items);
        let (out, buf) = (SendPtr(output.as_mut_ptr()), SendPtr(scratch.as_mut_ptr()));
        let per_task = d.c_out * band_rows * d.out_w();
        split(tasks, tasks, |range| {
            for task in range {
                let ctx = self.dw.plane_ctx();
                // SAFETY: task `task` owns scratch[task·per_task..][..per_task].
                let band_buf = unsafe {
                    std::slice::from_raw_parts_mut(buf.get().add(task * per_task), per_task)
                };
                for item in task * items / tasks..(task + 1) * items / tasks {
                    let (b, band) = (item / bands, item % bands);
                    let rows = band * band_rows..((band + 1) * band_rows).min(d.out_h());
                    // SAFETY: lengths checked above; this item alone writes
                    // output rows `rows` of batch b.
                    unsafe { self.band(input, residual, out, band_buf, &ctx, b, rows) };
                }
            }
        });
        Ok(())
    }

    /// One band: depthwise rows of every channel into `buf`, then the GEMM.
    #[allow(clippy::too_many_arguments)]
    unsafe fn band(
        &self,
        input: &[f32],
        residual: Option<&[f32]>,
        out: SendPtr<f32>,
        buf: &mut [f32],
        ctx: &super::depthwise::PlaneCtx,
        b: usize,
        rows: std::ops::Range<usize>,
    ) {
        let (d, p) = (self.dw.desc(), self.pw.desc());
        let (ow, plane) = (d.out_w(), d.out_h() * d.out_w());
        let n = rows.len() * ow;
        for c in 0..d.c_out {
            // Plane (b, c) of the depthwise output, shifted so that its rows
            // `rows` land at buf[c·n..][..n].
            let t = b * d.c_out + c;
            let origin = buf
                .as_mut_ptr()
                .wrapping_add(c * n)
                .wrapping_sub(rows.start * ow + t * plane);
            self.dw.depthwise_rows(ctx, input, t, rows.clone(), origin);
        }
        let base = b * p.c_out * plane + rows.start * ow;
        let epi = self.pw.epi(residual).offset(0, 0, base);
        let gemm = Gemm {
            a: self.pw.weights().as_ptr(),
            lda: p.c_in,
            b: buf.as_ptr(),
            ldb: n,
            c: out.get().add(base),
            ldc: plane,
            epi,
        };
        let dims = Dims {
            m: p.c_out,
            n,
            k: p.c_in,
        };
        tile::run(1, dims, gemm, |_| Offsets::default(), 1);
    }
}
