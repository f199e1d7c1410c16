//! Convolution groups: an f32 1-D or 2-D `Conv` with constant weights, plus
//! its fused epilogue, on [`kiln_codegen::cpu::kernels::Conv2d`] (prepacked
//! weights; 1x1 as GEMM, depthwise direct, otherwise im2col + GEMM). A 1-D
//! convolution `[N, C, L]` runs as the 2-D one of `[N, C, 1, L]` with a 1×k
//! kernel (same memory). 3-D convolutions: [`super::conv3d`].

use super::epilogue::{self, Act, EpilogueSpec};
use super::{const_f32, Built};
use crate::fusion::{Group, Pattern};
use crate::kernel::{Kernel, StepIo};
use crate::tuning::{flag_knob, int_knob, knob, Config, Knob, KnobDef};
use crate::{CompileOptions, Result};
use kiln_codegen::cpu::kernels::{
    Activation, Conv2d, Conv2dDesc, Conv3d, ConvKnobs, ConvTranspose, ConvVariant, DwKernel,
};
use kiln_codegen::CodegenError;
use kiln_ir::ops::conv::window;
use kiln_ir::{Graph, Node};

/// The codegen convolutions (2-D, 3-D, transposed): prepacked weights, an
/// optional residual input, scratch.
pub(crate) trait ConvOp: Send + Sync {
    fn scratch_len(&self) -> usize;
    fn run(
        &self,
        x: &[f32],
        residual: Option<&[f32]>,
        y: &mut [f32],
        scratch: &mut [f32],
        threads: usize,
    ) -> std::result::Result<(), CodegenError>;
}

macro_rules! conv_op {
    ($($t:ty),*) => {$(
        impl ConvOp for $t {
            fn scratch_len(&self) -> usize {
                <$t>::scratch_len(self)
            }
            fn run(
                &self,
                x: &[f32],
                residual: Option<&[f32]>,
                y: &mut [f32],
                scratch: &mut [f32],
                threads: usize,
            ) -> std::result::Result<(), CodegenError> {
                <$t>::run(self, x, residual, y, scratch, threads)
            }
        }
    )*};
}
conv_op!(Conv2d, Conv3d, ConvTranspose);

/// A convolution step: input 0, input 1 the residual when fused.
struct ConvKernel<C> {
    conv: C,
    residual: bool,
    label: String,
    node: String,
}

impl<C: ConvOp> Kernel for ConvKernel<C> {
    fn describe(&self) -> String {
        self.label.clone()
    }

    fn scratch_bytes(&self) -> usize {
        self.conv.scratch_len() * 4
    }

    fn run(&self, io: &mut StepIo<'_, '_>, threads: usize) -> Result<()> {
        let residual = self.residual.then(|| io.in_f32(1));
        let scratch = io.scratch_f32(self.conv.scratch_len());
        self.conv
            .run(io.in_f32(0), residual, io.out_f32(0), scratch, threads)
            .map_err(super::kernel_err(&self.node))
    }
}

/// The codegen activation for an epilogue activation.
pub(crate) fn activation(a: Act) -> Activation {
    match a {
        Act::None => Activation::None,
        Act::Relu => Activation::Relu,
        Act::Clip { min, max } => Activation::Clip { min, max },
        Act::LeakyRelu { alpha } => Activation::LeakyRelu { alpha },
        Act::Gelu => Activation::Gelu,
        Act::GeluTanh => Activation::GeluTanh,
    }
}

/// Sums optional per-channel constants (a conv's own bias and an epilogue bias).
pub(crate) fn sum_biases(parts: &[Option<Vec<f32>>]) -> Option<Vec<f32>> {
    parts
        .iter()
        .flatten()
        .fold(None, |acc: Option<Vec<f32>>, b| {
            Some(match acc {
                None => b.clone(),
                Some(a) => a.iter().zip(b).map(|(x, y)| x + y).collect(),
            })
        })
}

/// A convolution group's kernel parts: the codegen convolution and its epilogue.
pub(crate) struct ConvParts {
    pub conv: Conv2d,
    pub spec: EpilogueSpec,
}

