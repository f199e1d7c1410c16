//! Which nodes the hand-written dense kernels (convolution, matmul) anchor.

use kiln_ir::{DType, Graph, Node};

/// True when `n` is an f32 convolution or matmul that a dense kernel runs.
pub(crate) fn is_anchor(g: &Graph, n: &Node) -> bool {
    let f32_only = n
        .inputs
        .iter()
        .chain(&n.outputs)
        .all(|&v| g.value(v).ty.dtype == DType::F32);
    if !f32_only || n.outputs.len() != 1 {
        return false;
    }
    let rank = |i: usize| n.inputs.get(i).map_or(0, |&v| g.value(v).ty.rank());
    match n.op.kind.as_str() {
        "Conv" | "ConvTranspose" => (3..=5).contains(&rank(0)) && rank(1) == rank(0),
        "MatMul" => rank(0) >= 2 && rank(1) >= 2,
        "Gemm" => true,
        _ => false,
    }
}
