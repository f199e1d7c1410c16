//! Schedules: an explicit, ordered list of loop transformations applied to
//! a tensor expression's default loop nest (one loop per iterator, output
//! iterators outermost). Plain serde data, so a tuner can enumerate, store
//! and replay them; [`apply`] is deterministic.
//!
//! Loops are named: initially after the expression's iterators; a split of
//! `x` makes `x.o` and `x.i`; a fusion of `a` and `b` makes `a_b`.
//!
//! `Pack`, `CacheRead` and `ComputeAt` stage an input (at most one stage
//! per input; see [`super::stage`]); the loop a stage names must still
//! exist when the schedule ends (stage after splitting and fusing).

use super::nest::LoopNest;
use super::tensor::TensorExpr;
use crate::Result;
use serde::{Deserialize, Serialize};

/// One loop transformation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Step {
    /// `iter` becomes `iter.o` (extent `ceil(n / factor)`) around `iter.i`
    /// (extent `factor`, bounded by the remainder on the last outer step).
    Split { iter: String, factor: usize },
    /// Places the named loops, in this order, into the positions they
    /// occupy now (other loops stay where they are).
    Reorder { order: Vec<String> },
    /// Fuses adjacent loops `outer` (directly enclosing) and `inner` into
    /// one loop `outer_inner`; both must be untransformed by tails.
    Fuse { outer: String, inner: String },
    /// Runs `lanes` consecutive iterations of `iter` as one SIMD step
    /// (with a scalar tail).
    Vectorize { iter: String, lanes: usize },
    /// Emits `factor` copies of the loop body per step (with a remainder).
    Unroll { iter: String, factor: usize },
    /// Marks the outermost loop as the one split among threads.
    Parallel { iter: String },
    /// Repacks input `input`, before the loops, so that `axis` is blocked
    /// by `block`: `axis` becomes `axis / block` in place and `axis % block`
    /// a new innermost dimension (last block zero-padded); the body reads
    /// the packed copy.
    Pack {
        input: usize,
        axis: usize,
        block: usize,
    },
    /// At the top of each iteration of loop `at`, copies the box of input
    /// `input` that the body reads during that iteration (clamped to the
    /// input) into a dense local buffer, which the body then reads.
    CacheRead { input: usize, at: String },
    /// Like `CacheRead`, but the box of input `producer` (named by the
    /// input's name, or its number) is computed from the input's producer
    /// expression, which the code generator is given; the input itself is
    /// never read. `at` must enclose the vectorized loop.
    ComputeAt { producer: String, at: String },
}

impl Step {
    /// The step's name as used in errors.
    pub fn name(&self) -> &'static str {
        match self {
            Step::Split { .. } => "split",
            Step::Reorder { .. } => "reorder",
            Step::Fuse { .. } => "fuse",
            Step::Vectorize { .. } => "vectorize",
            Step::Unroll { .. } => "unroll",
            Step::Parallel { .. } => "parallel",
            Step::Pack { .. } => "pack",
            Step::CacheRead { .. } => "cache_read",
            Step::ComputeAt { .. } => "compute_at",
        }
    }
}

/// An ordered list of steps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Schedule {
    pub steps: Vec<Step>,
}

impl Schedule {
    /// The schedule with these steps.
    pub fn new(steps: Vec<Step>) -> Schedule {
        Schedule { steps }
    }

    /// Appends a step, builder style.
    pub fn then(mut self, s: Step) -> Schedule {
        self.steps.push(s);
        self
    }
}

/// Applies `s` to `e`'s default loop nest; errors name the failing step.
pub fn apply(e: &TensorExpr, s: &Schedule) -> Result<LoopNest> {
    e.check()?;
    let mut nest = LoopNest::new(e);
    for (k, step) in s.steps.iter().enumerate() {
        nest.step(step).map_err(|err| {
            crate::op_err!("{}: schedule step {k} ({}): {err}", e.name, step.name())
        })?;
    }
    nest.finish()
        .map_err(|err| crate::op_err!("{}: schedule: {err}", e.name))?;
    Ok(nest)
}
