//! The channel-split schedule of [`DepthwisePointwise`], for small planes on
//! several threads.
//!
//! Row bands on small planes cost twice: every thread reads all the weights
//! of both 1×1 convolutions, and each band recomputes the expansion's rows
//! under its neighbours' windows (a 14×14 plane in two bands of 7 rows
//! expands 9 rows per band, +28%). Here thread `t` owns a range of the hidden
//! (depthwise) channels instead: it expands only those channels over the
//! whole plane, runs their depthwise convolution (a per-channel operation, so
//! nothing crosses threads), and multiplies them by its column slice of the
//! projection's weights into a partial sum of the whole output. A second
//! parallel step adds the partial sums, then the bias, the residual and the
//! activation. Each thread reads `1/threads` of every weight, and only the
//! partial sums (`c_out × plane` floats each) cross cores.

use super::super::conv::Conv2d;
use super::super::epilogue::{lanes, Bias, Epi};
use super::super::par::{split, SendPtr};
#[cfg(target_arch = "x86_64")]
use super::super::pointwise_t;
use super::super::tile::{self, Dims, Gemm, Offsets};
use super::DepthwisePointwise;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// One task's buffers (f32 elements), in this order in its scratch.
#[derive(Clone, Copy)]
pub(super) struct Layout {
    /// Values before and after the expanded planes (loads of the flattened
    /// depthwise kernel; see [`super::super::depthwise::plane_rows`]).
    margin: usize,
    /// The expanded planes of the task's channels, with both margins (0 without expansion).
    expanded: usize,
    /// The depthwise output planes of the task's channels.
    dw: usize,
    /// The task's partial sum of the output image.
    partial: usize,
}

impl Layout {
    fn per_task(&self) -> usize {
        self.expanded + self.dw + self.partial
    }
}

impl DepthwisePointwise {
    /// The hidden channels task `t` of `tasks` owns: whole 16-channel units
    /// (the unit of [`pointwise_t`]), as even as they go.
    fn channels(&self, t: usize, tasks: usize) -> std::ops::Range<usize> {
        let c = self.dw.desc().c_out;
        let units = c.div_ceil(16);
        let at = |t: usize| (t * units / tasks * 16).min(c);
        at(t)..at(t + 1)
    }

    pub(super) fn channel_layout(&self, threads: usize) -> Layout {
        let (d, p) = (self.dw.desc(), self.pw.desc());
        let most = (0..threads)
            .map(|t| self.channels(t, threads).len())
            .max()
            .unwrap_or(0);
        let margin = if self.expand.is_some() { d.w + 32 } else { 0 };
        let expanded = match self.expand {
            Some(_) => most * d.h * d.w + 2 * margin,
            None => 0,
        };
        Layout {
            margin,
            expanded,
            dw: most * d.out_h() * d.out_w(),
            partial: p.c_out * p.h * p.w,
        }
    }

    /// f32 scratch elements [`Self::run_channels`] needs at `threads`.
    pub(super) fn channel_scratch_len(&self, threads: usize) -> usize {
        threads * self.channel_layout(threads).per_task()
    }

    /// Runs the channel-split schedule on `threads` (≥ 2) tasks.
    ///
    /// # Safety
    /// The caller checked every buffer's length (as [`Self::run`] does) and
    /// that `scratch` holds [`Self::channel_scratch_len`] elements.
    pub(super) unsafe fn run_channels(
        &self,
        input: &[f32],
        residual: Option<&[f32]>,
        output: &mut [f32],
        scratch: &mut [f32],
        threads: usize,
    ) {
        let (d, p) = (self.dw.desc(), self.pw.desc());
        let lay = self.channel_layout(threads);
        let buf = SendPtr(scratch.as_mut_ptr());
        let out = SendPtr(output.as_mut_ptr());
        let out_image = p.c_out * p.h * p.w;
        for b in 0..d.batch {
            split(threads, threads, |range| {
                for t in range {
                    // SAFETY: task t owns scratch[t·per_task..][..per_task].
                    let mine = unsafe { buf.get().add(t * lay.per_task()) };
                    unsafe { self.partial(input, b, self.channels(t, threads), mine, lay) };
                }
            });
            let epi = self.pw.epi(residual).offset(0, 0, b * out_image);
            let partials = SendPtr(buf.get().wrapping_add(lay.expanded + lay.dw));
            let image = SendPtr(out.get().wrapping_add(b * out_image));
            split(p.c_out, threads, |rows| {
                let sum = Sum {
                    partials,
                    stride: lay.per_task(),
                    count: threads,
                    plane: p.h * p.w,
                };
                // SAFETY: these output rows are this task's; every partial is complete.
                unsafe { sum.rows(rows, image, &epi) };
            });
        }
    }

