//! ConvTranspose (1-, 2- and 3-D, as 3-D with unit leading dimensions):
//! GEMM into a column buffer, then col2im scatter-add.
//!
//! Per (batch, group), with `cg = c_in/groups` input and `mg = c_out/groups`
//! output channels and `taps = kd·kh·kw`: `col[(m·taps + t), p] = Σ_c W[c, m, t] ·
//! X[c, p]` over a block of input pixels `p` (the weights are transposed to
//! `(mg·taps) × cg` rows at build time, so the GEMM reads them row-major), then
//! each column entry is added to output position `i·stride + t·dilation −
//! pad_begin` (dropped outside the output). Threads split the output channels
//! of a group, so scatters never race: a task sets its channels to the bias,
//! runs every pixel block's GEMM rows for its channels and scatters them,
//! then adds the residual and applies the activation.

use super::epilogue::{Activation, Bias, Epi};
use super::par::{split, tasks_for, SendPtr};
use super::tile::{self, Dims, Gemm, Offsets};
use super::{invalid, need};
use crate::cpu::pages::Paged;
use crate::CodegenError;

/// Shape of a ConvTranspose: `X [batch, c_in, input]`, `W [c_in, c_out/groups,
/// kernel]`, `Y [batch, c_out, out]`; spatial arrays are `[depth, height,
/// width]` (1 for absent dimensions). `out` is given (not derived), as the
/// importer resolves `output_shape`, `output_padding` and `auto_pad` into it
/// and `pad_begin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvTransposeDesc {
    pub batch: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub groups: usize,
    pub input: [usize; 3],
    pub kernel: [usize; 3],
    pub strides: [usize; 3],
    pub dilations: [usize; 3],
    pub pad_begin: [usize; 3],
    pub out: [usize; 3],
}

/// Machine-dependent block sizes of [`ConvTranspose`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvTransposeKnobs {
    /// Input pixels per GEMM block (the block's columns stay in L2).
    pub block_pixels: usize,
}

impl Default for ConvTransposeKnobs {
    fn default() -> Self {
        ConvTransposeKnobs { block_pixels: 256 }
    }
}

impl ConvTransposeDesc {
    fn taps(&self) -> usize {
        self.kernel.iter().product()
    }

    /// Checks sizes, strides, dilations and groups, and that tensor sizes fit in memory.
    pub fn validate(&self) -> Result<(), CodegenError> {
        let bad = |r: &str| Err(invalid("ConvTranspose", r.to_string()));
        let d = self;
        let dims = d.input.iter().chain(&d.kernel).chain(&d.out);
        if [d.c_in, d.c_out, d.groups].contains(&0) || dims.clone().any(|&v| v == 0) {
            return bad("channels, spatial sizes, kernel sizes and groups must be positive");
        }
        if d.strides.iter().chain(&d.dilations).any(|&v| v == 0) {
            return bad("strides and dilations must be positive");
        }
        if !d.c_in.is_multiple_of(d.groups) || !d.c_out.is_multiple_of(d.groups) {
            return bad("groups must divide c_in and c_out");
        }
        let prod = |xs: &[usize]| xs.iter().try_fold(1usize, |a, &x| a.checked_mul(x));
        let spatial = |a: [usize; 3]| prod(&a);
        let sizes = [
            spatial(d.input).and_then(|s| prod(&[s, d.batch.max(1), d.c_in])),
            spatial(d.out).and_then(|s| prod(&[s, d.batch.max(1), d.c_out])),
            prod(&[d.taps(), d.c_in, d.c_out]),
            // The reach of the last tap from the last input pixel.
            (0..3)
                .map(|i| {
                    let last = (d.input[i] - 1).checked_mul(d.strides[i]);
                    let tap = (d.kernel[i] - 1).checked_mul(d.dilations[i]);
                    last.zip(tap).and_then(|(a, b)| a.checked_add(b))
                })
                .try_fold(1usize, |a, x| x.and_then(|x| a.checked_mul(x.max(1)))),
        ];
        if sizes
            .iter()
            .any(|s| s.is_none_or(|s| s > isize::MAX as usize / 4))
        {
            return Err(CodegenError::Overflow {
                operand: "conv_transpose",
            });
        }
        Ok(())
    }
}

/// A ConvTranspose ready to run: descriptor, transposed weights, bias, activation.
#[derive(Debug, Clone)]
pub struct ConvTranspose {
    desc: ConvTransposeDesc,
    knobs: ConvTransposeKnobs,
    /// Per group, `(mg·taps) × cg` row-major: row `m·taps + t`, column `c`.
    weight_t: Paged,
    bias: Option<Vec<f32>>,
    activation: Activation,
}

