//! `Resize` on f32 tensors of any rank (nearest in every `nearest_mode`,
//! linear, cubic, every coordinate transformation the interpreter knows) on
//! [`kiln_codegen::cpu::kernels::Resize`]. The per-axis taps come from the
//! interpreter's own rules (`kiln_ir::ops::resize::plan`) at build time, so
//! the two agree by construction; the kernel only applies them.

use super::Built;
use crate::fusion::Group;
use crate::kernel::{Kernel, StepIo};
use crate::{CompileOptions, Result};
use kiln_codegen::cpu::kernels::{Resize, ResizeAxis, ResizeDesc, ResizeTuning};
use kiln_ir::ops::resize::{plan, AxisTaps};
use kiln_ir::{DType, Graph};

struct ResizeKernel {
    resize: Resize,
    label: String,
    node: String,
}

impl Kernel for ResizeKernel {
    fn describe(&self) -> String {
        self.label.clone()
    }

    fn run(&self, io: &mut StepIo<'_, '_>, threads: usize) -> Result<()> {
        self.resize
            .run(io.in_f32(0), io.out_f32(0), threads)
            .map_err(super::kernel_err(&self.node))
    }
}

/// The kernel's (f32) form of an axis' taps.
fn axis(t: Option<AxisTaps>) -> ResizeAxis {
    t.map(|t| {
        t.into_iter()
            .map(|o| o.map(|v| v.into_iter().map(|(i, w)| (i, w as f32)).collect()))
            .collect()
    })
}

pub(crate) fn build(g: &Graph, group: &Group, opts: &CompileOptions) -> Result<Option<Built>> {
    let n = &g.nodes()[group.nodes[0]];
    let single = group.nodes.len() == 1 && n.inputs.len() == 1 && n.outputs.len() == 1;
    if !opts.dense_kernels || !single || n.op.kind != "Resize" {
        return Ok(None);
    }
    let (x, y) = (&g.value(n.inputs[0]).ty, &g.value(n.outputs[0]).ty);
    if x.dtype != DType::F32 || y.dtype != DType::F32 || x.rank() == 0 || x.numel() == 0 {
        return Ok(None);
    }
    // Attributes the interpreter rejects stay with it (it reports why).
    let Ok((sizes, extra, axes)) = plan(&n.op.attrs, &x.shape) else {
        return Ok(None);
    };
    if sizes != y.shape {
        return Ok(None);
    }
    let desc = ResizeDesc {
        input: x.shape.clone(),
        axes: axes.into_iter().map(axis).collect(),
        extrapolation: extra as f32,
    };
    let Ok(resize) = Resize::new(&desc, ResizeTuning::default()) else {
        return Ok(None);
    };
    if resize.sizes() != (x.numel(), y.numel()) {
        return Ok(None);
    }
    let mode = n.op.attrs.str_or("mode", "nearest")?;
    Ok(Some(Built {
        kernel: Box::new(ResizeKernel {
            resize,
            label: format!("resize[{mode}]"),
            node: n.name.clone(),
        }),
        inputs: n.inputs.clone(),
        outputs: n.outputs.clone(),
    }))
}
