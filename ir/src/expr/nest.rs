//! Loop nests: the loops a schedule produces for a tensor expression.
//!
//! Every loop has a stable id; loop variables are the iterators of the
//! affine expressions held here. Each expression iterator is defined by an
//! affine expression over loop ids (`defs`), and a loop may carry a dynamic
//! upper bound (the tail of a split): it runs `0..min(extent, bound)`.
//! Output loops always enclose reduction loops.

use super::affine::AffineExpr;
use super::schedule::Step;
use super::stage::{Stage, StageKind};
use super::tensor::TensorExpr;

/// One loop of a nest.
#[derive(Clone, Debug, PartialEq)]
pub struct Loop {
    /// Stable id: the iterator number of this loop's variable.
    pub id: usize,
    pub name: String,
    /// Static trip count upper bound.
    pub extent: usize,
    /// Dynamic upper bounds over enclosing loop ids (tails of splits): the
    /// loop runs `0..min(extent, bounds...)`.
    pub bounds: Vec<AffineExpr>,
    /// Iterates a reduction iterator.
    pub reduce: bool,
    /// SIMD width when vectorized.
    pub vector: Option<usize>,
    /// Body copies per step (1: not unrolled).
    pub unroll: usize,
    /// Split among threads (outermost only).
    pub parallel: bool,
}

/// A scheduled tensor expression.
#[derive(Clone, Debug, PartialEq)]
pub struct LoopNest {
    pub expr: TensorExpr,
    /// Loops, outermost first.
    pub loops: Vec<Loop>,
    /// Per expression iterator: its value over loop ids.
    pub defs: Vec<AffineExpr>,
    /// Staged inputs (packs, cache reads, compute-ats), at most one per input.
    pub stages: Vec<Stage>,
    next_id: usize,
}

type Res = std::result::Result<(), String>;

impl LoopNest {
    /// The default nest: one loop per iterator, in order.
    pub fn new(e: &TensorExpr) -> LoopNest {
        let n_out = e.iters.len();
        let loops: Vec<Loop> = e
            .all_iters()
            .iter()
            .enumerate()
            .map(|(k, it)| Loop {
                id: k,
                name: it.name.clone(),
                extent: it.extent,
                bounds: vec![],
                reduce: k >= n_out,
                vector: None,
                unroll: 1,
                parallel: false,
            })
            .collect();
        let defs = (0..loops.len()).map(AffineExpr::iter).collect();
        LoopNest {
            expr: e.clone(),
            next_id: loops.len(),
            loops,
            defs,
            stages: vec![],
        }
    }

