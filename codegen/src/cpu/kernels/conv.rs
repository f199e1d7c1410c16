//! NCHW 2-D convolution with weights prepacked at compile time.
//!
//! [`Conv2d::new`] picks the algorithm from the shape:
//! - 1×1, stride 1, no padding: per (batch, group) a GEMM `W[co, ci] · X[ci, p]`
//!   with m = c_out/groups, k = c_in/groups, n = H·W, straight on NCHW memory;
//!   ungrouped ones on small planes (e.g. 7×7) vectorize over output channels
//!   instead ([`super::pointwise_t`], AVX-512), so 49 pixels do not fill 64 lanes;
//! - depthwise (`groups == c_in == c_out`): the direct kernel of [`super::depthwise`];
//! - few input taps (`c_in·kh·kw ≤ 32`) or channels (`c_in ≤ 4`, `c_in·kh ≤ 32`;
//!   an RGB stem of any kernel size): [`super::direct`];
//! - anything else: im2col of one (batch, group) into the scratch buffer, then
//!   the same GEMM with k = c_in/groups · kh · kw;
//! - 3×3 stride 1 ([`super::winograd`], F(4×4, 3×3)) where [`ConvKnobs`]
//!   ask for it or [`ConvVariant::Auto`]'s measured rule picks it.
//!
//! [`Conv2d::with_knobs`] forces one of [`Conv2d::variants`] instead (the
//! tuner measures them).
//!
//! The bias (per output channel), residual and activation are fused into the
//! GEMM or depthwise stores.

use super::depthwise::DwKernel;
use super::epilogue::{Activation, Bias, Epi};
use super::par::{split, tasks_for, SendPtr};
use super::tile::{self, Dims, Gemm, Offsets};
use super::winograd::{self, Winograd};
use super::{depthwise, direct, im2col, invalid, need, pointwise_t};
use crate::cpu::pages::Paged;
use crate::CodegenError;
use serde::{Deserialize, Serialize};

/// The algorithm a [`Conv2d`] runs (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ConvVariant {
    /// The shape-based default (see [`Conv2d::new`]).
    #[default]
    Auto,
    /// 1×1 stride 1 unpadded: a GEMM on NCHW.
    Pointwise,
    /// `groups == c_in == c_out`: the direct depthwise kernel.
    Depthwise,
    /// Few input taps (`c_in·kh·kw` small, e.g. an RGB stem): [`direct`].
    Direct,
    /// im2col + GEMM (any descriptor).
    Im2col,
    /// Winograd F(4×4, 3×3): 3×3, stride 1, dilation 1, ungrouped.
    Winograd,
}

impl ConvVariant {
    /// Every choice, `Auto` first.
    pub const ALL: [ConvVariant; 6] = [
        ConvVariant::Auto,
        ConvVariant::Pointwise,
        ConvVariant::Depthwise,
        ConvVariant::Direct,
        ConvVariant::Im2col,
        ConvVariant::Winograd,
    ];
}

/// Tunable choices of a [`Conv2d`] (the default is today's shape-based choice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConvKnobs {
    pub variant: ConvVariant,
    /// Winograd: bytes of transformed input and output per block of tiles
    /// (about the L2 size; 1 MiB measured on a 2 MiB-L2 Xeon).
    pub winograd_block_bytes: usize,
    /// Depthwise: the kernel family of the planes.
    pub depthwise: DwKernel,
    /// Im2col (ungrouped, AVX-512): run the GEMM on the channel-vectorized
    /// small-plane kernel of the 1×1 convolutions instead of the NCHW GEMM
    /// (`None`: when its pixel rule says so, i.e. small planes that fill
    /// pixel vectors badly).
    pub channel_gemm: Option<bool>,
    /// Im2col with stride 1 (AVX-512): no column matrix; the GEMM reads
    /// the rows of `B` straight from the zero-padded input (implicit GEMM
    /// on the padded grid). `None`: where the grid's junk columns are at
    /// most a quarter of the output and the padded input is small enough
    /// to stay in cache.
    pub implicit_gemm: Option<bool>,
    /// Im2col (AVX-512): run the GEMM on 8×48 micro-tiles of the row-major
    /// weights instead of 12×32 tiles of weight panels. Default on: over the
    /// 37 non-1×1 conv layers of `../shared/models` on a Zen 5 it was 0.98–1.22×
    /// as fast at 1 thread (geomean 1.06; 1.17–1.22 on 16- and 32-channel
    /// layers) and geomean 1.16 at 2 threads (`codegen/BENCH.md`).
    pub wide_tiles: bool,
    /// Pointwise (1×1, AVX-512, on the NCHW GEMM): the same 8×48 tiles of
    /// the row-major weights instead of 12×32 tiles of weight panels. Default
    /// on: over the 122 1×1 layers of `../shared/models` on a Zen 5 it was
    /// geomean 1.05 / 1.03 as fast at 1 / 2 threads, 1.14–1.30 on planes of
    /// 56² and more, 0.93 at worst (14×14 planes, 2 threads).
    pub wide_pointwise: bool,
}

impl Default for ConvKnobs {
    fn default() -> Self {
        ConvKnobs {
            variant: ConvVariant::Auto,
            winograd_block_bytes: 1 << 20,
            depthwise: DwKernel::Auto,
            channel_gemm: None,
            implicit_gemm: None,
            wide_tiles: true,
            wide_pointwise: true,
        }
    }
}

/// Shape of an NCHW convolution with OIHW weights (`c_in / groups` input channels each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dDesc {
    pub batch: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub pad_bottom: usize,
    pub pad_right: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
    pub groups: usize,
}

impl Conv2dDesc {
    /// Output rows (0 when the descriptor is invalid).
    pub fn out_h(&self) -> usize {
        out_len(
            self.h,
            self.pad_top,
            self.pad_bottom,
            self.kh,
            self.dilation_h,
            self.stride_h,
        )
    }

    /// Output columns (0 when the descriptor is invalid).
    pub fn out_w(&self) -> usize {
        out_len(
            self.w,
            self.pad_left,
            self.pad_right,
            self.kw,
            self.dilation_w,
            self.stride_w,
        )
    }

