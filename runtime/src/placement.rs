//! Where every value lives: graph inputs and constants in place, reshape
//! views and in-place outputs sharing their source's buffer, boxed slots for
//! dtypes without a byte form, and intermediates in the arena at offsets from
//! the memory planner ([`crate::memory`]), each step's scratch included.
//!
//! In place: a kernel may offer one input whose buffer its output can
//! overwrite (an element-wise map reading that input at the output's own
//! index). The planner takes the offer when that buffer is an intermediate of
//! the same size that nobody reads after this step; the two values then share
//! one buffer and one lifetime.
//!
//! Parts (zero-copy concat): a kernel may offer to read its inputs from
//! blocks of its own output ([`crate::kernel::Kernel::parts`]). Steps are
//! visited last first, so the outermost concat claims its inputs before the
//! concats nested in it: an input written by a step (not a graph input,
//! constant or output, not already placed) becomes a *part* of the output's
//! buffer at its block's offset, and its producer writes there directly. A
//! concat whose inputs are all parts of one buffer, in order and contiguous,
//! becomes a part itself (DenseNet's growing concats are prefixes of the
//! block's last one). A part's lifetime joins its container's; values in a
//! part family never take part in in-place sharing.

use crate::kernels::Built;
use crate::memory::{self, MemoryPlan, Request};
use crate::storage::{is_plain, Loc};
use kiln_ir::{Graph, Tensor, ValueId};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Parts: a root value -> (the value whose buffer holds it, byte offset).
type Parts = HashMap<ValueId, (ValueId, usize)>;

/// The placement of every value of a compiled graph.
pub(crate) struct Placement {
    /// Sources of views and in-place outputs (value -> value it shares with).
    pub shares: HashMap<ValueId, ValueId>,
    /// Values living inside another value's buffer (zero-copy concat).
    pub parts: Parts,
    pub locs: HashMap<ValueId, Loc>,
    pub consts: Vec<Arc<Tensor>>,
    pub boxed: usize,
    pub scratch: Vec<usize>,
    pub memory: MemoryPlan,
    pub in_place: usize,
}

impl Placement {
    /// The location of `v` (through views and in-place sharing).
    pub fn loc(&self, v: ValueId) -> Option<Loc> {
        let (top, off) = container(&self.parts, root(&self.shares, v));
        match self.locs.get(&top).copied()? {
            Loc::Arena(base) => Some(Loc::Arena(base + off)),
            loc if off == 0 => Some(loc),
            _ => None,
        }
    }
}

fn root(shares: &HashMap<ValueId, ValueId>, mut v: ValueId) -> ValueId {
    while let Some(&src) = shares.get(&v) {
        v = src;
    }
    v
}

/// The outermost buffer holding `v` and `v`'s byte offset in it.
fn container(parts: &Parts, mut v: ValueId) -> (ValueId, usize) {
    let mut off = 0;
    while let Some(&(p, o)) = parts.get(&v) {
        (v, off) = (p, off + o);
    }
    (v, off)
}

/// Live step ranges of the buffers that steps write, keyed by root value.
fn lifetimes(
    g: &Graph,
    built: &[(Built, Vec<usize>)],
    shares: &HashMap<ValueId, ValueId>,
) -> HashMap<ValueId, (usize, usize)> {
    let mut life: HashMap<ValueId, (usize, usize)> = HashMap::new();
    for (s, (b, _)) in built.iter().enumerate() {
        b.outputs.iter().for_each(|&o| {
            life.insert(o, (s, s));
        });
    }
    let mut extend = |v: ValueId, s: usize| {
        if let Some(l) = life.get_mut(&root(shares, v)) {
            l.1 = l.1.max(s);
        }
    };
    for (s, (b, _)) in built.iter().enumerate() {
        b.inputs.iter().for_each(|&v| extend(v, s));
    }
    g.outputs().iter().for_each(|&v| extend(v, built.len()));
    life
}

/// Takes the kernels' in-place offers that are legal; returns how many.
fn merge_in_place(
    g: &Graph,
    built: &[(Built, Vec<usize>)],
    shares: &mut HashMap<ValueId, ValueId>,
    life: &mut HashMap<ValueId, (usize, usize)>,
    family: &HashSet<ValueId>,
) -> usize {
    let mut merged = 0;
    for (s, (b, _)) in built.iter().enumerate() {
        let (Some(i), [out]) = (b.kernel.in_place_input(), b.outputs.as_slice()) else {
            continue;
        };
        let src = root(shares, b.inputs[i]);
        if family.contains(&src) || family.contains(out) {
            continue;
        }
        let read_once = b.inputs.iter().filter(|&&v| root(shares, v) == src).count() == 1;
        let (ti, to) = (&g.value(src).ty, &g.value(*out).ty);
        let fits = ti.bytes() == to.bytes() && is_plain(ti.dtype) && is_plain(to.dtype);
        match (life.get(&src).copied(), life.get(out).copied()) {
            (Some((first, last)), Some((_, out_last))) if last == s && read_once && fits => {
                life.insert(src, (first, out_last));
                life.remove(out);
                shares.insert(*out, src);
                merged += 1;
            }
            _ => {}
        }
    }
    merged
}

