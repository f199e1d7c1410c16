//! Reshape-like ops: the output is the input's bytes under another shape, so
//! they compile to no kernel at all; the planner gives both values one buffer.

use kiln_ir::{Graph, Node};

/// Ops whose output is their first input's data reinterpreted.
const ALIAS_OPS: &[&str] = &["Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"];

/// True when `n` only renames or reshapes its single data input.
pub(crate) fn is_alias(g: &Graph, n: &Node) -> bool {
    ALIAS_OPS.contains(&n.op.kind.as_str())
        && n.inputs.len() == 1
        && n.outputs.len() == 1
        && g.value(n.inputs[0]).ty.dtype == g.value(n.outputs[0]).ty.dtype
        && g.value(n.inputs[0]).ty.numel() == g.value(n.outputs[0]).ty.numel()
}