    /// Checks sizes, strides, dilations, groups and that the dilated kernel fits
    /// in the padded input; also that tensor sizes fit in memory.
    pub fn validate(&self) -> Result<(), CodegenError> {
        let bad = |r: &str| Err(invalid("Conv2d", r.to_string()));
        let d = self;
        if [d.c_in, d.h, d.w, d.c_out, d.kh, d.kw, d.groups].contains(&0) {
            return bad("channels, spatial sizes, kernel sizes and groups must be positive");
        }
        if [d.stride_h, d.stride_w, d.dilation_h, d.dilation_w].contains(&0) {
            return bad("strides and dilations must be positive");
        }
        if !d.c_in.is_multiple_of(d.groups) || !d.c_out.is_multiple_of(d.groups) {
            return bad("groups must divide c_in and c_out");
        }
        let fits = |x: usize, p0: usize, p1: usize, k: usize, dil: usize| {
            let eff = (k - 1).checked_mul(dil).and_then(|e| e.checked_add(1));
            let padded = x.checked_add(p0).and_then(|v| v.checked_add(p1));
            matches!((eff, padded), (Some(e), Some(p)) if e <= p)
        };
        if !fits(d.h, d.pad_top, d.pad_bottom, d.kh, d.dilation_h)
            || !fits(d.w, d.pad_left, d.pad_right, d.kw, d.dilation_w)
        {
            return bad("the dilated kernel is larger than the padded input");
        }
        let total = |c: usize, s: usize| {
            [d.batch, c, s]
                .iter()
                .try_fold(1usize, |a, &x| a.checked_mul(x))
        };
        let sizes = [
            total(d.c_in, d.h.saturating_mul(d.w)),
            total(d.c_out, d.out_h().saturating_mul(d.out_w())),
            total(
                d.c_out,
                d.kh.saturating_mul(d.kw).saturating_mul(d.c_in / d.groups),
            ),
            total(
                1,
                d.kh.saturating_mul(d.kw)
                    .saturating_mul(d.c_in)
                    .saturating_mul(d.out_h().saturating_mul(d.out_w())),
            ),
        ];
        if sizes
            .iter()
            .any(|s| s.is_none_or(|s| s > isize::MAX as usize / 4))
        {
            return Err(CodegenError::Overflow { operand: "conv" });
        }
        Ok(())
    }

    /// Whether a convolution of this shape runs on the direct kernel for few
    /// input taps (an RGB stem) on this CPU.
    pub fn runs_direct(&self) -> bool {
        let depthwise = self.groups == self.c_in && self.groups == self.c_out;
        !self.is_pointwise() && !depthwise && direct::wanted(self) && super::use_avx512()
    }

    fn is_pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.stride_h == 1
            && self.stride_w == 1
            && [self.pad_top, self.pad_left, self.pad_bottom, self.pad_right] == [0; 4]
    }
}

/// Today's shape-based choice (see the module doc).
fn auto_algo(desc: &Conv2dDesc) -> Algo {
    if desc.is_pointwise() {
        Algo::Pointwise
    } else if desc.groups == desc.c_in && desc.groups == desc.c_out {
        Algo::Depthwise
    } else if cfg!(target_arch = "x86_64") && direct::wanted(desc) {
        Algo::Direct
    } else if winograd_wins(desc) {
        Algo::Winograd
    } else {
        Algo::Im2col
    }
}

/// Whether [`ConvVariant::Auto`] takes Winograd for `desc` (3×3 stride 1):
/// at least [`WINOGRAD_MIN_C_IN`] input and at most [`WINOGRAD_MAX_C_OUT`]
/// output channels, on an input plane that is not a multiple of 1024 floats.
///
/// Measured basis (`benches/conv_layers.rs`, all 33 dense 3×3 stride-1
/// layers of `../shared/models`, 2-core Xeon, 1 and 2 threads, loaded
/// machine; BENCH.md "Winograd F(4×4, 3×3) as a conv variant"), then in the
/// models (`kiln bench --profile`): DenseNet's 128→32 at 56², 28², 14², 7²
/// win at both thread counts in the layer bench (1.5-6×) and in the model
/// (DenseNet 1 thread about 0.8× the time). GoogLeNet's 96→128, 128→192 at
/// 28² and 64→192 at 56² won in the layer bench but lost 16-36% in the
/// model at 2 threads (their transformed weights, 4× the 3×3 weights, are
/// no longer in cache), hence at most 64 output channels. Many output
/// channels lose outright (128→256 at 14²: 5× slower); few input channels
/// lose to the transforms (16→32 at 28², 32→32 at 64²); planes of 1024·n
/// floats lose because the 16 channel planes of one gather are 4 KiB apart,
/// one L1 set (96→32 at 64²: 2.4× slower). The tuner can take Winograd
/// elsewhere through [`ConvKnobs::variant`].
fn winograd_wins(desc: &Conv2dDesc) -> bool {
    winograd::refusal(desc).is_none()
        && desc.c_in >= WINOGRAD_MIN_C_IN
        && desc.c_out <= WINOGRAD_MAX_C_OUT
        && !(desc.h * desc.w).is_multiple_of(1024)
}

/// Fewest input channels for which [`ConvVariant::Auto`] takes Winograd.
const WINOGRAD_MIN_C_IN: usize = 64;

/// Most output channels for which [`ConvVariant::Auto`] takes Winograd.
const WINOGRAD_MAX_C_OUT: usize = 64;

/// Why `variant` cannot run the (valid) `desc`, or `None` if it can.
fn refusal(desc: &Conv2dDesc, variant: ConvVariant) -> Option<&'static str> {
    let depthwise = desc.groups == desc.c_in && desc.groups == desc.c_out;
    match variant {
        ConvVariant::Auto | ConvVariant::Im2col => None,
        ConvVariant::Pointwise => {
            (!desc.is_pointwise()).then_some("it is not a 1x1 stride-1 unpadded convolution")
        }
        ConvVariant::Depthwise => (!depthwise).then_some("it is not depthwise"),
        ConvVariant::Direct => {
            let runs = cfg!(target_arch = "x86_64") && direct::possible(desc);
            (!runs || depthwise || desc.is_pointwise())
                .then_some("it is not a convolution with few input rows (the direct kernel's)")
        }
        ConvVariant::Winograd => winograd::refusal(desc),
    }
}

