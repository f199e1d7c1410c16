//! 3-D convolution groups: an f32 `Conv` over `[N, C, D, H, W]` with constant
//! weights, plus its fused epilogue, on [`kiln_codegen::cpu::kernels::Conv3d`]
//! (im2col per output depth slice + the tiled GEMM).

use super::conv::{activation, conv_step, weights_and_epilogue};
use super::{epilogue, Built};
use crate::fusion::{Group, Pattern};
use crate::{CompileOptions, Result};
use kiln_codegen::cpu::kernels::{Conv3d, Conv3dDesc};
use kiln_ir::ops::conv::window;
use kiln_ir::{Graph, Node};

/// The descriptor of an f32 3-D `Conv` node with constant weights, if its
/// output shape is the one the descriptor gives.
fn desc_of(g: &Graph, n: &Node) -> Result<Option<Conv3dDesc>> {
    if n.op.kind != "Conv" || !super::dense::is_anchor(g, n) || g.const_value(n.inputs[1]).is_none()
    {
        return Ok(None);
    }
    let (xs, ws) = (
        &g.value(n.inputs[0]).ty.shape,
        &g.value(n.inputs[1]).ty.shape,
    );
    if xs.len() != 5 || ws.len() != 5 {
        return Ok(None);
    }
    let win = window(&n.op.attrs, &xs[2..], &ws[2..], false)?;
    let three = |v: &[usize]| [v[0], v[1], v[2]];
    let desc = Conv3dDesc {
        batch: xs[0],
        c_in: xs[1],
        c_out: ws[0],
        groups: n.op.attrs.int_or("group", 1)?.max(1) as usize,
        input: three(&xs[2..]),
        kernel: three(&ws[2..]),
        strides: three(&win.strides),
        dilations: three(&win.dilations),
        pad_begin: three(&win.begin),
        pad_end: three(&win.end),
    };
    let out = &g.value(n.outputs[0]).ty.shape;
    let ok = desc.validate().is_ok() && desc.out()[..] == out[2..];
    Ok(ok.then_some(desc))
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
    let conv = match Conv3d::new(desc, &weight, bias.as_deref(), act) {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(node = %n.name, error = %e, "conv3d kernel refused");
            return Ok(None);
        }
    };
    let [kd, kh, kw] = desc.kernel;
    let label = format!(
        "conv3d[{kd}x{kh}x{kw} g{} s{}]{}",
        desc.groups,
        desc.strides[2],
        epilogue::suffix(&spec)
    );
    Ok(Some(conv_step(g, &group.nodes, conv, &spec, label)))
}
