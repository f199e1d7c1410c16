//! ConvTranspose groups: an f32 1-, 2- or 3-D `ConvTranspose` with constant
//! weights, plus its fused epilogue (bias, residual, activation), on
//! [`kiln_codegen::cpu::kernels::ConvTranspose`] (GEMM into a column buffer,
//! then col2im). The geometry (pads, `output_padding`, `output_shape`,
//! `auto_pad`) is the reference op's ([`kiln_ir::ops::conv::transpose_window`]).

use super::conv::{activation, conv_step, weights_and_epilogue};
use super::{epilogue, Built};
use crate::fusion::{Group, Pattern};
use crate::tuning::{int_knob, KnobDef};
use crate::{CompileOptions, Result};
use kiln_codegen::cpu::kernels::{ConvTranspose, ConvTransposeDesc, ConvTransposeKnobs};
use kiln_ir::ops::conv::transpose_window;
use kiln_ir::{Graph, Node};

/// Pads a 1- or 2-D spatial list to 3-D with leading `fill`s.
fn three(v: &[usize], fill: usize) -> Option<[usize; 3]> {
    let mut out = [fill; 3];
    let at = 3usize.checked_sub(v.len())?;
    out[at..].copy_from_slice(v);
    Some(out)
}

/// The descriptor of an f32 `ConvTranspose` node of rank 3 to 5 with
/// constant weights, if its output shape is the one the geometry gives.
fn desc_of(g: &Graph, n: &Node) -> Result<Option<ConvTransposeDesc>> {
    if n.op.kind != "ConvTranspose"
        || !super::dense::is_anchor(g, n)
        || g.const_value(n.inputs[1]).is_none()
    {
        return Ok(None);
    }
    let (xs, ws) = (
        &g.value(n.inputs[0]).ty.shape,
        &g.value(n.inputs[1]).ty.shape,
    );
    if !(3..=5).contains(&xs.len()) || ws.len() != xs.len() {
        return Ok(None);
    }
    let win = transpose_window(&n.op.attrs, &xs[2..], &ws[2..])?;
    let groups = n.op.attrs.int_or("group", 1)?.max(1) as usize;
    let pick = |v: &[usize], fill| three(v, fill);
    let (Some(input), Some(kernel), Some(strides), Some(dilations), Some(pad_begin), Some(out)) = (
        pick(&xs[2..], 1),
        pick(&ws[2..], 1),
        pick(&win.strides, 1),
        pick(&win.dilations, 1),
        pick(&win.begin, 0),
        pick(&win.out, 1),
    ) else {
        return Ok(None);
    };
    let desc = ConvTransposeDesc {
        batch: xs[0],
        c_in: xs[1],
        c_out: ws[1] * groups,
        groups,
        input,
        kernel,
        strides,
        dilations,
        pad_begin,
        out,
    };
    let want = &g.value(n.outputs[0]).ty.shape;
    let ok = desc.validate().is_ok()
        && want[..2] == [desc.batch, desc.c_out]
        && want[2..] == win.out[..]
        && ws[0] == desc.c_in;
    Ok(ok.then_some(desc))
}

/// The `conv transpose` family's knobs: input pixels per GEMM block.
pub(crate) fn knobs() -> Vec<KnobDef> {
    let d = ConvTransposeKnobs::default().block_pixels as i64;
    vec![KnobDef::ints("block_pixels", &[64, 128, 256, 512, 1024], d)]
}

pub(crate) fn build(g: &Graph, group: &Group, opts: &CompileOptions) -> Result<Option<Built>> {
    if !opts.dense_kernels || group.pattern == Pattern::ConvPair {
        return Ok(None);
    }
    let n = &g.nodes()[group.nodes[0]];
    let Some(desc) = desc_of(g, n)? else {
        return Ok(None);
    };
    let Some((weight, spec, bias)) = weights_and_epilogue(g, &group.nodes) else {
        return Ok(None);
    };
    let act = activation(spec.activation);
    let c = crate::tuning::config(opts, g, &group.nodes, "conv transpose");
    let knobs = ConvTransposeKnobs {
        block_pixels: int_knob(c, "block_pixels")
            .map_or(ConvTransposeKnobs::default().block_pixels, |v| {
                v.max(1) as usize
            }),
    };
    let conv = match ConvTranspose::new(desc, &weight, bias.as_deref(), act, knobs) {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(node = %n.name, error = %e, "conv_transpose kernel refused");
            return Ok(None);
        }
    };
    let rank = g.value(n.inputs[0]).ty.rank() - 2;
    let k: Vec<String> = desc.kernel[3 - rank..]
        .iter()
        .map(usize::to_string)
        .collect();
    let label = format!(
        "conv_transpose{rank}d[{} g{} s{}]{}",
        k.join("x"),
        desc.groups,
        desc.strides[2],
        epilogue::suffix(&spec)
    );
    Ok(Some(conv_step(g, &group.nodes, conv, &spec, label)))
}