fn out_len(x: usize, p0: usize, p1: usize, k: usize, dil: usize, stride: usize) -> usize {
    let eff = k.saturating_sub(1).saturating_mul(dil).saturating_add(1);
    let padded = x.saturating_add(p0).saturating_add(p1);
    if stride == 0 || k == 0 || eff > padded {
        return 0;
    }
    (padded - eff) / stride + 1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algo {
    Pointwise,
    Depthwise,
    /// Few input taps (see [`direct`]); im2col where AVX-512 is missing.
    Direct,
    Im2col,
    Winograd,
}

/// A convolution ready to run: descriptor, weights, bias and activation.
#[derive(Debug, Clone)]
pub struct Conv2d {
    desc: Conv2dDesc,
    algo: Algo,
    /// OIHW: per output channel, `c_in/groups · kh · kw` contiguous weights.
    weight: Paged,
    /// Ungrouped 1×1 convolutions on small planes: the weights packed for
    /// [`pointwise_t`] (channel-vectorized, AVX-512 only).
    weight_t: Option<Paged>,
    /// Ungrouped 1×1 convolutions on AVX-512 (but not [`pointwise_t`]'s): the
    /// weights in the GEMM's row panels (see [`tile::pack_panels`]; measured
    /// about 10% faster than broadcasting from 12 strided rows on MobileNetV2's
    /// 14×14 layers, 1 thread).
    weight_panels: Option<Paged>,
    /// [`Algo::Direct`]: the weights packed for [`direct`] (else empty).
    weight_direct: Paged,
    /// Depthwise 3×3 "same" planes: the flattened kernel's load masks (else empty).
    flat_masks: Vec<[u16; 9]>,
    /// Depthwise: the kernel family (resolved per plane context).
    dw_kernel: DwKernel,
    /// Implicit-GEMM im2col: per column-matrix row, its offset into one
    /// group's padded input (empty: not used).
    implicit_rows: Vec<usize>,
    /// [`Algo::Winograd`]: the transformed weights.
    winograd: Option<Winograd>,
    /// Im2col or pointwise: the GEMM runs on [`tile::Shape::Wide`] tiles of
    /// the row-major weights.
    wide: bool,
    bias: Option<Vec<f32>>,
    activation: Activation,
}

impl Conv2d {
    /// Validates `desc` and packs the OIHW `weight` and the per-channel
    /// `bias`, with the default [`ConvKnobs`].
    pub fn new(
        desc: Conv2dDesc,
        weight: &[f32],
        bias: Option<&[f32]>,
        activation: Activation,
    ) -> Result<Conv2d, CodegenError> {
        Self::with_knobs(desc, weight, bias, activation, ConvKnobs::default())
    }

    /// Whether im2col runs its GEMM on the channel-vectorized kernel when
    /// [`ConvKnobs::channel_gemm`] leaves it open (ungrouped, AVX-512, and
    /// output planes that fill pixel vectors badly).
    pub fn channel_gemm_default(desc: &Conv2dDesc) -> bool {
        desc.groups == 1 && super::use_avx512() && pointwise_t::wanted(desc.out_h() * desc.out_w())
    }

    /// The micro-tile shape of the im2col or pointwise GEMM.
    fn shape(&self) -> tile::Shape {
        match self.wide {
            true => tile::Shape::Wide,
            false => tile::Shape::Tall,
        }
    }

    /// Whether stride-1 im2col runs as an implicit GEMM when
    /// [`ConvKnobs::implicit_gemm`] leaves it open; `None` where it cannot.
    pub fn implicit_gemm_default(desc: &Conv2dDesc) -> Option<bool> {
        Padded::grid(desc)
            .filter(|_| super::use_avx512())
            .map(|_| !implicit_rows(desc, None).is_empty())
    }

    /// The variants that can run `desc` (never [`ConvVariant::Auto`]), for a
    /// tuner to measure; empty if `desc` is invalid.
    pub fn variants(desc: &Conv2dDesc) -> Vec<ConvVariant> {
        use ConvVariant::*;
        if desc.validate().is_err() {
            return Vec::new();
        }
        [Pointwise, Depthwise, Direct, Im2col, Winograd]
            .into_iter()
            .filter(|&v| refusal(desc, v).is_none())
            .collect()
    }

    /// As [`Conv2d::new`] with `knobs`; an error when `knobs.variant` cannot run `desc`.
    pub fn with_knobs(
        desc: Conv2dDesc,
        weight: &[f32],
        bias: Option<&[f32]>,
        activation: Activation,
        knobs: ConvKnobs,
    ) -> Result<Conv2d, CodegenError> {
        desc.validate()?;
        let per = desc.c_in / desc.groups * desc.kh * desc.kw;
        need("weight", weight.len(), desc.c_out * per)?;
        if let Some(b) = bias {
            if b.len() != desc.c_out {
                return Err(invalid(
                    "Conv2d",
                    format!("bias has {} elements, c_out is {}", b.len(), desc.c_out),
                ));
            }
        }
        if let Some(why) = refusal(&desc, knobs.variant) {
            return Err(invalid(
                "Conv2d",
                format!("variant {:?} cannot run {desc:?}: {why}", knobs.variant),
            ));
        }
        let algo = match knobs.variant {
            ConvVariant::Auto => auto_algo(&desc),
            ConvVariant::Pointwise => Algo::Pointwise,
            ConvVariant::Depthwise => Algo::Depthwise,
            ConvVariant::Direct => Algo::Direct,
            ConvVariant::Im2col => Algo::Im2col,
            ConvVariant::Winograd => Algo::Winograd,
        };
        tracing::debug!(?desc, ?algo, "Conv2d");
        let channel_gemm = match algo {
            Algo::Pointwise => desc.groups == 1 && pointwise_t::wanted(desc.h * desc.w),
            Algo::Im2col => {
                let auto = Self::channel_gemm_default(&desc);
                desc.groups == 1 && super::use_avx512() && knobs.channel_gemm.unwrap_or(auto)
            }
            _ => false,
        };
        let weight_t =
            channel_gemm.then(|| Paged::copy_of(&pointwise_t::pack(weight, desc.c_out, per)));
        let wide = weight_t.is_none()
            && super::use_avx512()
            && match algo {
                Algo::Im2col => knobs.wide_tiles,
                Algo::Pointwise => knobs.wide_pointwise,
                _ => false,
            };
        // Not for the small planes that run on pointwise_t (one packed copy each).
        let weight_panels = match algo {
            Algo::Pointwise if desc.groups == 1 && weight_t.is_none() && super::use_avx512() => {
                Some(Paged::copy_of(&tile::pack_panels(
                    weight, desc.c_out, desc.c_in,
                )))
            }
            Algo::Im2col if super::use_avx512() && weight_t.is_none() && !wide => {
                Some(Paged::copy_of(&group_panels(&desc, weight)))
            }
            _ => None,
        };
        #[cfg(target_arch = "x86_64")]
        let flat_masks = match algo {
            Algo::Depthwise if knobs.depthwise.resolve(&desc) == DwKernel::Masked => {
                super::depthwise_flat::masks(&desc)
            }
            _ => Vec::new(),
        };
        #[cfg(not(target_arch = "x86_64"))]
        let flat_masks = Vec::new();
        Ok(Conv2d {
            desc,
            algo,
            flat_masks,
            dw_kernel: knobs.depthwise.resolve(&desc),
            implicit_rows: match algo == Algo::Im2col && weight_t.is_none() {
                true => implicit_rows(&desc, knobs.implicit_gemm),
                false => Vec::new(),
            },
            winograd: (algo == Algo::Winograd)
                .then(|| Winograd::new(&desc, weight, knobs.winograd_block_bytes)),
            wide,
            weight_direct: match algo {
                Algo::Direct => Paged::copy_of(&direct::pack(&desc, weight)),
                _ => Paged::copy_of(&[]),
            },
            weight: Paged::copy_of(&weight[..desc.c_out * per]),
            weight_t,
            weight_panels,
            bias: bias.map(<[f32]>::to_vec),
            activation,
        })
    }

    /// The descriptor.
    pub fn desc(&self) -> &Conv2dDesc {
        &self.desc
    }

    /// The variant this convolution runs (what [`ConvVariant::Auto`] resolved to).
    pub fn variant(&self) -> ConvVariant {
        match self.algo {
            Algo::Pointwise => ConvVariant::Pointwise,
            Algo::Depthwise => ConvVariant::Depthwise,
            Algo::Direct => ConvVariant::Direct,
            Algo::Im2col => ConvVariant::Im2col,
            Algo::Winograd => ConvVariant::Winograd,
        }
    }

    /// How im2col runs its GEMM: `channels` (channel-vectorized small-plane
    /// kernel), `implicit` (rows read from the padded input) or `matrix`
    /// (a column matrix); meaningful for im2col only.
    pub fn im2col_kind(&self) -> &'static str {
        if self.weight_t.is_some() {
            "channels"
        } else if !self.implicit_rows.is_empty() && super::use_avx512() {
            "implicit"
        } else {
            "matrix"
        }
    }

    /// Whether the im2col or pointwise GEMM runs on 8×48 tiles (see
    /// [`ConvKnobs::wide_tiles`], [`ConvKnobs::wide_pointwise`]).
    pub fn wide_tiles(&self) -> bool {
        self.wide
    }

    /// The depthwise kernel family (resolved; meaningful for depthwise only).
    pub fn depthwise_kernel(&self) -> DwKernel {
        self.dw_kernel
    }

    /// The GEMM's `A` operand (this 1×1 convolution's weights) from output
    /// channel `row0` and input channel `k0` on: `(pointer, lda, panel)` as in
    /// [`Gemm`], in panels where they exist and `row0` starts one.
    pub(crate) fn gemm_a(&self, row0: usize, k0: usize) -> (*const f32, usize, usize) {
        let k = self.desc.c_in / self.desc.groups;
        match &self.weight_panels {
            Some(p) if row0.is_multiple_of(tile::MR) && self.algo == Algo::Pointwise => {
                let panel = k * tile::MR;
                let at = row0 / tile::MR * panel + k0 * tile::MR;
                (p.as_ptr().wrapping_add(at), k, panel)
            }
            _ => (self.weight.as_ptr().wrapping_add(row0 * k + k0), k, 0),
        }
    }

    /// The weights packed for [`pointwise_t`], where this convolution uses it.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn weights_t(&self) -> Option<&[f32]> {
        self.weight_t.as_deref().filter(|_| super::use_avx512())
    }

    /// The bias, residual and activation as raw pointers.
    pub(crate) fn epi(&self, residual: Option<&[f32]>) -> Epi {
        Epi {
            bias: self
                .bias
                .as_ref()
                .map_or(Bias::None, |b| Bias::Row(b.as_ptr())),
            residual: residual.map_or(std::ptr::null(), |r| r.as_ptr()),
            act: self.activation,
        }
    }

    /// Whether this convolution runs on the direct kernel (see [`direct`]).
    pub(crate) fn is_direct(&self) -> bool {
        self.algo == Algo::Direct && super::use_avx512()
    }

    /// Direct only: output rows `rows` of every channel of image `x`, bias
    /// and activation applied, into `y` with channel stride `plane`.
    ///
    /// # Safety
    /// As [`direct::rows`].
    #[cfg(target_arch = "x86_64")]
    pub(crate) unsafe fn direct_rows(
        &self,
        x: *const f32,
        rows: std::ops::Range<usize>,
        y: *mut f32,
        plane: usize,
    ) {
        debug_assert!(self.is_direct());
        let epi = self.epi(None);
        direct::rows(&self.desc, &self.weight_direct, x, y, plane, &epi, rows)
    }

    /// What the planes of a depthwise convolution share (see [`Self::depthwise_rows`]).
    pub(crate) fn plane_ctx(&self) -> depthwise::PlaneCtx {
        depthwise::PlaneCtx::new(&self.desc, self.dw_kernel)
    }

    /// Depthwise only: output rows `rows` of plane `t` (batch·c_out + channel),
    /// with bias and activation, from the input plane at `x` into `y` (the
    /// output's origin).
    ///
    /// # Safety
    /// As [`depthwise::plane_rows`].
    pub(crate) unsafe fn depthwise_rows(
        &self,
        ctx: &depthwise::PlaneCtx,
        x: *const f32,
        t: usize,
        rows: std::ops::Range<usize>,
        y: *mut f32,
    ) {
        debug_assert_eq!(self.algo, Algo::Depthwise);
        let epi = self.epi(None);
        let (d, w, flat) = (&self.desc, &self.weight, &self.flat_masks);
        depthwise::plane_rows(d, ctx, x, w, t, rows, y, &epi, flat)
    }

    /// f32 scratch elements [`Conv2d::run`] needs (the im2col matrix of one group), 0 if none.
    pub fn scratch_len(&self) -> usize {
        let d = &self.desc;
        match self.algo {
            Algo::Direct if super::use_avx512() => 0,
            Algo::Winograd => self.winograd.as_ref().map_or(0, |w| w.scratch_len(d)),
            Algo::Direct | Algo::Im2col => {
                let cols = d.c_in / d.groups * d.kh * d.kw * d.out_h() * d.out_w();
                let implicit = match self.implicit_rows.is_empty() {
                    true => 0,
                    false => Padded::grid(d).map_or(0, |p| p.implicit_len(d)),
                };
                cols.max(Padded::of(d).map_or(0, |p| p.scratch_len(d)))
                    .max(implicit)
            }
            _ => 0,
        }
    }

    /// `output` (NCHW: batch, c_out, out_h, out_w) = conv(`input`) + bias (+ residual), activated.
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
        let out_len = d.batch * d.c_out * d.out_h() * d.out_w();
        need("input", input.len(), d.batch * d.c_in * d.h * d.w)?;
        need("output", output.len(), out_len)?;
        if let Some(r) = residual {
            need("residual", r.len(), out_len)?;
        }
        need("scratch", scratch.len(), self.scratch_len())?;
        let epi = self.epi(residual);
        // SAFETY: every length was checked against the validated descriptor.
        unsafe {
            match self.algo {
                #[cfg(target_arch = "x86_64")]
                Algo::Pointwise if self.weight_t.is_some() && super::use_avx512() => {
                    let s = pointwise_t::Shape {
                        batch: d.batch,
                        m: d.c_out,
                        n: d.h * d.w,
                        k: d.c_in,
                    };
                    let wt = self.weight_t.as_deref().unwrap_or_default();
                    pointwise_t::run(s, wt, input, output, epi, threads)
                }
                Algo::Pointwise => self.pointwise(input, output, epi, threads),
                Algo::Depthwise => {
                    let (w, flat) = (&self.weight, &self.flat_masks);
                    depthwise::run(d, input, w, output, epi, flat, self.dw_kernel, threads)
                }
                #[cfg(target_arch = "x86_64")]
                Algo::Direct if super::use_avx512() => {
                    direct::run(d, &self.weight_direct, input, output, epi, threads)
                }
                Algo::Direct | Algo::Im2col => self.im2col(input, output, scratch, epi, threads),
                Algo::Winograd => match &self.winograd {
                    Some(w) => w.run(d, input, output, scratch, epi, threads),
                    None => unreachable!("Winograd convolutions hold their weights"),
                },
            }
        }
        Ok(())
    }

    /// All (batch, group) GEMMs of a 1×1 convolution as one tiled batch.
    unsafe fn pointwise(&self, input: &[f32], output: &mut [f32], epi: Epi, threads: usize) {
        let d = &self.desc;
        let (cig, cog, hw) = (d.c_in / d.groups, d.c_out / d.groups, d.h * d.w);
        // Panels only without groups: group offsets below are row-major.
        // Panels (kept for the conv pair kernels) unless on wide tiles.
        let (a, lda, panel) = match (d.groups, self.wide) {
            (1, false) => self.gemm_a(0, 0),
            _ => (self.weight.as_ptr(), cig, 0),
        };
        let base = Gemm {
            a,
            lda,
            panel,
            b: input.as_ptr(),
            ldb: hw,
            b_rows: std::ptr::null(),
            c: output.as_mut_ptr(),
            ldc: hw,
            epi,
        };
        let offs = |t: usize| {
            let (b, g) = (t / d.groups, t % d.groups);
            Offsets {
                a: g * cog * cig,
                b: (b * d.c_in + g * cig) * hw,
                c: (b * d.c_out + g * cog) * hw,
                row: g * cog,
                col: 0,
            }
        };
        tile::run_shaped(
            d.batch * d.groups,
            Dims {
                m: cog,
                n: hw,
                k: cig,
            },
            base,
            offs,
            threads,
            self.shape(),
        );
    }

    /// Per (batch, group): blocks of output pixels (whole rows where rows are
    /// narrower than [`BLOCK_COLS`], else [`BLOCK_COLS`] pixels, e.g. of a 1-D
    /// convolution's single row), each filled by im2col into its part of
    /// `scratch` and multiplied right away; threads split the blocks.
    unsafe fn im2col(
        &self,
        input: &[f32],
        output: &mut [f32],
        scratch: &mut [f32],
        epi: Epi,
        threads: usize,
    ) {
        #[cfg(target_arch = "x86_64")]
        if let (Algo::Im2col, Some(wt)) = (self.algo, self.weights_t()) {
            return self.im2col_channels(input, output, scratch, wt, epi, threads);
        }
        #[cfg(target_arch = "x86_64")]
        if let (false, true, Some(p)) = (
            self.implicit_rows.is_empty(),
            super::use_avx512(),
            Padded::grid(&self.desc),
        ) {
            return self.im2col_implicit(&p, input, output, scratch, epi, threads);
        }
        let d = &self.desc;
        let (cig, cog) = (d.c_in / d.groups, d.c_out / d.groups);
        let (hw, oh, ow, kk) = (d.h * d.w, d.out_h(), d.out_w(), cig * d.kh * d.kw);
        let pixels = oh * ow;
        let tasks = tasks_for(threads, 2 * cog * kk * pixels);
        let per = balanced_block(pixels, block_pixels(oh, ow), tasks);
        let blocks = pixels.div_ceil(per);
        let whole = tasks > blocks;
        let (col, out) = (SendPtr(scratch.as_mut_ptr()), SendPtr(output.as_mut_ptr()));
        for b in 0..d.batch {
            for g in 0..d.groups {
                let x = &input[(b * d.c_in + g * cig) * hw..][..cig * hw];
                let base = (b * d.c_out + g * cog) * pixels;
                if whole {
                    // Fewer pixel blocks than tasks (small planes): every task
                    // fills part of one column matrix, then all share its GEMM;
                    // without a residual, on the padded grid (no fill per row).
                    match Padded::of(d).filter(|p| epi.residual.is_null() && p.pays(d)) {
                        Some(p) => self.im2col_padded(&p, x, (g, base), (col, out), epi, threads),
                        None => self.im2col_whole(x, (g, base), (col, out), epi, threads),
                    }
                    continue;
                }
                split(blocks, tasks, |range| {
                    // The task's blocks reuse the scratch of its first block, so
                    // the column matrix stays in cache (no stream of misses).
                    let first = range.start * per * kk;
                    for blk in range {
                        let (p0, p1) = (blk * per, ((blk + 1) * per).min(pixels));
                        let n = p1 - p0;
                        // SAFETY: the task owns scratch[first..][..kk·per] (its first
                        // block's) and the output columns p0..p1 of this group's channels.
                        let dst =
                            unsafe { std::slice::from_raw_parts_mut(col.get().add(first), kk * n) };
                        im2col::fill_range(d, x, p0, p1, dst);
                        let gemm = self.im2col_gemm(
                            g,
                            dst.as_ptr(),
                            n,
                            out.get().wrapping_add(base + p0),
                            epi.offset(g * cog, 0, base + p0),
                        );
                        // SAFETY: as above; the descriptor bounds every index.
                        unsafe {
                            tile::run_shaped(
                                1,
                                Dims { m: cog, n, k: kk },
                                gemm,
                                |_| Offsets::default(),
                                1,
                                self.shape(),
                            )
                        };
                    }
                });
            }
        }
    }

    /// Stride-1 im2col as an implicit GEMM, per (batch, group): the input
    /// zero-padded once (tasks split channels), one GEMM over the padded
    /// grid whose `B` rows are shifted views of it ([`Gemm::b_rows`]) into a
    /// grid scratch, then the valid columns copied out with the epilogue.
    ///
    /// # Safety
    /// As [`Conv2d::im2col`]; `scratch` holds [`Padded::implicit_len`].
    #[cfg(target_arch = "x86_64")]
    unsafe fn im2col_implicit(
        &self,
        p: &Padded,
        input: &[f32],
        output: &mut [f32],
        scratch: &mut [f32],
        epi: Epi,
        threads: usize,
    ) {
        let d = &self.desc;
        let (cig, cog, kk) = (
            d.c_in / d.groups,
            d.c_out / d.groups,
            self.implicit_rows.len(),
        );
        let (hw, pixels, plane) = (d.h * d.w, d.out_h() * d.out_w(), p.h * p.w);
        let padded = SendPtr(scratch.as_mut_ptr());
        let grid = SendPtr(scratch.as_mut_ptr().add(cig * plane));
        let out = SendPtr(output.as_mut_ptr());
        let raw = Epi {
            bias: Bias::None,
            residual: std::ptr::null(),
            act: Activation::None,
        };
        for b in 0..d.batch {
            for g in 0..d.groups {
                let x = &input[(b * d.c_in + g * cig) * hw..][..cig * hw];
                split(cig, threads.min(cig), |chans| {
                    for c in chans {
                        // SAFETY: channel c's padded plane belongs to this task.
                        let dst = unsafe {
                            std::slice::from_raw_parts_mut(padded.get().add(c * plane), plane)
                        };
                        p.pad_channel(d, &x[c * hw..][..hw], dst);
                    }
                });
                let gemm = Gemm {
                    ldc: p.n,
                    ldb: 0,
                    b_rows: self.implicit_rows.as_ptr(),
                    ..self.im2col_gemm(g, padded.get(), p.n, grid.get(), raw)
                };
                let dims = Dims {
                    m: cog,
                    n: p.n,
                    k: kk,
                };
                // SAFETY: every row offset plus grid column lies in the padded
                // input (stride 1: out_h + (kh−1)·dil = padded height).
                unsafe {
                    tile::run_shaped(1, dims, gemm, |_| Offsets::default(), threads, self.shape())
                };
                let base = (b * d.c_out + g * cog) * pixels;
                let e = epi.offset(g * cog, 0, 0);
                split(cog, threads.min(cog), |chans| {
                    for co in chans {
                        // SAFETY: output channel co of this group belongs to this task.
                        unsafe {
                            grid_out(d, p, grid.get().add(co * p.n), out.get(), &e, co, base)
                        };
                    }
                });
            }
        }
    }

    /// Ungrouped im2col on the channel-vectorized kernel: per image, the
    /// whole column matrix (tasks split its rows), then one
    /// [`pointwise_t::run`] with `K = c_in·kh·kw`.
    ///
    /// # Safety
    /// As [`Conv2d::im2col`]; `wt` is [`pointwise_t::pack`] of the weights.
    unsafe fn im2col_channels(
        &self,
        input: &[f32],
        output: &mut [f32],
        scratch: &mut [f32],
        wt: &[f32],
        epi: Epi,
        threads: usize,
    ) {
        let d = &self.desc;
        let (hw, pixels, kk) = (d.h * d.w, d.out_h() * d.out_w(), d.c_in * d.kh * d.kw);
        let col = SendPtr(scratch.as_mut_ptr());
        for b in 0..d.batch {
            let x = &input[b * d.c_in * hw..][..d.c_in * hw];
            fill_matrix(d, x, col, threads);
            let s = pointwise_t::Shape {
                batch: 1,
                m: d.c_out,
                n: pixels,
                k: kk,
            };
            let y = &mut output[b * d.c_out * pixels..][..d.c_out * pixels];
            let e = epi.offset(0, 0, b * d.c_out * pixels);
            pointwise_t::run(s, wt, &scratch[..kk * pixels], y, e, threads);
        }
    }

    /// One (batch, group) as a single column matrix filled by all tasks
    /// (split by rows) and one GEMM split over the tasks.
    ///
    /// # Safety
    /// `col` holds the whole column matrix; `out` is the output buffer and
    /// `base` this (batch, group)'s first output element in it.
    unsafe fn im2col_whole(
        &self,
        x: &[f32],
        (g, base): (usize, usize),
        (col, out): (SendPtr<f32>, SendPtr<f32>),
        epi: Epi,
        threads: usize,
    ) {
        let d = &self.desc;
        let (cog, kk, pixels) = (
            d.c_out / d.groups,
            d.c_in / d.groups * d.kh * d.kw,
            d.out_h() * d.out_w(),
        );
        fill_matrix(d, x, col, threads);
        let gemm = self.im2col_gemm(
            g,
            col.get(),
            pixels,
            out.get().wrapping_add(base),
            epi.offset(g * cog, 0, base),
        );
        let dims = Dims {
            m: cog,
            n: pixels,
            k: kk,
        };
        // SAFETY: the column matrix is filled; the descriptor bounds every index.
        unsafe { tile::run_shaped(1, dims, gemm, |_| Offsets::default(), threads, self.shape()) };
    }

    /// One (batch, group) of a stride-1 convolution on the padded grid: the
    /// input is padded once, so each column-matrix row is one contiguous
    /// slice of it (`n = (oh − 1)·W' + ow` columns, `W' − ow` of every `W'`
    /// junk); the GEMM writes that grid to scratch and the valid columns are
    /// copied out. No residual (its layout is the output's).
    ///
    /// # Safety
    /// As [`Conv2d::im2col_whole`]; `col` holds [`Padded::scratch_len`] elements.
    unsafe fn im2col_padded(
        &self,
        p: &Padded,
        x: &[f32],
        (g, base): (usize, usize),
        (col, out): (SendPtr<f32>, SendPtr<f32>),
        epi: Epi,
        threads: usize,
    ) {
        let d = &self.desc;
        let (cig, cog, kk) = (
            d.c_in / d.groups,
            d.c_out / d.groups,
            d.c_in / d.groups * d.kh * d.kw,
        );
        let (ow, pixels, plane) = (d.out_w(), d.out_h() * d.out_w(), p.h * p.w);
        let cols = col;
        let padded = SendPtr(col.get().add(kk * p.n));
        let grid = SendPtr(col.get().add(kk * p.n + cig * plane));
        split(cig, threads.min(cig), |chans| {
            for c in chans {
                // SAFETY: channel c's padded plane belongs to this task.
                let dst =
                    unsafe { std::slice::from_raw_parts_mut(padded.get().add(c * plane), plane) };
                p.pad_channel(d, &x[c * d.h * d.w..][..d.h * d.w], dst);
            }
        });
        split(kk, threads.min(kk), |rows| {
            for r in rows {
                let (ci, ky, kx) = (r / (d.kh * d.kw), (r / d.kw) % d.kh, r % d.kw);
                let at = ci * plane + ky * d.dilation_h * p.w + kx * d.dilation_w;
                // SAFETY: row r belongs to this task; at + n <= cig·plane (see Padded).
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        padded.get().add(at),
                        cols.get().add(r * p.n),
                        p.n,
                    )
                };
            }
        });
        let gemm = Gemm {
            ldc: p.n,
            ..self.im2col_gemm(g, cols.get(), p.n, grid.get(), epi.offset(g * cog, 0, 0))
        };
        // SAFETY: the column matrix is filled; the grid holds cog·n elements.
        unsafe {
            tile::run_shaped(
                1,
                Dims {
                    m: cog,
                    n: p.n,
                    k: kk,
                },
                gemm,
                |_| Offsets::default(),
                threads,
                self.shape(),
            )
        };
        split(cog, threads.min(cog), |chans| {
            for co in chans {
                for oy in 0..d.out_h() {
                    // SAFETY: output row (co, oy) belongs to this task; the grid row is inside.
                    unsafe {
                        let src = grid.get().add(co * p.n + oy * p.w);
                        let dst = out.get().add(base + co * pixels + oy * ow);
                        std::ptr::copy_nonoverlapping(src, dst, ow);
                    }
                }
            }
        });
    }

    /// The GEMM of group `g` over a column matrix `b` of `n` columns.
    fn im2col_gemm(&self, g: usize, b: *const f32, n: usize, c: *mut f32, epi: Epi) -> Gemm {
        let d = &self.desc;
        let (cog, kk) = (d.c_out / d.groups, d.c_in / d.groups * d.kh * d.kw);
        let (a, panel) = match &self.weight_panels {
            Some(p) => (
                p.as_ptr()
                    .wrapping_add(g * cog.div_ceil(tile::MR) * kk * tile::MR),
                kk * tile::MR,
            ),
            None => (self.weight.as_ptr().wrapping_add(g * cog * kk), 0),
        };
        Gemm {
            a,
            lda: kk,
            panel,
            b,
            ldb: n,
            b_rows: std::ptr::null(),
            c,
            ldc: d.out_h() * d.out_w(),
            epi,
        }
    }
}

