//! Epilogues fused into a convolution or matmul: `y = act(x + bias + residual)`.
//!
//! [`parse`] reads a chain `anchor -> Add* -> activation?` and says what
//! each node contributes, or `None` when the chain cannot be an epilogue:
//! - an `Add` of a constant with one value per output channel (conv: per
//!   channel `C` of `N,C,H,W`; matmul: per column) is the bias;
//! - an `Add` of a value with exactly the output's shape is the residual;
//! - `Relu`, `Clip` and `LeakyRelu` are the activation, and come last.

use kiln_ir::{Attr, DType, Graph, Node, ValueId};

/// The activation applied last.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Act {
    None,
    Relu,
    Clip { min: f32, max: f32 },
    LeakyRelu { alpha: f32 },
}

/// What the nodes after the anchor add up to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct EpilogueSpec {
    /// A constant with one value per output channel / column.
    pub bias: Option<ValueId>,
    /// A tensor of the output's shape.
    pub residual: Option<ValueId>,
    pub activation: Act,
}

/// The channel axis of an anchor's output: 1 for a convolution, the last for a matmul.
fn channel_axis(anchor: &Node, rank: usize) -> usize {
    if anchor.op.kind == "Conv" {
        1
    } else {
        rank.saturating_sub(1)
    }
}

/// Reads `nodes[1..]` as the epilogue of the anchor `nodes[0]`.
pub(crate) fn parse(g: &Graph, nodes: &[usize]) -> Option<EpilogueSpec> {
    let anchor = &g.nodes()[*nodes.first()?];
    let mut spec = EpilogueSpec {
        bias: None,
        residual: None,
        activation: Act::None,
    };
    let mut current = *anchor.outputs.first()?;
    let out_ty = g.value(current).ty.clone();
    if out_ty.dtype != DType::F32 {
        return None;
    }
    for &pos in &nodes[1..] {
        let n = &g.nodes()[pos];
        if spec.activation != Act::None || n.outputs.len() != 1 {
            return None;
        }
        if g.value(n.outputs[0]).ty != out_ty {
            return None;
        }
        if n.op.kind == "Add" {
            let other = match n.inputs.as_slice() {
                [a, b] if *a == current && *b != current => *b,
                [a, b] if *b == current && *a != current => *a,
                _ => return None,
            };
            add_term(g, anchor, &out_ty, other, &mut spec)?;
        } else {
            if n.inputs.as_slice() != [current] {
                return None;
            }
            spec.activation = activation(n)?;
        }
        current = n.outputs[0];
    }
    Some(spec)
}

fn add_term(
    g: &Graph,
    anchor: &Node,
    out: &kiln_ir::TensorType,
    other: ValueId,
    spec: &mut EpilogueSpec,
) -> Option<()> {
    let ty = &g.value(other).ty;
    if ty.dtype != DType::F32 {
        return None;
    }
    if g.const_value(other).is_some() && is_per_channel(anchor, out, &ty.shape) {
        if spec.bias.replace(other).is_some() {
            return None;
        }
        return Some(());
    }
    if ty.shape == out.shape && spec.residual.replace(other).is_none() {
        return Some(());
    }
    None
}

/// True when `shape` broadcasts to `out` with one value per channel.
fn is_per_channel(anchor: &Node, out: &kiln_ir::TensorType, shape: &[usize]) -> bool {
    let rank = out.rank();
    let axis = channel_axis(anchor, rank);
    if shape.len() > rank {
        return false;
    }
    let off = rank - shape.len();
    shape.iter().enumerate().all(|(d, &n)| {
        if off + d == axis {
            n == out.shape[axis]
        } else {
            n == 1
        }
    }) && (off <= axis || out.shape[axis] == 1)
}

fn activation(n: &Node) -> Option<Act> {
    let f = |name: &str| match n.op.attrs.get(name) {
        None => Some(None),
        Some(Attr::Float(v)) => Some(Some(*v as f32)),
        Some(Attr::Int(v)) => Some(Some(*v as f32)),
        Some(_) => None,
    };
    match n.op.kind.as_str() {
        "Relu" => Some(Act::Relu),
        "Clip" => Some(Act::Clip {
            min: f("min")?.unwrap_or(f32::NEG_INFINITY),
            max: f("max")?.unwrap_or(f32::INFINITY),
        }),
        "LeakyRelu" => Some(Act::LeakyRelu {
            alpha: f("alpha")?.unwrap_or(0.01),
        }),
        _ => None,
    }
}

/// A short description for reports, e.g. `+bias+residual+clip`.
pub(crate) fn suffix(spec: &EpilogueSpec) -> String {
    let mut s = String::new();
    if spec.bias.is_some() {
        s.push_str("+bias");
    }
    if spec.residual.is_some() {
        s.push_str("+residual");
    }
    s.push_str(match spec.activation {
        Act::None => "",
        Act::Relu => "+relu",
        Act::Clip { .. } => "+clip",
        Act::LeakyRelu { .. } => "+leaky_relu",
    });
    s
}
