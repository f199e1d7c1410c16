//! Pooling nodes on f32 NC… tensors of any spatial rank on
//! [`kiln_codegen::cpu::kernels::Pool`]: `MaxPool` (without its optional
//! indices output, which stays on the interpreter), `AveragePool`, `LpPool`,
//! and `GlobalMaxPool` / `GlobalLpPool` as one window over the whole plane
//! (`GlobalAveragePool` is a row mean, see `rows.rs`). The window geometry is
//! the interpreter's (`kiln_ir::ops::conv::window`), so `auto_pad`, pads,
//! dilations and `ceil_mode` agree with it by construction.

use super::Built;
use crate::fusion::Group;
use crate::kernel::{Kernel, StepIo};
use crate::tuning::{flag_knob, KnobDef};
use crate::{CompileOptions, Result};
use kiln_codegen::cpu::kernels::{Pool, PoolDesc, PoolKind, PoolTuning};
use kiln_ir::ops::conv::window;
use kiln_ir::{Attrs, DType, Graph, Node};

struct PoolKernel {
    pool: Pool,
    label: String,
    node: String,
}

impl Kernel for PoolKernel {
    fn describe(&self) -> String {
        self.label.clone()
    }

    fn run(&self, io: &mut StepIo<'_, '_>, threads: usize) -> Result<()> {
        self.pool
            .run(io.in_f32(0), io.out_f32(0), threads)
            .map_err(super::kernel_err(&self.node))
    }
}

/// The reduction of a pooling op, `None` for other ops.
fn kind(op: &str, a: &Attrs) -> Result<Option<PoolKind>> {
    Ok(Some(match op {
        "MaxPool" | "GlobalMaxPool" => PoolKind::Max,
        "AveragePool" => PoolKind::Average {
            count_include_pad: a.int_or("count_include_pad", 0)? != 0,
        },
        "LpPool" | "GlobalLpPool" => PoolKind::Lp {
            p: a.float_or("p", 2.0)? as f32,
        },
        _ => return Ok(None),
    }))
}

/// The descriptor of `n` (input spatial shape `x`), `None` when its
/// attributes do not describe a window (the interpreter then reports why).
fn describe(n: &Node, kind: PoolKind, planes: usize, x: &[usize]) -> Result<Option<PoolDesc>> {
    let a = &n.op.attrs;
    let global = n.op.kind.starts_with("Global");
    let (kernel, ceil) = if global {
        (x.to_vec(), false)
    } else {
        let Some(k) = a.opt_ints("kernel_shape")? else {
            return Ok(None);
        };
        if k.len() != x.len() || k.iter().any(|&v| v < 1) {
            return Ok(None);
        }
        let k = k.iter().map(|&v| v as usize).collect();
        (k, a.int_or("ceil_mode", 0)? != 0)
    };
    let w = if global {
        window(&Attrs::new(), x, &kernel, false)
    } else {
        window(a, x, &kernel, ceil)
    };
    let Ok(w) = w else { return Ok(None) };
    Ok(Some(PoolDesc {
        kind,
        planes,
        input: x.to_vec(),
        kernel: w.kernel,
        strides: w.strides,
        dilations: w.dilations,
        begin: w.begin,
        end: w.end,
        out: w.out,
    }))
}

fn label(op: &str, d: &PoolDesc) -> String {
    let dims = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join("x");
    let name = match d.kind {
        PoolKind::Max => "max",
        PoolKind::Average { .. } => "avg",
        PoolKind::Lp { .. } => "lp",
    };
    if op.starts_with("Global") {
        return format!("pool[global {name}]");
    }
    format!("pool[{name} {} s{}]", dims(&d.kernel), dims(&d.strides))
}

/// The pool's schedule knobs: the direct schedule (max/average, last-axis
/// stride ≤ 2, AVX-512; threads split row bands or planes), else the plane
/// schedule, else rows.
pub(crate) fn knobs() -> Vec<KnobDef> {
    let d = PoolTuning::default();
    vec![
        KnobDef::flag("direct", d.direct),
        KnobDef::flag("bands", d.bands),
        KnobDef::flag("planes", true),
    ]
}

pub(crate) fn build(g: &Graph, group: &Group, opts: &CompileOptions) -> Result<Option<Built>> {
    let n = &g.nodes()[group.nodes[0]];
    if !opts.dense_kernels || group.nodes.len() != 1 || n.inputs.len() != 1 || n.outputs.len() != 1
    {
        return Ok(None);
    }
    let Some(kind) = kind(&n.op.kind, &n.op.attrs)? else {
        return Ok(None);
    };
    let (x, y) = (&g.value(n.inputs[0]).ty, &g.value(n.outputs[0]).ty);
    if x.dtype != DType::F32 || y.dtype != DType::F32 || x.rank() < 3 {
        return Ok(None);
    }
    let planes = x.shape[0] * x.shape[1];
    let Some(desc) = describe(n, kind, planes, &x.shape[2..])? else {
        return Ok(None);
    };
    let c = crate::tuning::config(opts, g, &group.nodes, "pool");
    let defaults = PoolTuning::default();
    let tuning = PoolTuning {
        direct: flag_knob(c, "direct").unwrap_or(defaults.direct),
        bands: flag_knob(c, "bands").unwrap_or(defaults.bands),
        plane_bytes: match flag_knob(c, "planes") {
            Some(false) => 0,
            _ => defaults.plane_bytes,
        },
        ..defaults
    };
    let Ok(pool) = Pool::new(&desc, tuning) else {
        return Ok(None);
    };
    if pool.sizes() != (x.numel(), y.numel()) {
        return Ok(None);
    }
    Ok(Some(Built {
        kernel: Box::new(PoolKernel {
            pool,
            label: label(&n.op.kind, &desc),
            node: n.name.clone(),
        }),
        inputs: n.inputs.clone(),
        outputs: n.outputs.clone(),
    }))
}