/// How much a filled column-matrix element costs, in junk-column GEMM
/// columns times output channels (default fitted on a 2-core Xeon, 2
/// threads: 128→32 3×3 at 14×14 and 7×7 gain 13% and 13%, 160→320 at
/// 14×14 loses 18% on the padded grid). A tuner knob.
const PADDED_GRID_GAIN: usize = 12;

/// The padded grid of a stride-1 convolution (see [`Conv2d::im2col_padded`]).
struct Padded {
    /// Padded plane rows and columns.
    h: usize,
    w: usize,
    /// Columns of the grid GEMM: `(out_h − 1)·w + out_w`.
    n: usize,
}

impl Padded {
    /// The grid of a stride-1 convolution whose output is one im2col block
    /// (so its scratch is only reserved where the grid can be used).
    fn of(d: &Conv2dDesc) -> Option<Padded> {
        let (oh, ow) = (d.out_h(), d.out_w());
        if d.stride_h != 1
            || d.stride_w != 1
            || oh == 0
            || ow == 0
            || oh * ow > block_pixels(oh, ow)
        {
            return None;
        }
        let (h, w) = (
            d.h + d.pad_top + d.pad_bottom,
            d.w + d.pad_left + d.pad_right,
        );
        Some(Padded {
            h,
            w,
            n: (d.out_h() - 1) * w + d.out_w(),
        })
    }

