//! Fusion decisions: which nodes compile into one kernel.
//!
//! The plan is plain data (serde) so the rewrite stage and the tuner can
//! inspect, change or replay it; [`plan`] makes the default decisions:
//! - reshape-like ops become aliases of their input (no kernel, no copy);
//! - a convolution or matmul absorbs its epilogue: a bias add, a residual
//!   add and an activation (Relu, Clip, LeakyRelu, the exact Gelu op or its exported form);
//! - element-wise ops chain into one expression kernel with their sole
//!   consumers ([`kiln_ir::expr::inline`]), also into a reduction's epilogue.
//!
//! A group's nodes are in topological order; only the last node's outputs
//! leave the group, every other node's outputs have that group as sole reader.

use crate::kernels::{conv, dense, epilogue};
use crate::tuning;
use crate::uses::Uses;
use crate::CompileOptions;
use kiln_ir::expr::{inline, lower, TensorExpr};
use kiln_ir::Graph;
use serde::{Deserialize, Serialize};

/// How a group is compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Pattern {
    /// One node, any kernel (or the interpreter fallback).
    Single,
    /// A reshape-like node whose output shares its input's memory.
    Alias,
    /// A convolution or matmul followed by epilogue nodes.
    Epilogue,
    /// A chain of element-wise (and at most one reduction) nodes as one expression.
    Expression,
    /// A depthwise convolution with its epilogue, then the 1×1 convolution
    /// reading it with its own (nodes: the first group's, then the second's);
    /// optionally preceded by the 1×1 expansion producing the depthwise input.
    ConvPair,
}

/// One kernel's worth of nodes, by position in the graph's node list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub nodes: Vec<usize>,
    pub pattern: Pattern,
}

/// A fusion the plan could make (a conv pair or block): its nodes, the
/// default decision and the one taken (the `fuse` knob of its workload).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FusionChoice {
    pub nodes: Vec<usize>,
    pub default: bool,
    pub fused: bool,
}

/// The groups in execution order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FusionPlan {
    pub groups: Vec<Group>,
    /// The optional fusions considered (for the tuner).
    #[serde(default)]
    pub choices: Vec<FusionChoice>,
}

/// How many times an inlined producer may be recomputed per element.
const MAX_RECOMPUTE: f64 = 4.0;

/// The default fusion decisions for `g` under `opts`.
pub fn plan(g: &Graph, opts: &CompileOptions) -> FusionPlan {
    let uses = Uses::new(g);
    let mut taken = vec![false; g.nodes().len()];
    let mut groups = Vec::new();
    let mut choices = Vec::new();
    for pos in 0..g.nodes().len() {
        if taken[pos] {
            continue;
        }
        let group = grow(g, &uses, &taken, pos, opts, &mut choices);
        for &n in &group.nodes {
            taken[n] = true;
        }
        groups.push(group);
    }
    // A group runs where its last node was: every input is ready by then.
    groups.sort_by_key(|gr| *gr.nodes.last().expect("non-empty group"));
    FusionPlan { groups, choices }
}

fn grow(
    g: &Graph,
    uses: &Uses,
    taken: &[bool],
    pos: usize,
    opts: &CompileOptions,
    choices: &mut Vec<FusionChoice>,
) -> Group {
    let n = &g.nodes()[pos];
    let single = |pattern| Group {
        nodes: vec![pos],
        pattern,
    };
    if crate::kernels::alias::is_alias(g, n) {
        return single(Pattern::Alias);
    }
    if opts.dense_kernels && dense::is_anchor(g, n) {
        if !opts.fuse_epilogues {
            return single(Pattern::Single);
        }
        let first = grow_epilogue(g, uses, taken, pos);
        return grow_conv_pair(g, uses, taken, first, opts, choices);
    }
    if opts.jit && opts.fuse_elementwise && n.outputs.len() == 1 {
        if let Ok(Some(e)) = lower(g, n) {
            return grow_expression(g, uses, taken, pos, e, opts);
        }
    }
    single(Pattern::Single)
}

/// The next node when `pos`'s only output has one unassigned reader.
fn sole_next(g: &Graph, uses: &Uses, taken: &[bool], pos: usize) -> Option<usize> {
    match g.nodes()[pos].outputs.as_slice() {
        [out] => uses.sole_reader(*out).filter(|&r| !taken[r]),
        _ => None,
    }
}

fn grow_epilogue(g: &Graph, uses: &Uses, taken: &[bool], pos: usize) -> Group {
    let mut nodes = vec![pos];
    while let Some(next) = sole_next(g, uses, taken, *nodes.last().expect("anchor")) {
        let mut candidate = nodes.clone();
        candidate.push(next);
        if epilogue::parse(g, &candidate).is_none() {
            break;
        }
        nodes = candidate;
    }
    let last = &g.nodes()[*nodes.last().expect("anchor")];
    if let Some(gelu) = last
        .outputs
        .first()
        .and_then(|&x| epilogue::gelu_nodes(g, uses, x))
    {
        let mut candidate = nodes.clone();
        candidate.extend(&gelu);
        if gelu.iter().all(|&p| !taken[p]) && epilogue::parse(g, &candidate).is_some() {
            nodes = candidate;
        }
    }
    let pattern = if nodes.len() > 1 {
        Pattern::Epilogue
    } else {
        Pattern::Single
    };
    Group { nodes, pattern }
}

