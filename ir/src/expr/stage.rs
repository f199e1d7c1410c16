//! Staged inputs: copies of (part of) an input made while the loop nest
//! runs, which the body then reads instead of the input.
//!
//! - a *pack* copies the whole input, before the loops, into a blocked
//!   layout: dimension `axis` becomes `axis / block` in place and
//!   `axis % block` as a new innermost dimension (the last block padded
//!   with zeros);
//! - a *cache read* copies, at the top of each iteration of loop `at`, the
//!   box of the input that the body reads during that iteration into a
//!   dense local buffer;
//! - a *compute at* fills the same box, but by evaluating the input's
//!   producer expression (supplied by the code generator).
//!
//! The box ([`Region`]) is computed per dimension from the subscripts over
//! loop ids: the part over loops enclosing `at` (and `at` itself) gives the
//! box's start, the range of the part over the loops inside gives its
//! extent. A subscript that mixes the two (through a division or modulo),
//! or accesses whose starts differ by more than a constant, give the whole
//! dimension; so does a box wider than the dimension.

use super::affine::{AffineExpr, Atom};
use super::index::Range;
use super::nest::LoopNest;

/// How a staged input is filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageKind {
    Pack { axis: usize, block: usize },
    CacheRead,
    ComputeAt,
}

/// One staged input of a nest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stage {
    pub input: usize,
    pub kind: StageKind,
    /// Loop id at which the buffer is filled (`None`: before the nest).
    pub at: Option<usize>,
}

/// The box of an input a local buffer holds: per dimension, the first
/// index (over loop ids enclosing the stage's loop) and the extent.
#[derive(Clone, Debug, PartialEq)]
pub struct Region {
    pub start: Vec<AffineExpr>,
    pub extent: Vec<usize>,
}

/// The shape of input `shape` packed along `axis` by `block`.
pub fn packed_shape(shape: &[usize], axis: usize, block: usize) -> Vec<usize> {
    let mut s = shape.to_vec();
    s[axis] = shape[axis].div_ceil(block.max(1));
    s.push(block);
    s
}

/// The packed subscripts of an access with subscripts `index`.
pub fn packed_index(index: &[AffineExpr], axis: usize, block: usize) -> Vec<AffineExpr> {
    let b = block.max(1) as i64;
    let mut v = index.to_vec();
    v[axis] = index[axis].clone().floor_div(b);
    v.push(index[axis].clone().modulo(b));
    v
}

/// Collects the loop ids an atom uses.
fn atom_ids(a: &Atom, out: &mut Vec<usize>) {
    match a {
        Atom::Iter(i) => out.push(*i),
        Atom::FloorDiv(x, _) | Atom::Mod(x, _) => {
            x.terms.iter().for_each(|(_, b)| atom_ids(b, out))
        }
    }
}

/// Splits `e` into (part over `outer` ids, part over the other ids);
/// `None` when an atom mixes both.
fn separate(e: &AffineExpr, outer: &dyn Fn(usize) -> bool) -> Option<(AffineExpr, AffineExpr)> {
    let mut o = AffineExpr::constant(e.constant);
    let mut i = AffineExpr::default();
    for (c, a) in &e.terms {
        let mut ids = vec![];
        atom_ids(a, &mut ids);
        let uses_out = ids.iter().any(|&id| outer(id));
        let uses_in = ids.iter().any(|&id| !outer(id));
        match (uses_out, uses_in) {
            (true, true) => return None,
            (_, false) => o = o.plus(*c, a.clone()),
            (false, true) => i = i.plus(*c, a.clone()),
        }
    }
    Some((o, i))
}

impl LoopNest {
    /// The value ranges of loop variables, by loop id (static extents).
    pub fn loop_ranges(&self) -> Vec<Range> {
        let mut r = vec![(0, 0); self.id_count()];
        for l in &self.loops {
            r[l.id] = (0, l.extent as i64 - 1);
        }
        r
    }

    /// The subscripts, over loop ids, of every access to `input` that the
    /// stage serves: the body's, and the epilogue's when `at` is an output
    /// loop (or the stage is a pack).
    pub fn staged_accesses(&self, s: &Stage) -> Vec<Vec<AffineExpr>> {
        let ranges = self.loop_ranges();
        let mut out = vec![];
        let mut add = |a: &super::scalar::Access| {
            if a.input == s.input {
                let subs = a.index.iter().map(|e| {
                    e.substitute(&|i| self.defs[i].clone())
                        .simplified(Some(&ranges))
                });
                out.push(subs.collect());
            }
        };
        self.expr.body.visit_accesses(&mut add);
        if self.epilogue_staged(s) {
            if let Some(ep) = &self.expr.epilogue {
                ep.visit_accesses(&mut add);
            }
        }
        out
    }

    /// True when the epilogue's reads of the stage's input use the buffer.
    pub fn epilogue_staged(&self, s: &Stage) -> bool {
        match s.at {
            None => true,
            Some(id) => self.loops.iter().any(|l| l.id == id && !l.reduce),
        }
    }

    /// The box of input `s.input` that the stage's buffer holds.
    pub fn region(&self, s: &Stage) -> Region {
        let shape = &self.expr.inputs[s.input].ty.shape;
        let whole = Region {
            start: vec![AffineExpr::constant(0); shape.len()],
            extent: shape.clone(),
        };
        let Some(at) = s.at else { return whole };
        let Some(p) = self.loops.iter().position(|l| l.id == at) else {
            return whole;
        };
        let inner: Vec<usize> = self.loops[p + 1..].iter().map(|l| l.id).collect();
        let outer = |id: usize| !inner.contains(&id);
        let ranges = self.loop_ranges();
        let accesses = self.staged_accesses(s);
        let mut r = whole.clone();
        for (d, &dim) in shape.iter().enumerate() {
            let dims: Vec<&AffineExpr> = accesses.iter().map(|a| &a[d]).collect();
            if let Some((start, ext)) = dim_box(&dims, &outer, &ranges) {
                if ext <= dim {
                    r.start[d] = start;
                    r.extent[d] = ext;
                }
            }
        }
        r
    }
}

/// The start and extent of one dimension's box over `subs`.
fn dim_box(
    subs: &[&AffineExpr],
    outer: &dyn Fn(usize) -> bool,
    ranges: &[Range],
) -> Option<(AffineExpr, usize)> {
    let mut base: Option<AffineExpr> = None;
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for s in subs {
        let (o, i) = separate(s, outer)?;
        let (ilo, ihi) = i.range(ranges)?;
        let shift = match &base {
            None => {
                base = Some(o);
                0
            }
            Some(b) => {
                let diff = o.add_scaled(b, -1).simplified(None);
                if !diff.terms.is_empty() {
                    return None;
                }
                diff.constant
            }
        };
        lo = lo.min(ilo + shift);
        hi = hi.max(ihi + shift);
    }
    let base = base?;
    Some((base.offset(lo).simplified(None), (hi - lo + 1) as usize))
}
