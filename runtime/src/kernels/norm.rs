//! `InstanceNormalization` and `GroupNormalization` (f32, `[N, C, ...]`) on
//! [`kiln_codegen::cpu::kernels::group_norm_f32`]. Scale and bias are read
//! from their inputs when they hold one value per channel; GroupNormalization's
//! opset-18 form (one value per group) needs them constant and is expanded to
//! channels at build time.

use super::{const_f32, Built};
use crate::fusion::Group;
use crate::kernel::{Kernel, StepIo};
use crate::{CompileOptions, Result};
use kiln_codegen::cpu::kernels::{group_norm_f32, GroupNormDesc};
use kiln_ir::{DType, Graph, Node};

struct GroupNorm {
    desc: GroupNormDesc,
    /// Per-channel scale and bias expanded at build time (else inputs 1, 2).
    params: Option<(Vec<f32>, Vec<f32>)>,
    node: String,
    label: &'static str,
}

impl Kernel for GroupNorm {
    fn describe(&self) -> String {
        self.label.into()
    }

    fn run(&self, io: &mut StepIo<'_, '_>, threads: usize) -> Result<()> {
        let (s, b) = match &self.params {
            Some((s, b)) => (s.as_slice(), b.as_slice()),
            None => (io.in_f32(1), io.in_f32(2)),
        };
        group_norm_f32(io.in_f32(0), s, b, io.out_f32(0), self.desc, threads)
            .map_err(super::kernel_err(&self.node))
    }
}

/// Per-channel parameters from per-group constants.
fn expand(g: &Graph, n: &Node, groups: usize, per: usize) -> Option<(Vec<f32>, Vec<f32>)> {
    let widen = |v: Vec<f32>| {
        v.iter()
            .flat_map(|&x| std::iter::repeat_n(x, per))
            .collect()
    };
    let (s, b) = (const_f32(g, n.inputs[1])?, const_f32(g, n.inputs[2])?);
    (s.len() == groups && b.len() == groups).then(|| (widen(s), widen(b)))
}

pub(crate) fn build(g: &Graph, group: &Group, opts: &CompileOptions) -> Result<Option<Built>> {
    let n = &g.nodes()[group.nodes[0]];
    let instance = n.op.kind == "InstanceNormalization";
    if !opts.dense_kernels
        || group.nodes.len() != 1
        || !(instance || n.op.kind == "GroupNormalization")
    {
        return Ok(None);
    }
    let all_f32 = n
        .inputs
        .iter()
        .chain(&n.outputs)
        .all(|&v| g.value(v).ty.dtype == DType::F32);
    let x = &g.value(n.inputs[0]).ty;
    if !all_f32 || n.inputs.len() != 3 || n.outputs.len() != 1 || x.rank() < 2 {
        return Ok(None);
    }
    let channels = x.shape[1];
    let groups = if instance {
        channels
    } else {
        n.op.attrs.int("num_groups")?.max(0) as usize
    };
    if groups == 0 || !channels.is_multiple_of(groups) {
        return Ok(None);
    }
    let per_channel =
        g.value(n.inputs[1]).ty.numel() == channels && g.value(n.inputs[2]).ty.numel() == channels;
    let params = match per_channel {
        true => None,
        false => match expand(g, n, groups, channels / groups) {
            Some(p) => Some(p),
            None => return Ok(None),
        },
    };
    let desc = GroupNormDesc {
        batch: x.shape[0],
        channels,
        groups,
        inner: x.shape[2..].iter().product(),
        eps: n.op.attrs.float_or("epsilon", 1e-5)? as f32,
    };
    Ok(Some(Built {
        kernel: Box::new(GroupNorm {
            desc,
            params,
            node: n.name.clone(),
            label: if instance {
                "instance_norm[rows]"
            } else {
                "group_norm[rows]"
            },
        }),
        inputs: n.inputs.clone(),
        outputs: n.outputs.clone(),
    }))
}
