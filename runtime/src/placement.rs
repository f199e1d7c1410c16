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

use crate::kernels::Built;
use crate::memory::{self, MemoryPlan, Request};
use crate::storage::{is_plain, Loc};
use kiln_ir::{Graph, Tensor, ValueId};
use std::collections::HashMap;
use std::sync::Arc;

/// The placement of every value of a compiled graph.
pub(crate) struct Placement {
    /// Sources of views and in-place outputs (value -> value it shares with).
    pub shares: HashMap<ValueId, ValueId>,
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
        self.locs.get(&root(&self.shares, v)).copied()
    }
}

fn root(shares: &HashMap<ValueId, ValueId>, mut v: ValueId) -> ValueId {
    while let Some(&src) = shares.get(&v) {
        v = src;
    }
    v
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
) -> usize {
    let mut merged = 0;
    for (s, (b, _)) in built.iter().enumerate() {
        let (Some(i), [out]) = (b.kernel.in_place_input(), b.outputs.as_slice()) else {
            continue;
        };
        let src = root(shares, b.inputs[i]);
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
    let in_place = merge_in_place(g, built, &mut shares, &mut life);
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
        locs,
        consts,
        boxed,
        scratch: memory.offsets[scratch_base..].to_vec(),
        memory,
        in_place,
    }
}
