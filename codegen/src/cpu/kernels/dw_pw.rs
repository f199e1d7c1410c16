//! A depthwise convolution fused with the 1×1 convolution that reads it (the
//! second half of a MobileNet inverted-residual block), optionally with the
//! 1×1 expansion before it (the whole block).
//!
//! Run separately, the depthwise output (e.g. 192 × 28 × 28, 600 KB) is
//! written to memory and read back by the 1×1 convolution, half of it from
//! the other core's cache when two threads split the two kernels differently:
//! measured, the 1×1 convolution then took 80 µs on 2 threads instead of 41.
//! Here each task computes a band of output rows: the depthwise rows of every
//! channel go to a per-task buffer of about [`DwPwKnobs::band_bytes`] (it stays in L2),
//! and the 1×1 GEMM reads them from there and writes the band's output rows.
//! With an expansion, the band's input rows (plus the window's halo) are
//! first expanded into another per-task buffer, so the expanded tensor (e.g.
//! 96 × 112 × 112, 4.8 MB) never goes to memory either.

use super::conv::{Conv2d, Conv2dDesc};
use super::par::{split, tasks_for, SendPtr};
use super::tile::{self, Dims, Gemm, Offsets};
use super::{invalid, need};
use crate::CodegenError;

mod channels;

/// Machine-dependent choices of [`DepthwisePointwise`] (tuner knobs; the
/// defaults were measured on MobileNetV2 on a 2-core Xeon).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DwPwKnobs {
    /// Bytes of depthwise output rows one band may hold (without expansion).
    pub band_bytes: usize,
    /// Bytes of expanded rows one band may hold when there is an expansion.
    pub expanded_band_bytes: usize,
    /// Largest depthwise input plane (pixels) the channel-split schedule
    /// takes on several threads (0: never).
    pub channel_split_pixels: usize,
}

impl Default for DwPwKnobs {
    fn default() -> Self {
        DwPwKnobs {
            band_bytes: 256 * 1024,
            expanded_band_bytes: 768 * 1024,
            channel_split_pixels: 14 * 14,
        }
    }
}

/// A depthwise [`Conv2d`] followed by a pointwise one on its output,
/// optionally preceded by a pointwise expansion producing its input.
#[derive(Debug, Clone)]
pub struct DepthwisePointwise {
    expand: Option<Conv2d>,
    dw: Conv2d,
    pw: Conv2d,
    knobs: DwPwKnobs,
}

