//! Epilogues fused into a convolution or matmul: `y = act(x + bias + residual)`.
//!
//! [`parse`] reads a chain `anchor -> Add* -> activation?` and says what
//! each node contributes, or `None` when the chain cannot be an epilogue:
//! - an `Add` of a constant with one value per output channel (conv: per
//!   channel `C` of `N,C,H,W`; matmul: per column) is the bias;
//! - an `Add` of a value with exactly the output's shape is the residual;
//! - `Relu`, `Clip`, `LeakyRelu` and the exact `Gelu` are the activation, and come last;
//! - so is the exact GELU in the five-node form PyTorch exports
//!   (`Mul(Mul(x, Add(Erf(Div(x, √2)), 1)), 0.5)`, see [`gelu_nodes`]).

use crate::uses::Uses;
use kiln_ir::{Attr, DType, Graph, Node, ValueId};

/// The activation applied last.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Act {
    None,
    Relu,
    Clip { min: f32, max: f32 },
    LeakyRelu { alpha: f32 },
    Gelu,
    GeluTanh,
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
    if matches!(anchor.op.kind.as_str(), "Conv" | "ConvTranspose") {
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
    let mut i = 1;
    while i < nodes.len() {
        if spec.activation != Act::None {
            return None;
        }
        if nodes.len() - i >= 5 && is_gelu(g, &nodes[i..i + 5], current) {
            spec.activation = Act::Gelu;
            current = g.nodes()[nodes[i + 4]].outputs[0];
            i += 5;
            continue;
        }
        let n = &g.nodes()[nodes[i]];
        i += 1;
        if n.outputs.len() != 1 || g.value(n.outputs[0]).ty != out_ty {
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
        "Gelu" => match n.op.attrs.get("approximate") {
            None => Some(Act::Gelu),
            Some(Attr::Str(s)) if s == "none" => Some(Act::Gelu),
            Some(Attr::Str(s)) if s == "tanh" => Some(Act::GeluTanh),
            _ => None,
        },
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
        Act::Gelu => "+gelu",
        Act::GeluTanh => "+gelu_tanh",
    });
    s
}

/// The value of a one-element f32 constant.
fn scalar_const(g: &Graph, v: ValueId) -> Option<f64> {
    let t = g.const_value(v)?;
    (t.len() == 1 && t.dtype() == DType::F32).then(|| t.to_f64_vec()[0])
}

/// The operand of a two-input `kind` node other than `v`, if `v` is one of them.
fn other_input(n: &Node, kind: &str, v: ValueId) -> Option<ValueId> {
    match n.inputs.as_slice() {
        [a, b] if n.op.kind == kind && *a == v => Some(*b),
        [a, b] if n.op.kind == kind && *b == v => Some(*a),
        _ => None,
    }
}

fn near(x: Option<f64>, want: f64) -> bool {
    x.is_some_and(|x| (x - want).abs() <= 1e-6 * want.abs())
}

/// True when `nodes` are `d = x / √2 (or x · 1/√2)`, `e = erf(d)`, `a = e + 1`,
/// `m = x · a`, `h = m · 0.5`, each reading the previous one.
fn is_gelu(g: &Graph, nodes: &[usize], x: ValueId) -> bool {
    let n = |k: usize| &g.nodes()[nodes[k]];
    let out = |k: usize| n(k).outputs.first().copied();
    let (Some(d), Some(e), Some(a), Some(m)) = (out(0), out(1), out(2), out(3)) else {
        return false;
    };
    let first = &n(0);
    let scaled = match first.inputs.as_slice() {
        [v, c] if first.op.kind == "Div" && *v == x => near(scalar_const(g, *c), 2f64.sqrt()),
        _ => near(
            other_input(first, "Mul", x).and_then(|c| scalar_const(g, c)),
            std::f64::consts::FRAC_1_SQRT_2,
        ),
    };
    scaled
        && n(1).op.kind == "Erf"
        && n(1).inputs.as_slice() == [d]
        && near(
            other_input(n(2), "Add", e).and_then(|c| scalar_const(g, c)),
            1.0,
        )
        && other_input(n(3), "Mul", a) == Some(x)
        && near(
            other_input(n(4), "Mul", m).and_then(|c| scalar_const(g, c)),
            0.5,
        )
}

/// The five GELU nodes reading `x` (see [`is_gelu`]) when they are `x`'s only
/// readers and their intermediate values are read nowhere else.
pub(crate) fn gelu_nodes(g: &Graph, uses: &Uses, x: ValueId) -> Option<Vec<usize>> {
    let readers = uses.readers(x);
    if readers.len() != 2 || uses.is_output(x) {
        return None;
    }
    let next = |pos: usize| uses.sole_reader(*g.nodes()[pos].outputs.first()?);
    for &d in readers {
        let Some(e) = next(d) else { continue };
        let Some(a) = next(e) else { continue };
        let Some(m) = next(a) else { continue };
        let Some(h) = next(m) else { continue };
        let nodes = vec![d, e, a, m, h];
        if readers.contains(&m) && is_gelu(g, &nodes, x) {
            return Some(nodes);
        }
    }
    None
}
