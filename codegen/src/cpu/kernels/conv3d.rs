//! NCDHW 3-D convolution with weights kept at compile time: im2col + the
//! register-tiled GEMM of [`super::tile`], as the 2-D im2col path.
//!
//! Per (batch, group) the output pixels are cut into blocks that stay inside
//! one output depth slice ([`super::conv::block_pixels`] of its plane). A
//! block's column matrix (row `((ci·kd + kz)·kh + ky)·kw + kx`, the OIDHW
//! weight order) is filled per (input channel, depth tap) by the 2-D im2col
//! of the input plane that tap reads (zero rows where it lies in the depth
//! padding), then multiplied by the group's weights with the bias, residual
//! and activation fused into the GEMM's stores.

use super::conv::{block_pixels, Conv2dDesc};
use super::epilogue::{Activation, Bias, Epi};
use super::par::{split, tasks_for, SendPtr};
use super::tile::{self, Dims, Gemm, Offsets};
use super::{im2col, invalid, need};
use crate::cpu::pages::Paged;
use crate::CodegenError;

/// Shape of an NCDHW convolution with OIDHW weights; spatial arrays are
/// `[depth, height, width]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv3dDesc {
    pub batch: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub groups: usize,
    pub input: [usize; 3],
    pub kernel: [usize; 3],
    pub strides: [usize; 3],
    pub dilations: [usize; 3],
    pub pad_begin: [usize; 3],
    pub pad_end: [usize; 3],
}

impl Conv3dDesc {
    /// Output `[depth, height, width]` (zeros where the descriptor is invalid).
    pub fn out(&self) -> [usize; 3] {
        let p = self.plane();
        [self.out_d(), p.out_h(), p.out_w()]
    }

    fn out_d(&self) -> usize {
        let eff = (self.kernel[0].max(1) - 1).saturating_mul(self.dilations[0]) + 1;
        let padded = self.input[0] + self.pad_begin[0] + self.pad_end[0];
        if self.strides[0] == 0 || self.kernel[0] == 0 || eff > padded {
            return 0;
        }
        (padded - eff) / self.strides[0] + 1
    }

    /// The 2-D geometry of one input plane (one channel, one group).
    fn plane(&self) -> Conv2dDesc {
        Conv2dDesc {
            batch: 1,
            c_in: 1,
            h: self.input[1],
            w: self.input[2],
            c_out: 1,
            kh: self.kernel[1],
            kw: self.kernel[2],
            stride_h: self.strides[1],
            stride_w: self.strides[2],
            pad_top: self.pad_begin[1],
            pad_left: self.pad_begin[2],
            pad_bottom: self.pad_end[1],
            pad_right: self.pad_end[2],
            dilation_h: self.dilations[1],
            dilation_w: self.dilations[2],
            groups: 1,
        }
    }

    /// The 2-D geometry of the (depth, height) dimensions with the channels
    /// and groups (for the checks it shares with [`Self::plane`]).
    fn depth_height(&self) -> Conv2dDesc {
        Conv2dDesc {
            batch: self.batch,
            c_in: self.c_in,
            h: self.input[0],
            w: self.input[1],
            c_out: self.c_out,
            kh: self.kernel[0],
            kw: self.kernel[1],
            stride_h: self.strides[0],
            stride_w: self.strides[1],
            pad_top: self.pad_begin[0],
            pad_left: self.pad_begin[1],
            pad_bottom: self.pad_end[0],
            pad_right: self.pad_end[1],
            dilation_h: self.dilations[0],
            dilation_w: self.dilations[1],
            groups: self.groups,
        }
    }

    /// Checks sizes, strides, dilations, groups, that the dilated kernel fits
    /// the padded input in every dimension, and that tensor sizes fit in memory.
    pub fn validate(&self) -> Result<(), CodegenError> {
        let named = |e: CodegenError| match e {
            CodegenError::InvalidArgument { reason, .. } => invalid("Conv3d", reason),
            other => other,
        };
        self.depth_height().validate().map_err(named)?;
        self.plane().validate().map_err(named)?;
        let [od, oh, ow] = self.out();
        let taps = self.kernel.iter().product::<usize>() * (self.c_in / self.groups);
        let sizes = [
            self.batch
                .checked_mul(self.c_out)
                .and_then(|v| v.checked_mul(od * oh * ow)),
            self.c_out.checked_mul(taps),
            taps.checked_mul(oh * ow),
        ];
        if sizes
            .iter()
            .any(|s| s.is_none_or(|s| s > isize::MAX as usize / 4))
        {
            return Err(CodegenError::Overflow { operand: "conv3d" });
        }
        Ok(())
    }
}

/// A 3-D convolution ready to run: descriptor, weights, bias and activation.
#[derive(Debug, Clone)]
pub struct Conv3d {
    desc: Conv3dDesc,
    /// OIDHW: per output channel, `c_in/groups · kd · kh · kw` contiguous weights.
    weight: Paged,
    bias: Option<Vec<f32>>,
    activation: Activation,
}

impl Conv3d {
    /// Validates `desc` and keeps the OIDHW `weight` and the per-channel `bias`.
    pub fn new(
        desc: Conv3dDesc,
        weight: &[f32],
        bias: Option<&[f32]>,
        activation: Activation,
    ) -> Result<Conv3d, CodegenError> {
        desc.validate()?;
        let per = desc.c_in / desc.groups * desc.kernel.iter().product::<usize>();
        need("weight", weight.len(), desc.c_out * per)?;
        if let Some(b) = bias {
            if b.len() != desc.c_out {
                return Err(invalid(
                    "Conv3d",
                    format!("bias has {} elements, c_out is {}", b.len(), desc.c_out),
                ));
            }
        }
        Ok(Conv3d {
            desc,
            weight: Paged::copy_of(&weight[..desc.c_out * per]),
            bias: bias.map(<[f32]>::to_vec),
            activation,
        })
    }