/// The descriptor of an f32 1-D or 2-D `Conv` node with constant weights,
/// if its output shape is the one the descriptor gives (1-D: height 1).
pub(crate) fn desc_of(g: &Graph, n: &Node) -> Result<Option<Conv2dDesc>> {
    if n.op.kind != "Conv" || !super::dense::is_anchor(g, n) || g.const_value(n.inputs[1]).is_none()
    {
        return Ok(None);
    }
    let (xs, ws) = (
        &g.value(n.inputs[0]).ty.shape,
        &g.value(n.inputs[1]).ty.shape,
    );
    if !matches!(xs.len(), 3 | 4) || ws.len() != xs.len() {
        return Ok(None);
    }
    let win = window(&n.op.attrs, &xs[2..], &ws[2..], false)?;
    // 1-D: a leading unit height, no padding, stride and dilation 1 on it.
    let (lead, at) = if xs.len() == 3 {
        ((1, 1, 1, 0, 0, 1), 0)
    } else {
        let w = &win;
        (
            (
                xs[2],
                ws[2],
                w.strides[0],
                w.begin[0],
                w.end[0],
                w.dilations[0],
            ),
            1,
        )
    };
    let desc = Conv2dDesc {
        batch: xs[0],
        c_in: xs[1],
        h: lead.0,
        w: xs[2 + at],
        c_out: ws[0],
        kh: lead.1,
        kw: ws[2 + at],
        stride_h: lead.2,
        stride_w: win.strides[at],
        pad_top: lead.3,
        pad_left: win.begin[at],
        pad_bottom: lead.4,
        pad_right: win.end[at],
        dilation_h: lead.5,
        dilation_w: win.dilations[at],
        groups: n.op.attrs.int_or("group", 1)?.max(1) as usize,
    };
    let out = &g.value(n.outputs[0]).ty.shape;
    let want = if xs.len() == 3 {
        vec![1, out[2]]
    } else {
        out[2..].to_vec()
    };
    let ok = desc.validate().is_ok() && [desc.out_h(), desc.out_w()] == want[..];
    Ok(ok.then_some(desc))
}

/// Whether `n` reads a 4-D input (the conv pair kernels are 2-D only).
fn is_2d(g: &Graph, n: &Node) -> bool {
    g.value(n.inputs[0]).ty.rank() == 4
}

/// A conv-like group's epilogue and its summed per-channel bias (the node's
/// own third input and an epilogue bias), if the group is one.
/// A convolution group's constant weights, its epilogue and the bias it
/// adds up to (the node's own plus a fused bias add); `None` when the
/// weights are not constant or the epilogue is not one the kernels fuse.
pub(crate) fn weights_and_epilogue(
    g: &Graph,
    nodes: &[usize],
) -> Option<(Vec<f32>, EpilogueSpec, Option<Vec<f32>>)> {
    let n = &g.nodes()[nodes[0]];
    let weight = const_f32(g, n.inputs[1])?;
    let spec = epilogue::parse(g, nodes)?;
    let own_bias = match n.inputs.get(2) {
        Some(&b) => Some(const_f32(g, b)?),
        None => None,
    };
    let bias = sum_biases(&[own_bias, spec.bias.and_then(|b| const_f32(g, b))]);
    Some((weight, spec, bias))
}

/// The step of a convolution group: reads the group's input (and the
/// residual when one is fused), writes its last node's outputs.
pub(crate) fn conv_step<C: ConvOp + 'static>(
    g: &Graph,
    nodes: &[usize],
    conv: C,
    spec: &EpilogueSpec,
    label: String,
) -> Built {
    let (first, last) = (
        &g.nodes()[nodes[0]],
        &g.nodes()[*nodes.last().expect("group")],
    );
    let mut inputs = vec![first.inputs[0]];
    inputs.extend(spec.residual);
    Built {
        kernel: Box::new(ConvKernel {
            conv,
            residual: spec.residual.is_some(),
            label,
            node: last.name.clone(),
        }),
        inputs,
        outputs: last.outputs.clone(),
    }
}

