//! The default schedule: fuse the innermost run of output loops (and of
//! reduction loops) whose accesses stay contiguous across the pair, vectorize
//! the innermost contiguous loop (a contiguous innermost reduction gets
//! vector partial accumulators; otherwise the innermost output loop; with a
//! reduction, unrolled by 4 for independent accumulators), tile strided
//! pointwise copies 16x16, and mark the output loops outside the innermost
//! group, fused into one, parallel.
//! Those choices are [`ScheduleKnobs`] (the tuner's `jit` family sets them);
//! [`default_schedule`] uses their defaults.

use super::dtypes::compute_type;
use kiln_ir::expr::index::flat_offset;
use kiln_ir::expr::{AffineExpr, Schedule, Step, TensorExpr};

/// Every access's flat element offset over the expression's iterators.
fn offsets(e: &TensorExpr, with_output: bool) -> Vec<AffineExpr> {
    let mut v = vec![];
    let mut add = |a: &kiln_ir::expr::Access| {
        let shape = &e.inputs[a.input].ty.shape;
        v.push(flat_offset(&a.index, shape).simplified(None));
    };
    e.body.visit_accesses(&mut add);
    if with_output {
        let idx: Vec<AffineExpr> = (0..e.iters.len()).map(AffineExpr::iter).collect();
        v.push(flat_offset(&idx, &e.output.shape).simplified(None));
    }
    v
}

/// The default schedule's choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScheduleKnobs {
    /// Fuse the innermost contiguous run of loops into one (false: only
    /// the innermost loop is vectorized).
    pub fuse: bool,
    /// Tile edge of a strided pointwise copy (below 2: not tiled).
    pub tile: usize,
    /// Unroll factor of the vectorized loop of an expression with a
    /// reduction (independent accumulators or unroll-and-jam; 1: none).
    pub unroll: usize,
}

impl Default for ScheduleKnobs {
    fn default() -> Self {
        ScheduleKnobs {
            fuse: true,
            tile: TILE,
            unroll: 4,
        }
    }
}

/// Fuses iterators `first..end` from the inside out while contiguous (not
/// at all without `fuse`); returns the innermost group's name and its
/// outermost member.
fn fuse_run(
    e: &TensorExpr,
    (first, end): (usize, usize),
    offs: &[AffineExpr],
    fuse: bool,
    steps: &mut Vec<Step>,
) -> (String, usize) {
    let all = e.all_iters();
    let mut cur = all[end - 1].name.clone();
    let mut outer = end - 1;
    let first = if fuse { first } else { end - 1 };
    for a in (first..end - 1).rev() {
        let (ea, eb) = (all[a].extent, all[a + 1].extent);
        let ok = ea == 1
            || eb == 1
            || offs
                .iter()
                .all(|o| match (o.linear_coef(a), o.linear_coef(a + 1)) {
                    (Some(ca), Some(cb)) => ca == cb * eb as i64,
                    _ => false,
                });
        if !ok {
            break;
        }
        cur = push_fuse(&all[a].name, cur, steps);
        outer = a;
    }
    (cur, outer)
}

/// Fuses loop `outer` with the loop `inner` right inside it; returns the
/// fused loop's name.
fn push_fuse(outer: &str, inner: String, steps: &mut Vec<Step>) -> String {
    let name = format!("{outer}_{inner}");
    steps.push(Step::Fuse {
        outer: outer.to_string(),
        inner,
    });
    name
}

/// True when every access moves by 0 or 1 elements along iterator `i`,
/// and some access moves by 1.
fn contiguous(offs: &[AffineExpr], i: usize) -> bool {
    let c: Vec<Option<i64>> = offs.iter().map(|o| o.linear_coef(i)).collect();
    c.iter().all(|c| matches!(c, Some(0 | 1))) && c.contains(&Some(1))
}

/// Default tile edge of a transposing copy.
const TILE: usize = 16;