    /// The grid of any stride-1 convolution (the implicit GEMM's).
    fn grid(d: &Conv2dDesc) -> Option<Padded> {
        let (oh, ow) = (d.out_h(), d.out_w());
        if d.stride_h != 1 || d.stride_w != 1 || oh == 0 || ow == 0 {
            return None;
        }
        let w = d.w + d.pad_left + d.pad_right;
        Some(Padded {
            h: d.h + d.pad_top + d.pad_bottom,
            w,
            n: (oh - 1) * w + ow,
        })
    }

    /// Padded input and output grid of one group (the implicit GEMM's scratch).
    fn implicit_len(&self, d: &Conv2dDesc) -> usize {
        (d.c_out + d.c_in) / d.groups * self.h * self.w
    }

    /// True when the junk columns cost less than the per-row fill they save:
    /// `out_channels · junk < PADDED_GRID_GAIN · pixels`.
    fn pays(&self, d: &Conv2dDesc) -> bool {
        let pixels = d.out_h() * d.out_w();
        d.c_out / d.groups * (self.n - pixels) < PADDED_GRID_GAIN * pixels
    }

    /// Column matrix, padded input and output grid of one group.
    fn scratch_len(&self, d: &Conv2dDesc) -> usize {
        let (cig, cog) = (d.c_in / d.groups, d.c_out / d.groups);
        (cig * d.kh * d.kw + cog) * self.n + cig * self.h * self.w
    }