/// `first` (a convolution group) joined with the groups after it where the
/// `fuse` knob of the choice says so (default [`conv::pair_fit`] and
/// [`conv::block_fit`]): a depthwise convolution group with the 1×1
/// convolution group that alone reads it, or a 1×1 expansion with the
/// depthwise and 1×1 groups after it. Every possible choice is recorded.
fn grow_conv_pair(
    g: &Graph,
    uses: &Uses,
    taken: &[bool],
    first: Group,
    opts: &CompileOptions,
    choices: &mut Vec<FusionChoice>,
) -> Group {
    if !opts.fuse_conv_pairs {
        return first;
    }
    let mut marked = taken.to_vec();
    first.nodes.iter().for_each(|&n| marked[n] = true);
    let t = opts.threads;
    let anchor = |gr: &Group| &g.nodes()[gr.nodes[0]];
    let next_of =
        |gr: &Group, marked: &[bool]| sole_next(g, uses, marked, *gr.nodes.last().expect("anchor"));
    // The 1×1 group after depthwise group `dw`, with the pair's default.
    let pair_after = |dw: &Group, marked: &[bool]| {
        let pw = next_of(dw, marked)?;
        let wanted = conv::pair_fit(g, anchor(dw), &g.nodes()[pw], t)?;
        Some((grow_epilogue(g, uses, marked, pw), wanted))
    };
    let mut decide = |parts: &[&Group], default: bool| {
        let nodes: Vec<usize> = parts.iter().flat_map(|gr| gr.nodes.clone()).collect();
        let fused = tuning::fuse_choice(opts, g, &nodes).unwrap_or(default);
        choices.push(FusionChoice {
            nodes: nodes.clone(),
            default,
            fused,
        });
        fused.then_some(Group {
            nodes,
            pattern: Pattern::ConvPair,
        })
    };
    if let Some(next) = next_of(&first, &marked) {
        if let Some(block) = conv::block_fit(g, anchor(&first), &g.nodes()[next], t) {
            let dw = grow_epilogue(g, uses, &marked, next);
            let mut inner = marked.clone();
            dw.nodes.iter().for_each(|&n| inner[n] = true);
            if let Some((pw, pair)) = pair_after(&dw, &inner) {
                if let Some(fused) = decide(&[&first, &dw, &pw], block && pair) {
                    return fused;
                }
            }
        }
    }
    if let Some((pw, pair)) = pair_after(&first, &marked) {
        if let Some(fused) = decide(&[&first, &pw], pair) {
            return fused;
        }
    }
    first
}

fn grow_expression(
    g: &Graph,
    uses: &Uses,
    taken: &[bool],
    pos: usize,
    mut fused: TensorExpr,
    opts: &CompileOptions,
) -> Group {
    let mut nodes = vec![pos];
    while let Some(next) = sole_next(g, uses, taken, *nodes.last().expect("start")) {
        let c = &g.nodes()[next];
        let stop = c.outputs.len() != 1
            || crate::kernels::alias::is_alias(g, c)
            || (opts.dense_kernels && dense::is_anchor(g, c));
        if stop {
            break;
        }
        let Ok(Some(consumer)) = lower(g, c) else {
            break;
        };
        let produced = &g
            .value(g.nodes()[*nodes.last().expect("start")].outputs[0])
            .name;
        let Some(at) = consumer.inputs.iter().position(|o| &o.name == produced) else {
            break;
        };
        let Some(e) = inline(&consumer, at, &fused, MAX_RECOMPUTE) else {
            break;
        };
        fused = e;
        nodes.push(next);
    }
    Group {
        nodes,
        pattern: Pattern::Expression,
    }
}

/// The fused expression of an [`Pattern::Expression`] group (`None` if a
/// member no longer lowers or fuses, e.g. a hand-edited plan).
pub fn group_expression(g: &Graph, group: &Group) -> Option<TensorExpr> {
    let mut it = group.nodes.iter().map(|&p| &g.nodes()[p]);
    let first = it.next()?;
    let mut fused = lower(g, first).ok()??;
    let mut produced = first.outputs.first()?;
    for n in it {
        let consumer = lower(g, n).ok()??;
        let name = &g.value(*produced).name;
        let at = consumer.inputs.iter().position(|o| &o.name == name)?;
        fused = inline(&consumer, at, &fused, f64::INFINITY)?;
        produced = n.outputs.first()?;
    }
    Some(fused)
}
