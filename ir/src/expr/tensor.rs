//! A tensor expression: one output element per point of the output
//! iterators, computed by a scalar body, optionally reduced over reduction
//! iterators and finished by an epilogue.
//!
//! `out[i..] = epilogue(reduce(r..) body)`; without a reduction the body is
//! the value; without an epilogue the reduced value is.

use super::scalar::ScalarExpr;
use crate::{ensure, Result, TensorType};
use serde::{Deserialize, Serialize};

/// A loop iterator: a name (for printing) and its range `0..extent`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iter {
    pub name: String,
    pub extent: usize,
}

impl Iter {
    pub fn new(name: impl Into<String>, extent: usize) -> Iter {
        Iter {
            name: name.into(),
            extent,
        }
    }
}

/// How a reduction combines values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReduceKind {
    Sum,
    Max,
    Min,
    Prod,
}

impl ReduceKind {
    /// The value of an empty reduction.
    pub fn identity(self) -> f64 {
        match self {
            ReduceKind::Sum => 0.0,
            ReduceKind::Prod => 1.0,
            ReduceKind::Max => f64::NEG_INFINITY,
            ReduceKind::Min => f64::INFINITY,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            ReduceKind::Sum => "sum",
            ReduceKind::Max => "max",
            ReduceKind::Min => "min",
            ReduceKind::Prod => "prod",
        }
    }
}

/// Reduction iterators and how values combine along them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reduction {
    pub kind: ReduceKind,
    pub iters: Vec<Iter>,
}

/// A named input of the expression with its type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Operand {
    pub name: String,
    pub ty: TensorType,
}

/// One output tensor defined element-wise over its iterators.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorExpr {
    /// The output's name.
    pub name: String,
    pub output: TensorType,
    /// Inputs, referred to by position in accesses.
    pub inputs: Vec<Operand>,
    /// One iterator per output dimension, in order.
    pub iters: Vec<Iter>,
    pub reduce: Option<Reduction>,
    /// The summand (with a reduction) or the value (without).
    pub body: ScalarExpr,
    /// Applied to the reduced value ([`ScalarExpr::Acc`]); reduction only.
    pub epilogue: Option<ScalarExpr>,
}

impl TensorExpr {
    /// All iterators: output iterators, then reduction iterators. Iterator
    /// numbers in subscripts index this list.
    pub fn all_iters(&self) -> Vec<&Iter> {
        let red = self.reduce.iter().flat_map(|r| r.iters.iter());
        self.iters.iter().chain(red).collect()
    }

    /// Points of the reduction per output element (1 without one).
    pub fn reduce_points(&self) -> usize {
        self.reduce
            .iter()
            .flat_map(|r| &r.iters)
            .map(|i| i.extent)
            .product()
    }

    /// Structural checks: iterators match the output shape, names are
    /// unique, accesses name existing inputs with one subscript per dim and
    /// existing iterators, and `Acc` appears only in an epilogue.
    pub fn check(&self) -> Result<()> {
        ensure!(
            self.iters
                .iter()
                .map(|i| i.extent)
                .eq(self.output.shape.iter().copied()),
            "{}: iterators do not match the output shape {:?}",
            self.name,
            self.output.shape
        );
        let all = self.all_iters();
        for (k, it) in all.iter().enumerate() {
            ensure!(
                !all[..k].iter().any(|o| o.name == it.name),
                "{}: iterator name `{}` is used twice",
                self.name,
                it.name
            );
        }
        ensure!(
            !self.body.uses_acc(),
            "{}: the body reads the accumulator",
            self.name
        );
        ensure!(
            self.epilogue.is_none() || self.reduce.is_some(),
            "{}: an epilogue needs a reduction",
            self.name
        );
        let mut err = None;
        let mut visit = |a: &super::scalar::Access| {
            if err.is_none() {
                err = self.check_access(a, all.len()).err();
            }
        };
        self.body.visit_accesses(&mut visit);
        if let Some(e) = &self.epilogue {
            e.visit_accesses(&mut visit);
        }
        err.map_or(Ok(()), Err)
    }

    fn check_access(&self, a: &super::scalar::Access, n_iters: usize) -> Result<()> {
        let op = self.inputs.get(a.input);
        ensure!(
            op.is_some(),
            "{}: access to missing input {}",
            self.name,
            a.input
        );
        let rank = op.map_or(0, |o| o.ty.rank());
        ensure!(
            a.index.len() == rank,
            "{}: input {} has rank {rank}, access has {} subscripts",
            self.name,
            a.input,
            a.index.len()
        );
        ensure!(
            a.index
                .iter()
                .all(|e| e.max_iter().is_none_or(|m| m < n_iters)),
            "{}: a subscript of input {} uses an unknown iterator",
            self.name,
            a.input
        );
        Ok(())
    }
}