    /// One channel's plane, zero-padded.
    fn pad_channel(&self, d: &Conv2dDesc, x: &[f32], dst: &mut [f32]) {
        dst.fill(0.0);
        for (iy, row) in x.chunks_exact(d.w).enumerate() {
            let at = (iy + d.pad_top) * self.w + d.pad_left;
            dst[at..at + d.w].copy_from_slice(row);
        }
    }
}

/// Largest padded input (bytes, one group) the implicit GEMM takes by
/// default: its `B` rows are read straight from it, so it should stay in
/// L2 (measured on a Zen 5 with 1 MiB L2 per core: a 3.2 MB input ran 1.7×
/// slower than im2col, 1.7 MB 1.35× faster). The knob overrides it.
const IMPLICIT_MAX_BYTES: usize = 2 << 20;

/// The implicit GEMM's row offsets of `d` (see [`ConvKnobs::implicit_gemm`]),
/// or none where it does not run: per column-matrix row `(ci, ky, kx)`, the
/// offset of its first grid column in one group's padded input.
fn implicit_rows(d: &Conv2dDesc, knob: Option<bool>) -> Vec<usize> {
    let Some(p) = Padded::grid(d).filter(|_| super::use_avx512()) else {
        return Vec::new();
    };
    let (pixels, plane) = (d.out_h() * d.out_w(), p.h * p.w);
    let fits = 4 * d.c_in / d.groups * plane <= IMPLICIT_MAX_BYTES;
    if !knob.unwrap_or(4 * (p.n - pixels) <= pixels && fits) {
        return Vec::new();
    }
    let mut rows = Vec::with_capacity(d.c_in / d.groups * d.kh * d.kw);
    for ci in 0..d.c_in / d.groups {
        for ky in 0..d.kh {
            for kx in 0..d.kw {
                rows.push(ci * plane + ky * d.dilation_h * p.w + kx * d.dilation_w);
            }
        }
    }
    rows
}

