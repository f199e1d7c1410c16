//! [`Pattern::ConvPair`] groups: a depthwise convolution and the 1×1
//! convolution reading it, on [`DepthwisePointwise`] (each with its fused
//! epilogue; only the second may add a residual).

use super::conv::{dw_kernel_knob, parts, tuned_knobs as conv_knobs, ConvParts};
use super::{epilogue, Built};
use crate::fusion::{Group, Pattern};
use crate::kernel::{Kernel, StepIo};
use crate::tuning::{int_knob, Config, KnobDef};
use crate::{CompileOptions, Result};
use kiln_codegen::cpu::kernels::{DepthwisePointwise, DwPwKnobs};
use kiln_ir::Graph;

struct ConvPairKernel {
    pair: DepthwisePointwise,
    residual: bool,
    /// The executable's threads: scratch is sized for up to this many.
    threads: usize,
    label: String,
    node: String,
}

impl Kernel for ConvPairKernel {
    fn describe(&self) -> String {
        self.label.clone()
    }

    fn scratch_bytes(&self) -> usize {
        let most = (1..=self.threads).map(|t| self.pair.scratch_len(t)).max();
        4 * most.unwrap_or(0)
    }

    fn run(&self, io: &mut StepIo<'_, '_>, threads: usize) -> Result<()> {
        let threads = threads.clamp(1, self.threads);
        let residual = self.residual.then(|| io.in_f32(1));
        let scratch = io.scratch_f32(self.pair.scratch_len(threads));
        self.pair
            .run(io.in_f32(0), residual, io.out_f32(0), scratch, threads)
            .map_err(super::kernel_err(&self.node))
    }
}

/// The `conv pair` family's knobs: band sizes (the expanded one only with
/// an expansion), up to which plane the channel-split schedule runs, and
/// the depthwise kernel family.
pub(crate) fn knobs(g: &Graph, nodes: &[usize]) -> Vec<KnobDef> {
    let d = DwPwKnobs::default();
    let expands = nodes
        .iter()
        .filter(|&&p| g.nodes()[p].op.kind == "Conv")
        .count()
        > 2;
    let kib = |v: &[i64]| v.iter().map(|k| k * 1024).collect::<Vec<_>>();
    let mut k = vec![
        KnobDef::ints(
            "band_bytes",
            &kib(&[64, 128, 256, 512, 1024]),
            d.band_bytes as i64,
        ),
        KnobDef::ints(
            "channel_split_pixels",
            &[0, d.channel_split_pixels as i64, 1 << 40],
            d.channel_split_pixels as i64,
        ),
        dw_kernel_knob(),
    ];
    if expands {
        k.push(KnobDef::ints(
            "expanded_band_bytes",
            &kib(&[256, 512, 768, 1536]),
            d.expanded_band_bytes as i64,
        ));
    }
    k
}

fn tuned_knobs(c: Option<&Config>) -> DwPwKnobs {
    let d = DwPwKnobs::default();
    let get = |name, v: usize| int_knob(c, name).map_or(v, |k| k.max(0) as usize);
    DwPwKnobs {
        band_bytes: get("band_bytes", d.band_bytes),
        expanded_band_bytes: get("expanded_band_bytes", d.expanded_band_bytes),
        channel_split_pixels: get("channel_split_pixels", d.channel_split_pixels),
    }
}

pub(crate) fn build(g: &Graph, group: &Group, opts: &CompileOptions) -> Result<Option<Built>> {
    if group.pattern != Pattern::ConvPair || !opts.dense_kernels {
        return Ok(None);
    }
    // Each convolution group starts at a Conv node: 2 or 3 of them.
    let starts: Vec<usize> = (0..group.nodes.len())
        .filter(|&i| g.nodes()[group.nodes[i]].op.kind == "Conv")
        .collect();
    if starts.first() != Some(&0) || !(2..=3).contains(&starts.len()) {
        return Ok(None);
    }
    let segment = |i: usize| {
        let end = starts.get(i + 1).copied().unwrap_or(group.nodes.len());
        &group.nodes[starts[i]..end]
    };
    let c = crate::tuning::config(opts, g, &group.nodes, "conv pair");
    let mut convs = Vec::new();
    for i in 0..starts.len() {
        // The depthwise convolution (the last but one) takes the `dw_kernel` knob.
        let knobs = match i + 2 == starts.len() {
            true => conv_knobs(c),
            false => Default::default(),
        };
        let Some(p) = parts(g, segment(i), knobs)? else {
            return Ok(None);
        };
        // Every group but the last must feed the next one, without a residual.
        let out = g.nodes()[*segment(i).last().expect("group")].outputs[0];
        let feeds_next = starts.get(i + 1).is_none_or(|&s| {
            g.nodes()[group.nodes[s]].inputs[0] == out && p.spec.residual.is_none()
        });
        if !feeds_next {
            return Ok(None);
        }
        convs.push(p);
    }
    let ConvParts { conv: pw, spec: s2 } = convs.pop().expect("two or more");
    let ConvParts { conv: dw, spec: s1 } = convs.pop().expect("two or more");
    let expand = convs.pop();
    let dd = *dw.desc();
    let Ok(mut pair) = DepthwisePointwise::new(dw, pw) else {
        return Ok(None);
    };
    if let Some(e) = &expand {
        match pair.with_expand(e.conv.clone()) {
            Ok(p) => pair = p,
            Err(_) => return Ok(None),
        }
    }
    let pair = pair.with_knobs(tuned_knobs(c));
    let last = &g.nodes()[*group.nodes.last().expect("group")];
    let mut inputs = vec![g.nodes()[group.nodes[0]].inputs[0]];
    inputs.extend(s2.residual);
    let label = format!(
        "{}dw{}x{}s{}{}>conv1x1{}",
        expand.as_ref().map_or(String::new(), |e| {
            let d = e.conv.desc();
            format!("conv{}x{}{}>", d.kh, d.kw, epilogue::suffix(&e.spec))
        }),
        dd.kh,
        dd.kw,
        dd.stride_h,
        epilogue::suffix(&s1),
        epilogue::suffix(&s2)
    );
    tracing::debug!(label, "conv pair");
    Ok(Some(Built {
        kernel: Box::new(ConvPairKernel {
            pair,
            residual: s2.residual.is_some(),
            threads: opts.threads.max(1),
            label,
            node: last.name.clone(),
        }),
        inputs,
        outputs: last.outputs.clone(),
    }))
}