/// For a pointwise expression whose innermost loop `b` (outermost member
/// `from`) reads some input with a stride: 16x16 tiles of the two innermost
/// loops so that each cache line read is used whole. Returns the steps and
/// the new outermost loop name.
fn tile_strided(
    e: &TensorExpr,
    (b, from): (&str, usize),
    lanes: usize,
    tile: usize,
) -> Option<(Vec<Step>, String)> {
    let inner: usize = e.iters[from..].iter().map(|i| i.extent).product();
    if !strided_map(e) || from == 0 || tile < 2 || inner < tile || e.iters[from - 1].extent < tile {
        return None;
    }
    let a = e.iters[from - 1].name.clone();
    let (ao, ai, bo, bi) = (
        format!("{a}.o"),
        format!("{a}.i"),
        format!("{b}.o"),
        format!("{b}.i"),
    );
    let steps = vec![
        Step::Split {
            iter: a.clone(),
            factor: tile,
        },
        Step::Split {
            iter: b.to_string(),
            factor: tile,
        },
        Step::Reorder {
            order: vec![ao.clone(), bo, ai, bi.clone()],
        },
        Step::Vectorize { iter: bi, lanes },
    ];
    let outer = if from == 1 {
        ao
    } else {
        e.iters[0].name.clone()
    };
    Some((steps, outer))
}

/// True for a map whose innermost loop reads some input with a stride (a
/// transposing copy: the `tile` knob applies).
pub fn strided_map(e: &TensorExpr) -> bool {
    let n = e.iters.len();
    e.reduce.is_none()
        && n > 0
        && offsets(e, false)
            .iter()
            .any(|o| !matches!(o.linear_coef(n - 1), Some(0 | 1)))
}

/// A good schedule for `e`; see the module docs.
pub fn default_schedule(e: &TensorExpr) -> Schedule {
    schedule_with(e, &ScheduleKnobs::default())
}

/// The default schedule's rules with the choices `k`.
pub fn schedule_with(e: &TensorExpr, k: &ScheduleKnobs) -> Schedule {
    let lanes = compute_type(e).map_or(4, |t| 16 / t.bytes() as usize);
    let n_out = e.iters.len();
    let n_all = e.all_iters().len();
    let mut steps = vec![];
    let all_offs = offsets(e, true);
    let out = (n_out > 0).then(|| fuse_run(e, (0, n_out), &all_offs, k.fuse, &mut steps));
    if let Some((name, from)) = &out {
        if let Some((tiled, outer)) = tile_strided(e, (name, *from), lanes, k.tile) {
            steps.extend(tiled);
            steps.push(Step::Parallel { iter: outer });
            return Schedule::new(steps);
        }
    }
    let body = offsets(e, false);
    let red = (n_all > n_out).then(|| fuse_run(e, (n_out, n_all), &body, k.fuse, &mut steps));
    let extent = |from: usize, to: usize| {
        e.all_iters()[from..to]
            .iter()
            .map(|i| i.extent)
            .product::<usize>()
    };
    let vec = match (&out, &red) {
        (_, Some((name, from)))
            if contiguous(&body, n_all - 1) && extent(*from, n_all) >= lanes =>
        {
            Some(name.clone())
        }
        (Some((name, from)), Some(_))
            if contiguous(&body, n_out - 1) && extent(*from, n_out) >= lanes =>
        {
            Some(name.clone())
        }
        (Some((name, from)), None) if extent(*from, n_out) >= 2 => Some(name.clone()),
        _ => None,
    };
    if let Some(iter) = vec {
        // Unrolled by 4: independent accumulators (a vectorized reduction)
        // or unroll-and-jam over the reduction (a vectorized output loop).
        let unroll = red.is_some().then_some(k.unroll).filter(|&f| f > 1);
        steps.push(Step::Vectorize {
            iter: iter.clone(),
            lanes,
        });
        if let Some(factor) = unroll {
            steps.push(Step::Unroll { iter, factor });
        }
    }
    if let Some((name, from)) = &out {
        let iter = match *from {
            0 => name.clone(),
            from => fuse_outer(e, from, &mut steps),
        };
        steps.push(Step::Parallel { iter });
    }
    Schedule::new(steps)
}

/// Fuses the output loops `0..from` (outside the innermost group) into one
/// and returns its name, so that threads split all of them: with only the
/// outermost loop parallel, `[1, C, H, W]` maps (batch 1) ran on one thread.
fn fuse_outer(e: &TensorExpr, from: usize, steps: &mut Vec<Step>) -> String {
    let last = e.iters[from - 1].name.clone();
    e.iters[..from - 1]
        .iter()
        .rev()
        .fold(last, |cur, it| push_fuse(&it.name, cur, steps))
}