impl ConvTranspose {
    /// Validates `desc` and transposes the `[c_in, c_out/groups, kernel]` weights.
    pub fn new(
        desc: ConvTransposeDesc,
        weight: &[f32],
        bias: Option<&[f32]>,
        activation: Activation,
        knobs: ConvTransposeKnobs,
    ) -> Result<ConvTranspose, CodegenError> {
        desc.validate()?;
        if knobs.block_pixels == 0 {
            return Err(invalid("ConvTranspose", "block_pixels must be positive"));
        }
        let (cg, mg, taps) = (
            desc.c_in / desc.groups,
            desc.c_out / desc.groups,
            desc.taps(),
        );
        need("weight", weight.len(), desc.c_in * mg * taps)?;
        if let Some(b) = bias {
            if b.len() != desc.c_out {
                return Err(invalid(
                    "ConvTranspose",
                    format!("bias has {} elements, c_out is {}", b.len(), desc.c_out),
                ));
            }
        }
        let rows = mg * taps;
        let mut wt = vec![0f32; desc.groups * rows * cg];
        for (c, w) in weight.chunks_exact(rows).take(desc.c_in).enumerate() {
            let (g, cl) = (c / cg, c % cg);
            for (r, &v) in w.iter().enumerate() {
                wt[(g * rows + r) * cg + cl] = v;
            }
        }
        Ok(ConvTranspose {
            desc,
            knobs,
            weight_t: Paged::copy_of(&wt),
            bias: bias.map(<[f32]>::to_vec),
            activation,
        })
    }

    /// The descriptor.
    pub fn desc(&self) -> &ConvTransposeDesc {
        &self.desc
    }

    /// f32 scratch elements [`ConvTranspose::run`] needs: one column block of a group.
    pub fn scratch_len(&self) -> usize {
        let d = &self.desc;
        let pixels: usize = d.input.iter().product();
        d.c_out / d.groups * d.taps() * self.knobs.block_pixels.min(pixels)
    }

    /// `output` (`[batch, c_out, out]`) = conv_transpose(`input`) + bias (+ residual), activated.
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
        let out_len = d.batch * d.c_out * d.out.iter().product::<usize>();
        need(
            "input",
            input.len(),
            d.batch * d.c_in * d.input.iter().product::<usize>(),
        )?;
        need("output", output.len(), out_len)?;
        if let Some(r) = residual {
            need("residual", r.len(), out_len)?;
        }
        need("scratch", scratch.len(), self.scratch_len())?;
        let (mg, taps) = (d.c_out / d.groups, d.taps());
        let pixels: usize = d.input.iter().product();
        let flops = 2 * mg * taps * (d.c_in / d.groups) * pixels;
        let tasks = tasks_for(threads, flops).min(mg);
        let (out, col) = (SendPtr(output.as_mut_ptr()), SendPtr(scratch.as_mut_ptr()));
        for b in 0..d.batch {
            for g in 0..d.groups {
                split(mg, tasks, |chans| {
                    let (m0, m1) = (g * mg + chans.start, g * mg + chans.end);
                    let plane: usize = d.out.iter().product();
                    let at = (b * d.c_out + m0) * plane;
                    // SAFETY: the task owns output channels m0..m1 of image b and
                    // the scratch rows of those channels; lengths were checked.
                    unsafe {
                        let y =
                            std::slice::from_raw_parts_mut(out.get().add(at), (m1 - m0) * plane);
                        let rows = chans.start * taps * self.block(pixels);
                        let len = (m1 - m0) * taps * self.block(pixels);
                        let c = std::slice::from_raw_parts_mut(col.get().add(rows), len);
                        self.channels(input, b, g, chans, y, c);
                        let r = residual.map(|r| &r[at..][..(m1 - m0) * plane]);
                        finish(y, r, self.activation);
                    }
                });
            }
        }
        Ok(())
    }

    fn block(&self, pixels: usize) -> usize {
        self.knobs.block_pixels.min(pixels)
    }

    /// Output channels `chans` (of group `g`) of image `b` into `y`, from the
    /// bias and every input-pixel block, using `col` for the column block.
    fn channels(
        &self,
        input: &[f32],
        b: usize,
        g: usize,
        chans: std::ops::Range<usize>,
        y: &mut [f32],
        col: &mut [f32],
    ) {
        let d = &self.desc;
        let (cg, mg, taps) = (d.c_in / d.groups, d.c_out / d.groups, d.taps());
        let plane: usize = d.out.iter().product();
        let pixels: usize = d.input.iter().product();
        for (i, ch) in y.chunks_exact_mut(plane).enumerate() {
            let m = g * mg + chans.start + i;
            ch.fill(self.bias.as_ref().map_or(0.0, |bias| bias[m]));
        }
        let x = &input[(b * d.c_in + g * cg) * pixels..][..cg * pixels];
        let rows = chans.len() * taps;
        let per = self.block(pixels);
        for p0 in (0..pixels).step_by(per) {
            let n = per.min(pixels - p0);
            let gemm = Gemm {
                a: self
                    .weight_t
                    .as_ptr()
                    .wrapping_add((g * mg * taps + chans.start * taps) * cg),
                lda: cg,
                panel: 0,
                b: x[p0..].as_ptr(),
                ldb: pixels,
                b_rows: std::ptr::null(),
                c: col.as_mut_ptr(),
                ldc: n,
                epi: Epi {
                    bias: Bias::None,
                    residual: std::ptr::null(),
                    act: Activation::None,
                },
            };
            let dims = Dims { m: rows, n, k: cg };
            // SAFETY: A has `rows` rows of cg from the task's first channel; B is
            // cg rows of the image's group channels (ldb = pixels) from p0, n
            // columns; C is `rows × n` of col (len rows·per).
            unsafe { tile::run(1, dims, gemm, |_| Offsets::default(), 1) };
            scatter(d, &col[..rows * n], n, p0, y);
        }
    }
}

