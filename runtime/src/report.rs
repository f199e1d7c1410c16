//! What `compile` did: kernels, fused groups, fallbacks, memory, time.

use serde::Serialize;
use std::collections::BTreeMap;

/// One step of the plan.
#[derive(Clone, Debug, Serialize)]
pub struct KernelReport {
    /// The last node of the group (whose outputs the step writes).
    pub node: String,
    /// The kernel, e.g. `conv2d[depthwise]+bias+clip` or `interpreter[Gather]`.
    pub kernel: String,
    /// Op kinds of the nodes the step computes, in order.
    pub ops: Vec<String>,
    /// Names of those nodes, in the same order.
    pub nodes: Vec<String>,
}

/// The compile report of an [`crate::Executable`].
#[derive(Clone, Debug, Default, Serialize)]
pub struct CompileReport {
    pub threads: usize,
    pub compile_ms: f64,
    /// Graph nodes compiled.
    pub nodes: usize,
    pub kernels: Vec<KernelReport>,
    /// Nodes that run on the interpreter fallback, per op kind.
    pub fallbacks: BTreeMap<String, usize>,
    /// Steps that compute more than one node.
    pub fused_groups: usize,
    /// Reshape-like nodes that became views (no kernel).
    pub aliases: usize,
    /// Peak intermediate memory: the arena each run uses (bytes).
    pub arena_bytes: usize,
    /// What the intermediates would take without buffer reuse (bytes).
    pub unshared_bytes: usize,
    /// Outputs written over a dead input's buffer (in place).
    pub in_place: usize,
    /// Values computed straight into their block of a concat's output (no copy).
    pub concat_parts: usize,
    /// Steps whose knobs came from a tuned config, plus fusion choices
    /// (conv pairs and blocks) a tuned config decided.
    pub tuned_kernels: usize,
    /// Values kept as whole tensors (strings, low-bit types).
    pub boxed_values: usize,
}

impl CompileReport {
    /// Total fallback nodes.
    pub fn fallback_count(&self) -> usize {
        self.fallbacks.values().sum()
    }
}