    /// The position of the loop named `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.loops.iter().position(|l| l.name == name)
    }

    fn find(&self, name: &str) -> std::result::Result<usize, String> {
        let names: Vec<&str> = self.loops.iter().map(|l| l.name.as_str()).collect();
        self.position(name)
            .ok_or_else(|| format!("no loop named `{name}` (loops: {})", names.join(", ")))
    }

    /// Number of loops ids handed out (ids are `0..id_count()`).
    pub fn id_count(&self) -> usize {
        self.next_id
    }

    /// Applies one step.
    pub fn step(&mut self, s: &Step) -> Res {
        match s {
            Step::Split { iter, factor } => self.split(iter, *factor),
            Step::Reorder { order } => self.reorder(order),
            Step::Fuse { outer, inner } => self.fuse(outer, inner),
            Step::Vectorize { iter, lanes } => self.vectorize(iter, *lanes),
            Step::Unroll { iter, factor } => self.unroll(iter, *factor),
            Step::Parallel { iter } => {
                let p = self.find(iter)?;
                self.loops[p].parallel = true;
                Ok(())
            }
            Step::Pack { input, axis, block } => self.pack(*input, *axis, *block),
            Step::CacheRead { input, at } => {
                let at = self.loops[self.find(at)?].id;
                self.add_stage(*input, StageKind::CacheRead, Some(at))
            }
            Step::ComputeAt { producer, at } => {
                let input = self.input_named(producer)?;
                let at = self.loops[self.find(at)?].id;
                self.add_stage(input, StageKind::ComputeAt, Some(at))
            }
        }
    }

    /// The input named `name` (or numbered, when no input has that name).
    fn input_named(&self, name: &str) -> std::result::Result<usize, String> {
        let ins = &self.expr.inputs;
        ins.iter()
            .position(|o| o.name == name)
            .or_else(|| name.parse().ok().filter(|&k: &usize| k < ins.len()))
            .ok_or_else(|| {
                let names: Vec<&str> = ins.iter().map(|o| o.name.as_str()).collect();
                format!("no input named `{name}` (inputs: {})", names.join(", "))
            })
    }

    fn add_stage(&mut self, input: usize, kind: StageKind, at: Option<usize>) -> Res {
        let n = self.expr.inputs.len();
        if input >= n {
            return Err(format!("input {input} does not exist ({n} inputs)"));
        }
        if self.stages.iter().any(|s| s.input == input) {
            return Err(format!(
                "input {input} (`{}`) is already staged (one stage per input)",
                self.expr.inputs[input].name
            ));
        }
        self.stages.push(Stage { input, kind, at });
        Ok(())
    }

    fn pack(&mut self, input: usize, axis: usize, block: usize) -> Res {
        let Some(op) = self.expr.inputs.get(input) else {
            let n = self.expr.inputs.len();
            return Err(format!("input {input} does not exist ({n} inputs)"));
        };
        let rank = op.ty.rank();
        if axis >= rank {
            return Err(format!(
                "axis {axis} of input `{}` is out of range (rank {rank})",
                op.name
            ));
        }
        if block == 0 {
            return Err(format!("pack block of input `{}` is 0", op.name));
        }
        self.add_stage(input, StageKind::Pack { axis, block }, None)
    }

    fn untransformed(&self, p: usize, what: &str) -> Res {
        let l = &self.loops[p];
        if l.vector.is_some() || l.unroll > 1 || l.parallel {
            return Err(format!(
                "cannot {what} `{}` after vectorize/unroll/parallel",
                l.name
            ));
        }
        Ok(())
    }

    fn add_loop(&mut self, p: usize, name: String, extent: usize, like: &Loop) -> usize {
        if self.position(&name).is_some() {
            return usize::MAX;
        }
        let id = self.next_id;
        self.next_id += 1;
        let l = Loop {
            id,
            name,
            extent,
            bounds: vec![],
            reduce: like.reduce,
            vector: None,
            unroll: 1,
            parallel: false,
        };
        self.loops.insert(p, l);
        id
    }

    /// Replaces loop id `old` by `by` in every definition and bound.
    fn substitute(&mut self, old: usize, by: &AffineExpr) {
        let f = |i: usize| {
            if i == old {
                by.clone()
            } else {
                AffineExpr::iter(i)
            }
        };
        for d in &mut self.defs {
            *d = d.substitute(&f).simplified(None);
        }
        for l in &mut self.loops {
            for b in &mut l.bounds {
                *b = b.substitute(&f).simplified(None);
            }
        }
    }

    fn split(&mut self, name: &str, f: usize) -> Res {
        let p = self.find(name)?;
        self.untransformed(p, "split")?;
        if f == 0 {
            return Err(format!("split factor of `{name}` is 0"));
        }
        let (on, inn) = (format!("{name}.o"), format!("{name}.i"));
        if self.position(&on).is_some() || self.position(&inn).is_some() {
            return Err(format!("split of `{name}` makes a loop name that exists"));
        }
        let l = self.loops.remove(p);
        let o = self.add_loop(p, on, l.extent.div_ceil(f), &l);
        let i = self.add_loop(p + 1, inn, f.min(l.extent.max(1)), &l);
        let (fi, fo) = (f as i64, AffineExpr::iter(o));
        // The outer loop: ceil(b / f) for each bound b; the inner loop:
        // b - f*o for each bound b and for the extent (if f does not divide it).
        self.loops[p].bounds = l
            .bounds
            .iter()
            .map(|b| b.clone().offset(fi - 1).floor_div(fi))
            .collect();
        let mut tails = l.bounds.clone();
        if !l.extent.is_multiple_of(f) {
            tails.push(AffineExpr::constant(l.extent as i64));
        }
        self.loops[p + 1].bounds = tails
            .into_iter()
            .map(|b| b.add_scaled(&fo, -fi).simplified(None))
            .collect();
        let by = AffineExpr::iter(i).plus_iter(fi, o);
        self.substitute(l.id, &by);
        Ok(())
    }

    fn fuse(&mut self, outer: &str, inner: &str) -> Res {
        let (p, q) = (self.find(outer)?, self.find(inner)?);
        if q != p + 1 {
            return Err(format!("`{outer}` does not directly enclose `{inner}`"));
        }
        self.untransformed(p, "fuse")?;
        self.untransformed(q, "fuse")?;
        let (a, b) = (self.loops[p].clone(), self.loops[q].clone());
        if a.reduce != b.reduce {
            return Err(format!(
                "cannot fuse output loop with reduction loop (`{outer}`, `{inner}`)"
            ));
        }
        if !a.bounds.is_empty() || !b.bounds.is_empty() {
            return Err(format!(
                "cannot fuse `{outer}` and `{inner}`: a split tail bounds one"
            ));
        }
        self.loops.drain(p..=q);
        let v = self.add_loop(p, format!("{outer}_{inner}"), a.extent * b.extent, &a);
        if v == usize::MAX {
            self.loops.insert(p, b);
            self.loops.insert(p, a);
            return Err(format!(
                "fusion of `{outer}` and `{inner}` makes a loop name that exists"
            ));
        }
        let eb = b.extent.max(1) as i64;
        self.substitute(a.id, &AffineExpr::iter(v).floor_div(eb));
        self.substitute(b.id, &AffineExpr::iter(v).modulo(eb));
        Ok(())
    }

    fn reorder(&mut self, order: &[String]) -> Res {
        let mut pos = vec![];
        for n in order {
            let p = self.find(n)?;
            if pos.contains(&p) {
                return Err(format!("`{n}` appears twice"));
            }
            pos.push(p);
        }
        let moved: Vec<Loop> = pos.iter().map(|&p| self.loops[p].clone()).collect();
        pos.sort_unstable();
        for (p, l) in pos.into_iter().zip(moved) {
            self.loops[p] = l;
        }
        self.check_bounds()
    }

    /// Every dynamic bound refers only to enclosing loops.
    fn check_bounds(&self) -> Res {
        for (p, l) in self.loops.iter().enumerate() {
            for inner in &self.loops[p..] {
                if l.bounds.iter().any(|b| b.uses(inner.id)) {
                    return Err(format!(
                        "`{}` must stay inside `{}` (its bound uses it)",
                        l.name, inner.name
                    ));
                }
            }
        }
        Ok(())
    }

    fn vectorize(&mut self, name: &str, lanes: usize) -> Res {
        let p = self.find(name)?;
        if !(2..=16).contains(&lanes) || !lanes.is_power_of_two() {
            return Err(format!(
                "vector width {lanes} of `{name}` is not 2, 4, 8 or 16"
            ));
        }
        if let Some(v) = self.loops.iter().find(|l| l.vector.is_some()) {
            return Err(format!(
                "`{}` is already vectorized (one vector loop per nest)",
                v.name
            ));
        }
        if self.loops[p].unroll > 1 {
            return Err(format!("vectorize `{name}` before unrolling it"));
        }
        self.loops[p].vector = Some(lanes);
        Ok(())
    }

    fn unroll(&mut self, name: &str, factor: usize) -> Res {
        let p = self.find(name)?;
        if !(1..=64).contains(&factor) {
            return Err(format!(
                "unroll factor {factor} of `{name}` is not in 1..=64"
            ));
        }
        self.loops[p].unroll = factor;
        Ok(())
    }

    /// Checks the final nest: output loops enclose reduction loops, bounds
    /// refer to enclosing loops, a parallel loop is the outermost output loop.
    pub fn finish(&self) -> Res {
        self.check_bounds()?;
        self.check_stages()?;
        if let Some(w) = self.loops.windows(2).find(|w| w[0].reduce && !w[1].reduce) {
            return Err(format!(
                "reduction loop `{}` encloses output loop `{}` (accumulating in memory is not supported)",
                w[0].name, w[1].name
            ));
        }
        for (p, l) in self.loops.iter().enumerate() {
            let bounded = self.loops[p..]
                .iter()
                .find(|i| i.bounds.iter().any(|b| b.uses(l.id)));
            if let (Some(_), Some(i)) = (l.vector, bounded) {
                return Err(format!(
                    "vectorized loop `{}` bounds inner loop `{}` (lanes would need different trip counts)",
                    l.name, i.name
                ));
            }
            if l.parallel && (p != 0 || l.reduce) {
                return Err(format!(
                    "parallel loop `{}` is not the outermost output loop",
                    l.name
                ));
            }
        }
        Ok(())
    }

    /// Every stage's loop still exists, encloses the vectorized loop, and
    /// a computed input is not read by an epilogue outside its loop.
    fn check_stages(&self) -> Res {
        for s in &self.stages {
            let Some(at) = s.at else { continue };
            let what = match s.kind {
                StageKind::ComputeAt => "compute_at",
                _ => "cache_read",
            };
            let name = &self.expr.inputs[s.input].name;
            let Some(p) = self.loops.iter().position(|l| l.id == at) else {
                return Err(format!(
                    "the loop of {what} `{name}` was split or fused after it (stage after transforming loops)"
                ));
            };
            if let Some(v) = self.loops[..=p].iter().find(|l| l.vector.is_some()) {
                return Err(format!(
                    "{what} `{name}` at `{}` is inside vectorized loop `{}` (stage outside it)",
                    self.loops[p].name, v.name
                ));
            }
            let mut read = false;
            if let Some(ep) = &self.expr.epilogue {
                ep.visit_accesses(&mut |a| read |= a.input == s.input);
            }
            if s.kind == StageKind::ComputeAt && read && !self.epilogue_staged(s) {
                return Err(format!(
                    "compute_at `{name}` at reduction loop `{}`: the epilogue reads it outside that loop",
                    self.loops[p].name
                ));
            }
        }
        Ok(())
    }

    /// Number of output loops (they come first).
    pub fn n_out(&self) -> usize {
        self.loops.iter().take_while(|l| !l.reduce).count()
    }
}