    /// Task's share of image `b`: the channels `chans` expanded (if there is
    /// an expansion), their depthwise planes, and their product with the
    /// projection's weight columns `chans` into the task's partial sum.
    unsafe fn partial(
        &self,
        input: &[f32],
        b: usize,
        chans: std::ops::Range<usize>,
        mine: *mut f32,
        lay: Layout,
    ) {
        let d = self.dw.desc();
        let (plane_in, plane_out) = (d.h * d.w, d.out_h() * d.out_w());
        let expanded = mine.add(lay.margin);
        if let Some(e) = &self.expand {
            let x = input.as_ptr().add(b * e.desc().c_in * plane_in);
            // Channel c lands at expanded[(c − chans.start)·plane_in..].
            let origin = expanded.wrapping_sub(chans.start * plane_in);
            one_by_one(e, x, origin, &e.epi(None), chans.clone(), None);
        }
        let dbuf = mine.add(lay.expanded);
        let ctx = self.dw.plane_ctx();
        for (i, c) in chans.clone().enumerate() {
            let src = match self.expand {
                Some(_) => expanded.add(i * plane_in).cast_const(),
                None => input.as_ptr().add((b * d.c_in + c) * plane_in),
            };
            let t = b * d.c_out + c;
            // The origin of the whole output, placed so that plane t lands at dbuf[i·plane_out..].
            let origin = dbuf.wrapping_add(i * plane_out).wrapping_sub(t * plane_out);
            self.dw.depthwise_rows(&ctx, src, t, 0..d.out_h(), origin);
        }
        let plain = Epi {
            bias: Bias::None,
            residual: std::ptr::null(),
            act: Default::default(),
        };
        // Input channel c of the projection is at dbuf[(c − chans.start)·plane_out..].
        let x = dbuf.wrapping_sub(chans.start * plane_out).cast_const();
        let all = 0..self.pw.desc().c_out;
        one_by_one(&self.pw, x, dbuf.add(lay.dw), &plain, all, Some(chans));
    }
}

/// Output channels `rows` of the 1×1 convolution `conv` over one image,
/// summed over the input channels `ks` (all when `None`): `y` =
/// epi(W[rows, ks] · x[ks]). `x` and `y` are the image's origins (channel c
/// at `x + c·plane`, `y + c·plane`); only the addressed channels must exist.
/// On [`pointwise_t`] where `conv` packed weights for it, else on the tiled GEMM.
unsafe fn one_by_one(
    conv: &Conv2d,
    x: *const f32,
    y: *mut f32,
    epi: &Epi,
    rows: std::ops::Range<usize>,
    ks: Option<std::ops::Range<usize>>,
) {
    let d = conv.desc();
    let plane = d.h * d.w;
    let ks = ks.unwrap_or(0..d.c_in);
    #[cfg(target_arch = "x86_64")]
    if let Some(wt) = conv.weights_t() {
        let s = pointwise_t::Shape {
            batch: 1,
            m: d.c_out,
            n: plane,
            k: d.c_in,
        };
        // Whole units only: `rows` starts on a unit and ends on one or at c_out.
        let units = rows.start / 16..rows.end.div_ceil(16);
        return pointwise_t::part(s, wt, x, y, epi, units, ks);
    }
    let (a, lda, panel) = conv.gemm_a(rows.start, ks.start);
    let gemm = Gemm {
        a,
        lda,
        panel,
        b: x.wrapping_add(ks.start * plane),
        ldb: plane,
        b_rows: std::ptr::null(),
        c: y.wrapping_add(rows.start * plane),
        ldc: plane,
        epi: epi.offset(rows.start, 0, rows.start * plane),
    };
    let dims = Dims {
        m: rows.len(),
        n: plane,
        k: ks.len(),
    };
    tile::run(1, dims, gemm, |_| Offsets::default(), 1);
}

/// The partial sums of all tasks over one output image.
struct Sum {
    /// Task 0's partial sum; task `t`'s is `t·stride` further.
    partials: SendPtr<f32>,
    stride: usize,
    count: usize,
    /// Elements per output channel.
    plane: usize,
}

impl Sum {
    /// Output rows (channels) `rows` = epilogue(Σ partials) into `image`.
    unsafe fn rows(&self, rows: std::ops::Range<usize>, image: SendPtr<f32>, epi: &Epi) {
        #[cfg(target_arch = "x86_64")]
        if super::super::use_avx512() {
            return self.rows512(rows, image, epi);
        }
        for r in rows {
            for j in 0..self.plane {
                let off = r * self.plane + j;
                let s: f32 = (0..self.count)
                    .map(|t| *self.partials.get().add(t * self.stride + off))
                    .sum();
                *image.get().add(off) = epi.scalar(s, r, j, off);
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn rows512(&self, rows: std::ops::Range<usize>, image: SendPtr<f32>, epi: &Epi) {
        let base = self.partials.get().cast_const();
        for r in rows {
            for j in (0..self.plane).step_by(16) {
                let (m, off) = (lanes(self.plane - j), r * self.plane + j);
                let mut s = _mm512_maskz_loadu_ps(m, base.add(off));
                for t in 1..self.count {
                    let v = _mm512_maskz_loadu_ps(m, base.add(t * self.stride + off));
                    s = _mm512_add_ps(s, v);
                }
                _mm512_mask_storeu_ps(image.get().add(off), m, epi.vec16(s, m, r, j, off));
            }
        }
    }
}