/// The `conv` family's knobs for the convolution at `nodes[0]`: the
/// variant (the shape rule, `auto`, or any variant that can run it), the
/// depthwise kernel family, im2col's GEMM (channel-vectorized or NCHW,
/// implicit or on a column matrix) and Winograd's block size where they apply.
pub(crate) fn knobs(g: &Graph, nodes: &[usize]) -> Vec<KnobDef> {
    let Ok(Some(desc)) = desc_of(g, &g.nodes()[nodes[0]]) else {
        return Vec::new();
    };
    let variants = Conv2d::variants(&desc);
    let mut k = Vec::new();
    if variants.len() > 1 {
        let names = std::iter::once(ConvVariant::Auto).chain(variants.iter().copied());
        let choices = names.map(|v| Knob::Choice(name(v))).collect();
        k.push(KnobDef::new(
            "variant",
            choices,
            Knob::Choice("auto".into()),
        ));
    }
    if variants.contains(&ConvVariant::Depthwise) {
        k.push(dw_kernel_knob());
    }
    if variants.contains(&ConvVariant::Im2col) && desc.groups == 1 && desc.kh * desc.kw > 1 {
        let auto = Conv2d::channel_gemm_default(&desc);
        k.push(KnobDef::flag("channel_gemm", auto));
    }
    if let (true, Some(auto)) = (
        variants.contains(&ConvVariant::Im2col) && desc.kh * desc.kw > 1,
        Conv2d::implicit_gemm_default(&desc),
    ) {
        k.push(KnobDef::flag("implicit_gemm", auto));
    }
    if variants.contains(&ConvVariant::Im2col) && desc.kh * desc.kw > 1 {
        k.push(KnobDef::flag("wide_tiles", ConvKnobs::default().wide_tiles));
    }
    if variants.contains(&ConvVariant::Pointwise) {
        let d = ConvKnobs::default().wide_pointwise;
        k.push(KnobDef::flag("wide_pointwise", d));
    }
    if variants.contains(&ConvVariant::Winograd) {
        let d = ConvKnobs::default().winograd_block_bytes as i64 / 1024;
        k.push(KnobDef::ints(
            "winograd_block_kib",
            &[256, 512, 1024, 2048],
            d,
        ));
    }
    k
}

/// The `dw_kernel` knob: every [`DwKernel`], `auto` the default.
pub(crate) fn dw_kernel_knob() -> KnobDef {
    let choices = DwKernel::ALL
        .iter()
        .map(|&v| Knob::Choice(name(v)))
        .collect();
    KnobDef::new("dw_kernel", choices, Knob::Choice("auto".into()))
}

/// A variant's knob value: its name in snake case (`StagedGrid` → `staged_grid`).
fn name(v: impl std::fmt::Debug) -> String {
    let mut out = String::new();
    for (i, ch) in format!("{v:?}").chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}

/// The [`ConvKnobs`] a tuned config asks for (defaults for what it leaves out).
pub(crate) fn tuned_knobs(c: Option<&Config>) -> ConvKnobs {
    let d = ConvKnobs::default();
    let choice = |knob_name: &str| match knob(c, knob_name) {
        Some(Knob::Choice(s)) => Some(s.clone()),
        _ => None,
    };
    let variant =
        choice("variant").and_then(|s| ConvVariant::ALL.into_iter().find(|&v| name(v) == s));
    let depthwise =
        choice("dw_kernel").and_then(|s| DwKernel::ALL.into_iter().find(|&v| name(v) == s));
    ConvKnobs {
        variant: variant.unwrap_or(d.variant),
        depthwise: depthwise.unwrap_or(d.depthwise),
        channel_gemm: flag_knob(c, "channel_gemm"),
        implicit_gemm: flag_knob(c, "implicit_gemm"),
        wide_tiles: flag_knob(c, "wide_tiles").unwrap_or(d.wide_tiles),
        wide_pointwise: flag_knob(c, "wide_pointwise").unwrap_or(d.wide_pointwise),
        winograd_block_bytes: int_knob(c, "winograd_block_kib")
            .map_or(d.winograd_block_bytes, |v| {
                v.clamp(16, 1 << 20) as usize * 1024
            }),
    }
}

/// The convolution of the group `nodes` (a `Conv` and its epilogue nodes)
/// with `knobs` (a variant that cannot run it leaves the group to others).
pub(crate) fn parts(g: &Graph, nodes: &[usize], knobs: ConvKnobs) -> Result<Option<ConvParts>> {
    let n = &g.nodes()[nodes[0]];
    let Some(desc) = desc_of(g, n)? else {
        return Ok(None);
    };
    let Some((weight, spec, bias)) = weights_and_epilogue(g, nodes) else {
        return Ok(None);
    };
    let act = activation(spec.activation);
    match Conv2d::with_knobs(desc, &weight, bias.as_deref(), act, knobs) {
        Ok(conv) => Ok(Some(ConvParts { conv, spec })),
        Err(e) => {
            tracing::debug!(node = %n.name, error = %e, "conv kernel refused");
            Ok(None)
        }
    }
}