/// Whether `p` is an ungrouped 1×1 stride-1 convolution without padding.
fn is_pointwise(p: &Conv2dDesc) -> bool {
    p.kh == 1
        && p.kw == 1
        && p.stride_h == 1
        && p.stride_w == 1
        && p.groups == 1
        && [p.pad_top, p.pad_left, p.pad_bottom, p.pad_right] == [0; 4]
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
        if !is_pointwise(&p) {
            return bad("the second convolution is not an ungrouped 1x1 stride-1 convolution");
        }
        if [p.batch, p.c_in, p.h, p.w] != [d.batch, d.c_out, d.out_h(), d.out_w()] {
            return bad("the 1x1 convolution does not read the depthwise output");
        }
        if d.dilation_h != 1 {
            return bad("the depthwise convolution has a row dilation");
        }
        Ok(DepthwisePointwise {
            expand: None,
            dw,
            pw,
            knobs: DwPwKnobs::default(),
        })
    }

    /// The same with other band sizes and schedule threshold (sizes of 0 are taken as 1 byte).
    pub fn with_knobs(mut self, knobs: DwPwKnobs) -> DepthwisePointwise {
        self.knobs = DwPwKnobs {
            band_bytes: knobs.band_bytes.max(1),
            expanded_band_bytes: knobs.expanded_band_bytes.max(1),
            ..knobs
        };
        self
    }

    /// The same with `expand`, a 1×1 convolution (or one on the direct
    /// kernel, e.g. an RGB stem) whose output the depthwise convolution
    /// reads, computed band by band too (rows under two bands' windows are
    /// computed by both).
    pub fn with_expand(mut self, expand: Conv2d) -> Result<DepthwisePointwise, CodegenError> {
        let (e, d) = (*expand.desc(), *self.dw.desc());
        let produces = [e.batch, e.c_out, e.out_h(), e.out_w()] == [d.batch, d.c_in, d.h, d.w];
        if !(is_pointwise(&e) || expand.is_direct()) || !produces {
            return Err(invalid(
                "DepthwisePointwise",
                "the first convolution is neither 1x1 nor direct, or does not produce the \
                 depthwise input"
                    .to_string(),
            ));
        }
        self.expand = Some(expand);
        Ok(self)
    }

    /// The depthwise descriptor.
    pub fn depthwise(&self) -> &Conv2dDesc {
        self.dw.desc()
    }

    /// The pointwise descriptor.
    pub fn pointwise(&self) -> &Conv2dDesc {
        self.pw.desc()
    }

    /// The expansion's descriptor, if any.
    pub fn expansion(&self) -> Option<&Conv2dDesc> {
        self.expand.as_ref().map(Conv2d::desc)
    }

    /// Input rows the depthwise convolution reads for `out_rows` output rows.
    fn in_rows(&self, out_rows: usize) -> usize {
        let d = self.dw.desc();
        ((out_rows.max(1) - 1) * d.stride_h + d.kh).min(d.h)
    }

    /// Output rows per band at `threads`: equal bands of at most the band
    /// budget, as many per thread.
    fn band_rows(&self, threads: usize) -> usize {
        let d = self.dw.desc();
        let per_row = match self.expand {
            None => 4 * d.c_out * d.out_w(),
            Some(_) => 4 * d.c_in * d.w * d.stride_h,
        };
        let budget = if self.expand.is_some() {
            self.knobs.expanded_band_bytes
        } else {
            self.knobs.band_bytes
        };
        let per_image = (per_row * d.out_h()).div_ceil(budget);
        // A multiple of `threads` bands in all, so that threads get equal work.
        let total = (d.batch * per_image).div_ceil(threads) * threads;
        let bands = total.div_ceil(d.batch).clamp(1, d.out_h());
        d.out_h().div_ceil(bands)
    }

    /// Per task: the expanded rows (with a margin each side for the loads of
    /// the flattened depthwise kernel, see [`super::depthwise::plane_rows`])
    /// and the depthwise rows.
    fn task_len(&self, band_rows: usize) -> (usize, usize, usize) {
        let d = self.dw.desc();
        let margin = if self.expand.is_some() { d.w + 32 } else { 0 };
        let expanded = match self.expand {
            Some(_) => d.c_in * self.in_rows(band_rows) * d.w + 2 * margin,
            None => 0,
        };
        (margin, expanded, d.c_out * band_rows * d.out_w())
    }

    /// f32 scratch elements [`DepthwisePointwise::run`] needs at `threads`.
    pub fn scratch_len(&self, threads: usize) -> usize {
        if self.splits_channels(threads) {
            return self.channel_scratch_len(threads);
        }
        let (_, e, dw) = self.task_len(self.band_rows(threads));
        threads.max(1) * (e + dw)
    }

    /// Whether [`Self::run`] at `threads` splits the hidden channels over
    /// threads (see [`channels`]) rather than the output rows: on several
    /// threads, for depthwise input planes of at most
    /// [`DwPwKnobs::channel_split_pixels`]
    /// and no direct (stem) expansion.
    pub fn splits_channels(&self, threads: usize) -> bool {
        let d = self.dw.desc();
        let direct = self.expand.as_ref().is_some_and(Conv2d::is_direct);
        threads >= 2
            && !direct
            && d.h * d.w <= self.knobs.channel_split_pixels
            && d.c_out >= threads
    }

    /// `output` = pw(dw(expand(`input`))) (+ `residual`), each with its own epilogue.
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
        let in_len = match &self.expand {
            Some(e) => e.desc().batch * e.desc().c_in * e.desc().h * e.desc().w,
            None => d.batch * d.c_in * d.h * d.w,
        };
        let out_len = p.batch * p.c_out * p.h * p.w;
        need("input", input.len(), in_len)?;
        need("output", output.len(), out_len)?;
        if let Some(r) = residual {
            need("residual", r.len(), out_len)?;
        }
        need("scratch", scratch.len(), self.scratch_len(threads))?;
        if self.splits_channels(threads) {
            // SAFETY: every length was checked above.
            unsafe { self.run_channels(input, residual, output, scratch, threads) };
            return Ok(());
        }
        let band_rows = self.band_rows(threads);
        let bands = d.out_h().div_ceil(band_rows);
        let items = d.batch * bands;
        let expand_flops = self.expand.as_ref().map_or(0, |e| {
            let e = e.desc();
            2 * e.batch * e.c_out * e.c_in * e.kh * e.kw * e.out_h() * e.out_w()
        });
        let flops =
            2 * out_len * p.c_in + 16 * d.batch * d.c_out * p.h * p.w * d.kh * d.kw + expand_flops;
        let tasks = tasks_for(threads, flops).min(items);
        let (out, buf) = (SendPtr(output.as_mut_ptr()), SendPtr(scratch.as_mut_ptr()));
        let (margin, e_len, dw_len) = self.task_len(band_rows);
        split(tasks, tasks, |range| {
            for task in range {
                let ctx = self.dw.plane_ctx();
                // SAFETY: task `task` owns scratch[task·(e_len + dw_len)..][..e_len + dw_len].
                let (ebuf, dbuf) = unsafe {
                    let start = buf.get().add(task * (e_len + dw_len));
                    (
                        std::slice::from_raw_parts_mut(start, e_len),
                        std::slice::from_raw_parts_mut(start.add(e_len), dw_len),
                    )
                };
                for item in task * items / tasks..(task + 1) * items / tasks {
                    let (b, band) = (item / bands, item % bands);
                    let rows = band * band_rows..((band + 1) * band_rows).min(d.out_h());
                    let bufs = Bufs { ebuf, margin, dbuf };
                    // SAFETY: lengths checked above; this item alone writes
                    // output rows `rows` of batch b.
                    unsafe { self.band(input, residual, out, bufs, &ctx, b, rows) };
                }
            }
        });
        Ok(())
    }

    /// One band: expanded input rows (if any) into `ebuf`, depthwise rows of
    /// every channel into `dbuf`, then the GEMM into the output rows.
    #[allow(clippy::too_many_arguments)]
    unsafe fn band(
        &self,
        input: &[f32],
        residual: Option<&[f32]>,
        out: SendPtr<f32>,
        bufs: Bufs<'_>,
        ctx: &super::depthwise::PlaneCtx,
        b: usize,
        rows: std::ops::Range<usize>,
    ) {
        let (d, p) = (self.dw.desc(), self.pw.desc());
        let (ow, plane) = (d.out_w(), d.out_h() * d.out_w());
        let n = rows.len() * ow;
        // The depthwise input plane of channel c: rows i0.. of `ebuf` (the
        // expansion's output) or of the input.
        let (i0, i1) = self.input_rows(&rows);
        if let Some(e) = &self.expand {
            self.expand_rows(e, input, &mut bufs.ebuf[bufs.margin..], b, i0..i1);
        }
        let expanded = bufs.ebuf[bufs.margin..].as_ptr();
        let src = |c: usize| -> *const f32 {
            match &self.expand {
                Some(_) => expanded
                    .wrapping_add(c * (i1 - i0) * d.w)
                    .wrapping_sub(i0 * d.w),
                None => input[(b * d.c_in + c) * d.h * d.w..].as_ptr(),
            }
        };
        for c in 0..d.c_out {
            // Plane (b, c) of the depthwise output, shifted so that its rows
            // `rows` land at dbuf[c·n..][..n].
            let t = b * d.c_out + c;
            let origin = bufs
                .dbuf
                .as_mut_ptr()
                .wrapping_add(c * n)
                .wrapping_sub(rows.start * ow + t * plane);
            self.dw.depthwise_rows(ctx, src(c), t, rows.clone(), origin);
        }
        let base = b * p.c_out * plane + rows.start * ow;
        let (a, lda, panel) = self.pw.gemm_a(0, 0);
        let gemm = Gemm {
            a,
            lda,
            panel,
            b: bufs.dbuf.as_ptr(),
            ldb: n,
            b_rows: std::ptr::null(),
            c: out.get().add(base),
            ldc: plane,
            epi: self.pw.epi(residual).offset(0, 0, base),
        };
        let dims = Dims {
            m: p.c_out,
            n,
            k: p.c_in,
        };
        tile::run(1, dims, gemm, |_| Offsets::default(), 1);
    }

    /// The input rows `i0..i1` (inside the image) that depthwise output rows `rows` read.
    fn input_rows(&self, rows: &std::ops::Range<usize>) -> (usize, usize) {
        let d = self.dw.desc();
        let i0 = (rows.start * d.stride_h).saturating_sub(d.pad_top).min(d.h);
        let i1 = ((rows.end - 1) * d.stride_h + d.kh)
            .saturating_sub(d.pad_top)
            .clamp(i0, d.h);
        (i0, i1)
    }

    /// Rows `rows` of the expansion's output for batch `b` into `ebuf`
    /// (channel-major, `rows.len()` rows per channel).
    ///
    /// # Safety
    /// `input` must hold the expansion's input; `ebuf` the rows.
    unsafe fn expand_rows(
        &self,
        e: &Conv2d,
        input: &[f32],
        ebuf: &mut [f32],
        b: usize,
        rows: std::ops::Range<usize>,
    ) {
        let ed = e.desc();
        let n = rows.len() * ed.out_w();
        if n == 0 {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if e.is_direct() {
            let x = input[b * ed.c_in * ed.h * ed.w..].as_ptr();
            let origin = ebuf.as_mut_ptr().wrapping_sub(rows.start * ed.out_w());
            return e.direct_rows(x, rows, origin, n);
        }
        let (a, lda, panel) = e.gemm_a(0, 0);
        let gemm = Gemm {
            a,
            lda,
            panel,
            b: input[(b * ed.c_in * ed.h + rows.start) * ed.w..].as_ptr(),
            ldb: ed.h * ed.w,
            b_rows: std::ptr::null(),
            c: ebuf.as_mut_ptr(),
            ldc: n,
            epi: e.epi(None),
        };
        let dims = Dims {
            m: ed.c_out,
            n,
            k: ed.c_in,
        };
        tile::run(1, dims, gemm, |_| Offsets::default(), 1);
    }
}

/// One task's buffers for a band.
struct Bufs<'a> {
    /// Expanded rows after `margin` values (empty without an expansion).
    ebuf: &'a mut [f32],
    margin: usize,
    /// Depthwise rows.
    dbuf: &'a mut [f32],
}