/// Adds column block `col` (rows `m·taps + t` for the task's channels, `n`
/// columns for input pixels `p0..p0 + n`) into the channels' planes `y`.
fn scatter(d: &ConvTransposeDesc, col: &[f32], n: usize, p0: usize, y: &mut [f32]) {
    let [kd, kh, kw] = d.kernel;
    let [_, ih, iw] = d.input;
    let [od, oh, ow] = d.out;
    let plane = od * oh * ow;
    let reach = |i: usize, k: usize, dim: usize, o: usize| {
        let v = (i * d.strides[dim] + k * d.dilations[dim]).wrapping_sub(d.pad_begin[dim]);
        (v < o).then_some(v)
    };
    for (r, row) in col.chunks_exact(n).enumerate() {
        let (m, t) = (r / (kd * kh * kw), r % (kd * kh * kw));
        let (kz, ky, kx) = (t / (kh * kw), (t / kw) % kh, t % kw);
        let ch = &mut y[m * plane..][..plane];
        // Input columns whose output column lies inside the output: lo..hi.
        let (sx, shift) = (d.strides[2], kx * d.dilations[2]);
        let lo = d.pad_begin[2].saturating_sub(shift).div_ceil(sx).min(iw);
        let hi = (ow + d.pad_begin[2])
            .saturating_sub(shift)
            .div_ceil(sx)
            .clamp(lo, iw);
        let mut done = 0;
        while done < n {
            let p = p0 + done;
            let (iz, iy, ix0) = (p / (ih * iw), (p / iw) % ih, p % iw);
            let ix1 = iw.min(ix0 + n - done);
            let seg = &row[done..][..ix1 - ix0];
            done += ix1 - ix0;
            let (Some(oz), Some(oy)) = (reach(iz, kz, 0, od), reach(iy, ky, 1, oh)) else {
                continue;
            };
            let (a, b) = (lo.clamp(ix0, ix1), hi.clamp(ix0, ix1));
            if a == b {
                continue;
            }
            let dst = &mut ch[(oz * oh + oy) * ow..][..ow];
            let first = a * sx + shift - d.pad_begin[2];
            add_strided(&seg[a - ix0..b - ix0], &mut dst[first..], sx);
        }
    }
}

/// `dst[i·stride] += src[i]`.
fn add_strided(src: &[f32], dst: &mut [f32], stride: usize) {
    if stride == 1 {
        for (o, &v) in dst.iter_mut().zip(src) {
            *o += v;
        }
        return;
    }
    for (o, &v) in dst.iter_mut().step_by(stride).zip(src) {
        *o += v;
    }
}

/// Adds the residual and applies the activation to `y` in place.
fn finish(y: &mut [f32], residual: Option<&[f32]>, act: Activation) {
    match (residual, act) {
        (None, Activation::None) => {}
        (None, _) => y.iter_mut().for_each(|v| *v = act.apply(*v)),
        (Some(r), _) => {
            for (v, &r) in y.iter_mut().zip(r) {
                *v = act.apply(*v + r);
            }
        }
    }
}