    /// The descriptor.
    pub fn desc(&self) -> &Conv3dDesc {
        &self.desc
    }

    fn taps(&self) -> usize {
        self.desc.c_in / self.desc.groups * self.desc.kernel.iter().product::<usize>()
    }

    /// f32 scratch elements [`Conv3d::run`] needs: the column matrix of one
    /// (batch, group), in whole blocks.
    pub fn scratch_len(&self) -> usize {
        let [od, oh, ow] = self.desc.out();
        let per = block_pixels(oh, ow);
        self.taps() * od * (oh * ow).div_ceil(per) * per
    }

    /// `output` (NCDHW) = conv(`input`) + bias (+ residual), activated.
    pub fn run(
        &self,
        input: &[f32],
        residual: Option<&[f32]>,
        output: &mut [f32],
        scratch: &mut [f32],
        threads: usize,
    ) -> Result<(), CodegenError> {
        let d = &self.desc;
        if threads == 0 {
            return Err(CodegenError::ZeroThreads);
        }
        let out_len = d.batch * d.c_out * self.desc.out().iter().product::<usize>();
        let in_len = d.batch * d.c_in * d.input.iter().product::<usize>();
        need("input", input.len(), in_len)?;
        need("output", output.len(), out_len)?;
        if let Some(r) = residual {
            need("residual", r.len(), out_len)?;
        }
        need("scratch", scratch.len(), self.scratch_len())?;
        let epi = Epi {
            bias: self
                .bias
                .as_ref()
                .map_or(Bias::None, |b| Bias::Row(b.as_ptr())),
            residual: residual.map_or(std::ptr::null(), |r| r.as_ptr()),
            act: self.activation,
        };
        // SAFETY: every length was checked against the validated descriptor.
        unsafe { self.im2col(input, output, scratch, epi, threads) };
        Ok(())
    }

    /// Per (batch, group): blocks of one output depth slice each, filled and
    /// multiplied right away; threads split the blocks.
    unsafe fn im2col(
        &self,
        input: &[f32],
        output: &mut [f32],
        scratch: &mut [f32],
        epi: Epi,
        threads: usize,
    ) {
        let d = &self.desc;
        let (cig, cog, kk) = (d.c_in / d.groups, d.c_out / d.groups, self.taps());
        let [od, oh, ow] = d.out();
        let (plane_out, volume_in) = (oh * ow, d.input.iter().product::<usize>());
        let per = block_pixels(oh, ow);
        let per_slice = plane_out.div_ceil(per);
        let blocks = od * per_slice;
        let flops = 2 * cog * kk * od * plane_out;
        let (col, out) = (SendPtr(scratch.as_mut_ptr()), SendPtr(output.as_mut_ptr()));
        for b in 0..d.batch {
            for g in 0..d.groups {
                let x = &input[(b * d.c_in + g * cig) * volume_in..][..cig * volume_in];
                let base = (b * d.c_out + g * cog) * od * plane_out;
                split(blocks, tasks_for(threads, flops), |range| {
                    // Each task reuses its first block's scratch (stays in cache).
                    let first = range.start * per * kk;
                    for blk in range {
                        let (oz, j) = (blk / per_slice, blk % per_slice);
                        let (p0, p1) = (j * per, ((j + 1) * per).min(plane_out));
                        let n = p1 - p0;
                        // SAFETY: the task owns scratch[first..][..kk·per] and the
                        // output pixels of this block in this group's channels.
                        let dst =
                            unsafe { std::slice::from_raw_parts_mut(col.get().add(first), kk * n) };
                        self.fill(x, oz, p0, p1, dst);
                        let at = base + oz * plane_out + p0;
                        let gemm = Gemm {
                            a: self.weight.as_ptr().wrapping_add(g * cog * kk),
                            lda: kk,
                            panel: 0,
                            b: dst.as_ptr(),
                            ldb: n,
                            b_rows: std::ptr::null(),
                            c: out.get().wrapping_add(at),
                            ldc: od * plane_out,
                            epi: epi.offset(g * cog, 0, at),
                        };
                        let dims = Dims { m: cog, n, k: kk };
                        // SAFETY: as above; the descriptor bounds every index.
                        unsafe { tile::run(1, dims, gemm, |_| Offsets::default(), 1) };
                    }
                });
            }
        }
    }

    /// The column matrix of output slice `oz`, pixels `p0..p1` of its plane,
    /// from `x` (the group's input channels).
    fn fill(&self, x: &[f32], oz: usize, p0: usize, p1: usize, dst: &mut [f32]) {
        let d = &self.desc;
        let plane = d.plane();
        let (plane_in, n) = (d.input[1] * d.input[2], p1 - p0);
        let rows = d.kernel[1] * d.kernel[2];
        let cig = d.c_in / d.groups;
        for (t, part) in dst
            .chunks_exact_mut(rows * n)
            .enumerate()
            .take(cig * d.kernel[0])
        {
            let (ci, kz) = (t / d.kernel[0], t % d.kernel[0]);
            let iz = (oz * d.strides[0] + kz * d.dilations[0]).wrapping_sub(d.pad_begin[0]);
            if iz >= d.input[0] {
                part.fill(0.0);
                continue;
            }
            let src = &x[(ci * d.input[0] + iz) * plane_in..][..plane_in];
            im2col::fill_range(&plane, src, p0, p1, part);
        }
    }
}