/// Whether convolution `a` (depthwise) and `b` (1×1, reading `a`'s group)
/// can run as one [`kiln_codegen::cpu::kernels::DepthwisePointwise`] (`None`:
/// they cannot), and whether they should by default: measured on
/// MobileNetV2's blocks, the pair wins at 2 threads from 7×7 planes up (the
/// 1×1 reads the depthwise rows from its own cache; below 14×14 the kernel
/// splits the channels over threads, which also halves each thread's weight
/// reads) and at 1 thread from 28×28 up; smaller planes run faster apart.
/// The default is the `fuse` knob's; the tuner measures both.
pub(crate) fn pair_fit(g: &Graph, a: &Node, b: &Node, threads: usize) -> Option<bool> {
    let (Ok(Some(da)), Ok(Some(db))) = (desc_of(g, a), desc_of(g, b)) else {
        return None;
    };
    if !is_2d(g, a) || !is_2d(g, b) {
        return None;
    }
    let depthwise = da.groups == da.c_in && da.groups == da.c_out;
    let pointwise = db.kh == 1
        && db.kw == 1
        && db.groups == 1
        && [db.stride_h, db.stride_w] == [1, 1]
        && [db.pad_top, db.pad_left, db.pad_bottom, db.pad_right] == [0; 4];
    let pixels = da.out_h() * da.out_w();
    let big = if threads >= 2 { 49 } else { 784 };
    (depthwise && pointwise).then_some(pixels >= big)
}

/// Whether convolution `e` (1×1, or a stem on the direct kernel) can join
/// the depthwise convolution `d` reading its output (and the 1×1 after it)
/// in one kernel (`None`: it cannot), and whether it should by default: `e`'s
/// output then never goes to memory. Measured on MobileNetV2: at 2 threads
/// from 7×7 depthwise input planes up (features.14–17 gained 10–15 µs each
/// over separate kernels), at 1 thread from 28×28.
pub(crate) fn block_fit(g: &Graph, e: &Node, d: &Node, threads: usize) -> Option<bool> {
    let (Ok(Some(de)), Ok(Some(dd))) = (desc_of(g, e), desc_of(g, d)) else {
        return None;
    };
    if !is_2d(g, e) || !is_2d(g, d) {
        return None;
    }
    let pointwise = de.kh == 1
        && de.kw == 1
        && de.groups == 1
        && [de.stride_h, de.stride_w] == [1, 1]
        && [de.pad_top, de.pad_left, de.pad_bottom, de.pad_right] == [0; 4];
    let depthwise = dd.groups == dd.c_in && dd.groups == dd.c_out && dd.dilation_h == 1;
    let smallest = if threads >= 2 { 7 * 7 } else { 28 * 28 };
    ((pointwise || de.runs_direct()) && depthwise).then_some(dd.h * dd.w >= smallest)
}

pub(crate) fn build(g: &Graph, group: &Group, opts: &CompileOptions) -> Result<Option<Built>> {
    if !opts.dense_kernels || group.pattern == Pattern::ConvPair {
        return Ok(None);
    }
    let c = crate::tuning::config(opts, g, &group.nodes, "conv");
    let Some(ConvParts { conv, spec }) = parts(g, &group.nodes, tuned_knobs(c))? else {
        return Ok(None);
    };
    let n = &g.nodes()[group.nodes[0]];
    let desc = *conv.desc();
    let variant = match conv.variant() {
        ConvVariant::Depthwise => format!("depthwise/{}", name(conv.depthwise_kernel())),
        ConvVariant::Im2col if conv.wide_tiles() => format!("im2col/{}+wide", conv.im2col_kind()),
        ConvVariant::Im2col => format!("im2col/{}", conv.im2col_kind()),
        ConvVariant::Pointwise if conv.wide_tiles() => "pointwise+wide".to_string(),
        v => name(v),
    };
    let label = if is_2d(g, n) {
        format!(
            "conv2d[{}x{} g{} s{} {variant}]{}",
            desc.kh,
            desc.kw,
            desc.groups,
            desc.stride_h,
            epilogue::suffix(&spec)
        )
    } else {
        format!(
            "conv1d[{} g{} s{} {variant}]{}",
            desc.kw,
            desc.groups,
            desc.stride_w,
            epilogue::suffix(&spec)
        )
    };
    Ok(Some(conv_step(g, &group.nodes, conv, &spec, label)))
}