/// Places every value of `g` for the kernels `built` (in step order).
pub(crate) fn place(
    g: &Graph,
    built: &[(Built, Vec<usize>)],
    views: &HashMap<ValueId, ValueId>,
) -> Placement {
    let mut shares = views.clone();
    let mut life = lifetimes(g, built, &shares);
    let parts = plan_parts(g, built, &shares, &life);
    let family: HashSet<ValueId> = parts.iter().flat_map(|(&m, &(c, _))| [m, c]).collect();
    join_lifetimes(&parts, &mut life);
    let in_place = merge_in_place(g, built, &mut shares, &mut life, &family);
    let mut locs = HashMap::new();
    for (k, &v) in g.inputs().iter().enumerate() {
        locs.insert(v, Loc::Input(k));
    }
    let mut consts = Vec::new();
    for (v, t) in g.consts() {
        locs.insert(v, Loc::Const(consts.len()));
        consts.push(t.clone());
    }
    let mut roots: Vec<ValueId> = life.keys().copied().collect();
    roots.sort();
    let (mut requests, mut owners, mut boxed) = (Vec::new(), Vec::new(), 0);
    for &v in &roots {
        let ty = &g.value(v).ty;
        if is_plain(ty.dtype) {
            let (first, last) = life[&v];
            requests.push(Request {
                bytes: ty.bytes(),
                first,
                last,
            });
            owners.push(v);
        } else {
            locs.insert(v, Loc::Boxed(boxed));
            boxed += 1;
        }
    }
    let scratch_base = requests.len();
    for (s, (b, _)) in built.iter().enumerate() {
        let bytes = b.kernel.scratch_bytes();
        requests.push(Request {
            bytes,
            first: s,
            last: s,
        });
    }
    let memory = memory::plan(&requests);
    for (i, v) in owners.iter().enumerate() {
        locs.insert(*v, Loc::Arena(memory.offsets[i]));
    }
    Placement {
        shares,
        parts,
        locs,
        consts,
        boxed,
        scratch: memory.offsets[scratch_base..].to_vec(),
        memory,
        in_place,
    }
}

/// Decides which concat inputs live inside their concat's output (see the
/// module doc); steps are visited last first.
fn plan_parts(
    g: &Graph,
    built: &[(Built, Vec<usize>)],
    shares: &HashMap<ValueId, ValueId>,
    life: &HashMap<ValueId, (usize, usize)>,
) -> Parts {
    let mut parts = Parts::new();
    let outputs: HashSet<ValueId> = g.outputs().iter().copied().collect();
    for (b, _) in built.iter().rev() {
        let (Some(starts), [out]) = (b.kernel.parts(), b.outputs.as_slice()) else {
            continue;
        };
        let holder = root(shares, *out);
        if !life.contains_key(&holder) || !is_plain(g.value(holder).ty.dtype) {
            continue;
        }
        let ins: Vec<ValueId> = b.inputs.iter().map(|&v| root(shares, v)).collect();
        if let Some(at) = contiguous_parts(&parts, &ins, &starts, holder) {
            parts.insert(holder, at);
            continue;
        }
        let chain = ancestors(&parts, holder);
        for (&m, &start) in ins.iter().zip(&starts) {
            let free = life.contains_key(&m)
                && !parts.contains_key(&m)
                && !outputs.contains(&m)
                && !chain.contains(&m)
                && !parts.values().any(|&(c, _)| c == m)
                && is_plain(g.value(m).ty.dtype);
            if free {
                parts.insert(m, (holder, start));
            }
        }
    }
    parts
}

/// `Some((container, offset))` when every input already lies in one
/// container at `offset + starts[i]` (the concat is a view of it).
fn contiguous_parts(
    parts: &Parts,
    ins: &[ValueId],
    starts: &[usize],
    holder: ValueId,
) -> Option<(ValueId, usize)> {
    if parts.contains_key(&holder) || ins.contains(&holder) {
        return None;
    }
    let placed: Vec<(ValueId, usize)> = ins
        .iter()
        .map(|&m| parts.contains_key(&m).then(|| container(parts, m)))
        .collect::<Option<_>>()?;
    let (top, base) = *placed.first()?;
    let fits = placed
        .iter()
        .zip(starts)
        .all(|(&(t, off), &start)| t == top && off == base + start);
    (fits && top != holder).then_some((top, base))
}

/// `v` and the values whose buffers hold it.
fn ancestors(parts: &Parts, mut v: ValueId) -> HashSet<ValueId> {
    let mut seen = HashSet::from([v]);
    while let Some(&(p, _)) = parts.get(&v) {
        seen.insert(p);
        v = p;
    }
    seen
}

/// A part's lifetime joins its outermost container's; parts get no buffer
/// of their own.
fn join_lifetimes(parts: &Parts, life: &mut HashMap<ValueId, (usize, usize)>) {
    for &m in parts.keys() {
        let (top, _) = container(parts, m);
        if let Some((a, b)) = life.remove(&m) {
            let l = life.entry(top).or_insert((a, b));
            *l = (l.0.min(a), l.1.max(b));
        }
    }
}