/// The im2col GEMM's weights in [`tile::MR`]-row panels, group after group.
fn group_panels(d: &Conv2dDesc, weight: &[f32]) -> Vec<f32> {
    let (cog, kk) = (d.c_out / d.groups, d.c_in / d.groups * d.kh * d.kw);
    (0..d.groups)
        .flat_map(|g| tile::pack_panels(&weight[g * cog * kk..][..cog * kk], cog, kk))
        .collect()
}

/// Output pixels per im2col block: whole output rows making about
/// [`BLOCK_COLS`] pixels, or [`BLOCK_COLS`] when one row is wider.
pub(crate) fn block_pixels(oh: usize, ow: usize) -> usize {
    if ow >= BLOCK_COLS {
        BLOCK_COLS
    } else {
        BLOCK_COLS.div_ceil(ow).clamp(1, oh.max(1)) * ow
    }
}

/// Output pixels per im2col block (its column matrix stays in L2).
const BLOCK_COLS: usize = 256;

/// Pixels per block so that `tasks` tasks get equal block counts: a few
/// blocks that do not divide evenly (3 blocks of a 28×28 plane for 2 tasks:
/// one does twice the other's work) are cut into the next multiple of
/// `tasks` (4 blocks of 208); many blocks, or one task, keep `per`.
pub(crate) fn balanced_block(pixels: usize, per: usize, tasks: usize) -> usize {
    let blocks = pixels.div_ceil(per.max(1));
    if tasks <= 1 || blocks < tasks || blocks.is_multiple_of(tasks) || blocks >= 4 * tasks {
        return per;
    }
    let even = blocks.next_multiple_of(tasks);
    pixels.div_ceil(even).next_multiple_of(16).min(per)
}

