//! Costs for extraction: a [`CostModel`] prices one op application from its
//! input and output types. [`Roofline`] is the analytic model of a CPU: the
//! larger of compute time (flops at the measured peak) and memory time
//! (bytes at the measured bandwidth), plus a fixed per-kernel overhead;
//! reshape-like ops are free (they compile to views).
//!
//! A fused op (LayerNormalization, Gelu, Softmax, Attention, a merged matmul)
//! is priced by the same rule as its decomposed form: one launch, its inputs
//! read and its output written once, and its own flop count ([`flops`]), so
//! it is cheaper exactly by the launches and intermediate tensors it saves.
//! A multi-output op (Split) is priced once: each of its `n` output e-nodes
//! carries `1/n` of the op and of its inputs' cost in extraction.

use crate::analysis::TGraph;
use crate::lang::TNode;
use egg::{CostFunction, Id, Language};
use kiln_ir::{Op, TensorType};
use std::collections::HashSet;

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
        // Mean, centre, square, mean, rsqrt, scale, shift.
        "LayerNormalization" => 8.0 * n,
        // Max, subtract, exp, sum, divide.
        "Softmax" => 5.0 * n,
        // erf (or tanh) as a polynomial, and the products around it.
        "Gelu" => 12.0 * n,
        "Attention" => attention_flops(inputs, output),
        "Split" | "Concat" | "Transpose" => 0.0,
        _ => n * inputs.len().max(1) as f64,
    }
}

/// Two matmuls (`Q·Kᵀ`, `P·V`) and the masked softmax between them, for
/// 4-D `[B, H, S, D]` operands (the 3-D form has the same count).
fn attention_flops(inputs: &[&TensorType], output: &TensorType) -> f64 {
    let (Some(q), Some(k)) = (inputs.first(), inputs.get(1)) else {
        return output.numel() as f64;
    };
    let d = q.shape.last().copied().unwrap_or(1).max(1) as f64;
    let t = k.shape[k.rank().saturating_sub(2)] as f64;
    let rows = q.numel() as f64 / d;
    let dv = output.numel() as f64 / rows.max(1.0);
    rows * t * (2.0 * d + 2.0 * dv + 6.0)
}

/// Bytes one application moves: its inputs read and outputs written once
/// (a Split writes what it reads, whichever output `output` is).
pub fn bytes(op: &Op, inputs: &[&TensorType], output: &TensorType) -> usize {
    let read: usize = inputs.iter().map(|t| t.bytes()).sum();
    match op.kind.as_str() {
        "Split" => 2 * read,
        _ => read + output.bytes(),
    }
}

impl CostModel for Roofline {
    fn op_cost(&self, op: &Op, inputs: &[&TensorType], output: &TensorType) -> f64 {
        if is_view(&op.kind) {
            return 1e-3;
        }
        let bytes = bytes(op, inputs, output);
        let compute = flops(op, inputs, output) / (self.peak_gflops * 1e3);
        let memory = bytes as f64 / (self.bandwidth_gbs * 1e3);
        compute.max(memory) + self.kernel_us
    }
}

/// Relative extra cost of an e-node the input graph did not have: ties in
/// modelled cost go to the input's own nodes. The model does not see the
/// runtime's epilogue fusion (a bias and a residual add absorbed by the
/// matmul before them), which the exporter's order already suits, so an
/// equal-cost reordering (`(y + b) + r` vs `y + (b + r)`) is not taken.
pub const NEW_NODE_PENALTY: f64 = 1e-3;

/// An egg cost function over a [`CostModel`] (tree cost: shared inputs count once per use).
pub struct ModelCost<'a, M: CostModel> {
    pub egraph: &'a TGraph,
    pub model: &'a M,
    /// The input graph's e-nodes, canonical (see [`NEW_NODE_PENALTY`]).
    pub original: &'a HashSet<TNode>,
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
        let mut own = self.node_cost(enode);
        if !self.original.contains(enode) {
            own *= 1.0 + NEW_NODE_PENALTY;
        }
        let total = enode.fold(own, |sum, id| sum + costs(id));
        match enode {
            // The op and its inputs are shared by its outputs' e-nodes.
            TNode::Op(o) if o.outputs > 1 => total / f64::from(o.outputs),
            _ => total,
        }
    }
}
