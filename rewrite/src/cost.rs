//! Costs for extraction: a [`CostModel`] prices one op application from its
//! input and output types. [`Roofline`] is the analytic model of a CPU: the
//! larger of compute time (flops at the measured peak) and memory time
//! (bytes at the measured bandwidth), plus a fixed per-kernel overhead;
//! reshape-like ops are free (they compile to views).

use crate::analysis::TGraph;
use crate::lang::TNode;
use egg::{CostFunction, Id, Language};
use kiln_ir::{Op, TensorType};

/// Prices one op application, in microseconds.
pub trait CostModel {
    fn op_cost(&self, op: &Op, inputs: &[&TensorType], output: &TensorType) -> f64;
}

/// Roofline model of the target machine.
#[derive(Clone, Debug, PartialEq)]
pub struct Roofline {
    /// Peak f32 GFLOP/s (this machine: about 320 on 2 threads, measured GEMM).
    pub peak_gflops: f64,
    /// Memory bandwidth in GB/s (L2/L3-resident tensors of the shipped models).
    pub bandwidth_gbs: f64,
    /// Fixed cost of launching one kernel, in microseconds.
    pub kernel_us: f64,
}

impl Default for Roofline {
    fn default() -> Self {
        Roofline {
            peak_gflops: 320.0,
            bandwidth_gbs: 40.0,
            kernel_us: 1.0,
        }
    }
}

/// Ops that compile to views of their input (no kernel, no traffic).
pub fn is_view(kind: &str) -> bool {
    matches!(
        kind,
        "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" | "Identity"
    )
}

/// Floating-point operations of one application (element count for maps).
pub fn flops(op: &Op, inputs: &[&TensorType], output: &TensorType) -> f64 {
    let n = output.numel() as f64;
    match op.kind.as_str() {
        "MatMul" | "Gemm" => {
            let a = inputs
                .first()
                .map_or(1, |t| t.shape.last().copied().unwrap_or(1));
            let k = if op.kind == "Gemm" && op.attrs.int_or("transA", 0).unwrap_or(0) != 0 {
                inputs[0].shape.first().copied().unwrap_or(1)
            } else {
                a
            };
            2.0 * n * k as f64
        }
        "Conv" => {
            let w = inputs
                .get(1)
                .map_or(1, |t| t.shape[1..].iter().product::<usize>());
            2.0 * n * w as f64
        }
        _ => n * inputs.len().max(1) as f64,
    }
}

impl CostModel for Roofline {
    fn op_cost(&self, op: &Op, inputs: &[&TensorType], output: &TensorType) -> f64 {
        if is_view(&op.kind) {
            return 1e-3;
        }
        let bytes: usize = inputs.iter().map(|t| t.bytes()).sum::<usize>() + output.bytes();
        let compute = flops(op, inputs, output) / (self.peak_gflops * 1e3);
        let memory = bytes as f64 / (self.bandwidth_gbs * 1e3);
        compute.max(memory) + self.kernel_us
    }
}

/// An egg cost function over a [`CostModel`] (tree cost: shared inputs count once per use).
pub struct ModelCost<'a, M: CostModel> {
    pub egraph: &'a TGraph,
    pub model: &'a M,
}

impl<M: CostModel> ModelCost<'_, M> {
    /// The cost of one e-node alone (infinite when its types are unknown).
    pub fn node_cost(&self, enode: &TNode) -> f64 {
        let TNode::Op(o) = enode else { return 0.0 };
        let tys: Option<Vec<&TensorType>> = o
            .args
            .iter()
            .map(|&c| self.egraph[c].data.ty.as_ref())
            .collect();
        let out = self
            .egraph
            .lookup(enode.clone())
            .and_then(|c| self.egraph[c].data.ty.as_ref());
        match (tys, out) {
            (Some(tys), Some(out)) => self
                .model
                .op_cost(&self.egraph.analysis.op_of(o), &tys, out),
            _ => f64::INFINITY,
        }
    }
}

impl<M: CostModel> CostFunction<TNode> for ModelCost<'_, M> {
    type Cost = f64;

    fn cost<C>(&mut self, enode: &TNode, mut costs: C) -> f64
    where
        C: FnMut(Id) -> f64,
    {
        enode.fold(self.node_cost(enode), |sum, id| sum + costs(id))
    }
}
