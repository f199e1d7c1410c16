//! [`Pattern::ConvPair`] groups: a depthwise convolution and the 1×1
//! convolution reading it, on [`DepthwisePointwise`] (each with its fused
//! epilogue; only the second may add a residual).

use super::conv::{parts, ConvParts};
use super::{epilogue, Built};
use crate::fusion::{Group, Pattern};
use crate::kernel::{Kernel, StepIo};
use crate::{CompileOptions, Result, RuntimeError};
use kiln_codegen::cpu::kernels::DepthwisePointwise;
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
            .map_err(|source| RuntimeError::Kernel {
                node: self.node.clone(),
                source,
            })
    }
}

pub(crate) fn build(g: &Graph, group: &Group, opts: &CompileOptions) -> Result<Option<Built>> {
    if group.pattern != Pattern::ConvPair || !opts.dense_kernels {
        return Ok(None);
    }
    // The second group starts at the second Conv node.
    let Some(split) = group
        .nodes
        .iter()
        .skip(1)
        .position(|&p| g.nodes()[p].op.kind == "Conv")
        .map(|i| i + 1)
    else {
        return Ok(None);
    };
    let (a, b) = group.nodes.split_at(split);
    let (Some(first), Some(second)) = (parts(g, a)?, parts(g, b)?) else {
        return Ok(None);
    };
    let ConvParts { conv: dw, spec: s1 } = first;
    let ConvParts { conv: pw, spec: s2 } = second;
    let (mid, pw_node) = (
        g.nodes()[*a.last().expect("group")].outputs[0],
        &g.nodes()[b[0]],
    );
    if s1.residual.is_some() || pw_node.inputs[0] != mid {
        return Ok(None);
    }
    let (dd, pd) = (*dw.desc(), *pw.desc());
    let Ok(pair) = DepthwisePointwise::new(dw, pw) else {
        return Ok(None);
    };
    let last = &g.nodes()[*b.last().expect("group")];
    let mut inputs = vec![g.nodes()[a[0]].inputs[0]];
    inputs.extend(s2.residual);
    let label = format!(
        "dw{}x{}s{}{}>conv1x1{}",
        dd.kh,
        dd.kw,
        dd.stride_h,
        epilogue::suffix(&s1),
        epilogue::suffix(&s2)
    );
    tracing::debug!(?pd, label, "conv pair");
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