/// One group's whole column matrix of image `x` into `col`, the tasks
/// splitting its rows.
///
/// # Safety
/// `col` holds `c_in/groups·kh·kw × out_h·out_w` elements no one else touches.
unsafe fn fill_matrix(d: &Conv2dDesc, x: &[f32], col: SendPtr<f32>, threads: usize) {
    let (kk, pixels) = (d.c_in / d.groups * d.kh * d.kw, d.out_h() * d.out_w());
    split(kk, threads.min(kk), |rows| {
        // SAFETY: the task owns the column-matrix rows `rows`.
        let dst = unsafe {
            std::slice::from_raw_parts_mut(col.get().add(rows.start * pixels), rows.len() * pixels)
        };
        im2col::fill_rows(d, x, 0, pixels, rows, dst);
    });
}

/// One output channel's valid grid columns (row pitch `p.w`) into the
/// output, with the epilogue (`co` the group-local channel, `base` the
/// group's first output element).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn grid_out(
    d: &Conv2dDesc,
    p: &Padded,
    grid: *const f32,
    out: *mut f32,
    e: &Epi,
    co: usize,
    base: usize,
) {
    use std::arch::x86_64::*;
    let (oh, ow) = (d.out_h(), d.out_w());
    for oy in 0..oh {
        for ox0 in (0..ow).step_by(16) {
            let mask = super::epilogue::lanes(ow - ox0);
            let v = _mm512_maskz_loadu_ps(mask, grid.add(oy * p.w + ox0));
            let off = base + (co * oh + oy) * ow + ox0;
            let r = e.vec16(v, mask, co, 0, off);
            _mm512_mask_storeu_ps(out.add(off), mask, r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::balanced_block;

    #[test]
    fn blocks_are_recut_to_a_multiple_of_the_tasks() {
        // 28×28: 3 blocks of 280 → 4 of 208 for 2 tasks.
        assert_eq!(balanced_block(784, 280, 2), 208);
        assert_eq!(784usize.div_ceil(208), 4);
        // One task, an even count, or many blocks: unchanged.
        assert_eq!(balanced_block(784, 280, 1), 280);
        assert_eq!(balanced_block(1024, 256, 2), 256);
        assert_eq!(balanced_block(12544, 256, 2), 256);
        // Fewer blocks than tasks: unchanged (the whole-matrix path).
        assert_eq!(balanced_block(196, 196, 2), 196);
    }

    /// `ConvVariant::ALL` lists each variant once, at the position an
    /// exhaustive match gives it (a new variant must be added to both).
    #[test]
    fn all_lists_every_variant() {
        use super::ConvVariant::{self, *};
        let pos = |v: ConvVariant| match v {
            Auto => 0,
            Pointwise => 1,
            Depthwise => 2,
            Direct => 3,
            Im2col => 4,
            Winograd => 5,
        };
        for (i, v) in ConvVariant::ALL.into_iter().enumerate() {
            assert_eq!(pos(v), i, "{v:?}");
        }
    }
}
