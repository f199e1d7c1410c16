//! Kernels and the builders that pick one for a fusion group.
//!
//! Builders are tried in order; the first that accepts a group wins. The
//! interpreter fallback accepts every single node, so every graph compiles;
//! its uses are counted in the compile report.

pub(crate) mod alias;
mod attention;
mod cast;
mod concat;
pub(crate) mod conv;
mod conv3d;
mod conv_pair;
mod conv_transpose;
pub(crate) mod dense;
mod derived;
pub(crate) mod epilogue;
pub(crate) mod expr;
pub(crate) mod fallback;
mod gather;
mod hoist;
mod int_map;
mod matmul;
mod norm;
mod pool;
mod recurrent;
mod remap;
mod resize;
mod rows;
mod scatter;
mod split;
mod topk;
mod trilu;

use crate::fusion::{Group, Pattern};
use crate::kernel::Kernel;
use crate::tuning::KnobDef;
use crate::{CompileOptions, Result, RuntimeError};
use kiln_ir::{Graph, ValueId};

/// A kernel with the values it reads and writes, in the order it expects them.
pub(crate) struct Built {
    pub kernel: Box<dyn Kernel>,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
}

/// Wraps a codegen error of the kernel reported under `node`.
pub(crate) fn kernel_err(node: &str) -> impl Fn(kiln_codegen::CodegenError) -> RuntimeError + '_ {
    move |source| RuntimeError::Kernel {
        node: node.to_string(),
        source,
    }
}

/// Tries to build a kernel for a group; `Ok(None)` means "not mine".
pub(crate) type Builder = fn(&Graph, &Group, &CompileOptions) -> Result<Option<Built>>;

/// The builders, most specialised first.
pub(crate) fn builders() -> &'static [(&'static str, Builder)] {
    &[
        ("conv", conv::build),
        ("conv3d", conv3d::build),
        ("conv transpose", conv_transpose::build),
        ("conv pair", conv_pair::build),
        ("matmul", matmul::build),
        ("rows", rows::build),
        ("arg", rows::build_arg),
        ("cumsum", rows::build_cumsum),
        ("norm", norm::build),
        ("attention", attention::build),
        ("gather", gather::build),
        ("gather elements", gather::build_elements),
        ("scatter", scatter::build),
        ("topk", topk::build),
        ("trilu", trilu::build),
        ("split", split::build),
        ("concat", concat::build),
        ("recurrent", recurrent::build),
        ("pool", pool::build),
        ("resize", resize::build),
        ("derived", derived::build),
        ("jit", expr::build),
        ("int", int_map::build),
        ("copy", remap::build),
        ("cast", cast::build),
        ("interpreter", build_fallback),
    ]
}

/// Kernels for a group with the builder that took each: the first builder
/// that accepts it, else its nodes one by one.
pub(crate) fn build_group(
    g: &Graph,
    group: &Group,
    opts: &CompileOptions,
) -> Result<Vec<(&'static str, Built, Vec<usize>)>> {
    for (name, build) in builders() {
        if let Some(b) = build(g, group, opts)? {
            tracing::debug!(builder = name, node = %g.nodes()[*group.nodes.last().expect("group")].name, "built");
            return Ok(vec![(*name, b, group.nodes.clone())]);
        }
    }
    if group.nodes.len() == 1 {
        let n = &g.nodes()[group.nodes[0]];
        return Err(RuntimeError::Options(format!(
            "no kernel for node `{}` ({})",
            n.name, n.op.kind
        )));
    }
    let mut out = Vec::new();
    for &p in &group.nodes {
        let single = Group {
            nodes: vec![p],
            pattern: Pattern::Single,
        };
        out.extend(build_group(g, &single, opts)?);
    }
    Ok(out)
}

/// A kernel family, the nodes its kernel computes, and its own knobs.
pub(crate) type KernelSpace = (&'static str, Vec<usize>, Vec<KnobDef>);

/// The kernels a group compiles to, each with its family's own knobs
/// (besides `threads`); interpreter steps have none and are left out.
pub(crate) fn spaces(g: &Graph, group: &Group, opts: &CompileOptions) -> Result<Vec<KernelSpace>> {
    let mut out = Vec::new();
    for (family, _, nodes) in build_group(g, group, opts)? {
        let knobs = match family {
            "interpreter" | "cast" => continue,
            "recurrent" => recurrent::knobs(g, &nodes),
            "conv transpose" => conv_transpose::knobs(),
            "pool" => pool::knobs(),
            "conv pair" => conv_pair::knobs(g, &nodes),
            "conv" => conv::knobs(g, &nodes),
            "jit" => expr::knobs(g, &nodes),
            "derived" => derived::knobs(),
            _ => Vec::new(),
        };
        out.push((family, nodes, knobs));
    }
    Ok(out)
}

fn build_fallback(g: &Graph, group: &Group, _: &CompileOptions) -> Result<Option<Built>> {
    if group.nodes.len() != 1 || group.pattern == Pattern::Alias {
        return Ok(None);
    }
    let n = &g.nodes()[group.nodes[0]];
    Ok(Some(Built {
        kernel: Box::new(fallback::Fallback::new(g, n)),
        inputs: n.inputs.clone(),
        outputs: n.outputs.clone(),
    }))
}

/// A constant f32 value's elements (`None` if not a constant or not f32).
pub(crate) fn const_f32(g: &Graph, v: ValueId) -> Option<Vec<f32>> {
    g.const_value(v)?
        .as_slice::<f32>()
        .ok()
        .map(<[f32]>::to_vec)
}
