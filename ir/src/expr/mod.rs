//! The loop-level IR: each graph op lowers to a [`TensorExpr`], an output
//! defined element-wise over iterators, optionally a reduction over more
//! iterators, with affine (quasi-affine) subscripts into its inputs and a
//! scalar body. It is plain data (serde), prints readably
//! (`C[i, j] = sum(k: 0..3) A[i, k] * B[k, j]`) and has a naive evaluator
//! checked against the reference interpreter.
//!
//! - [`affine`]: index expressions; [`scalar`]: scalar bodies;
//!   [`tensor`]: the tensor expression; [`print`]: its text form;
//!   [`eval()`]: the naive evaluator; [`lower()`]: graph node to expression;
//!   [`schedule`], [`nest`], [`stage`]: schedules, the loop nests they
//!   make and the inputs they stage (pack, cache read, compute at).

pub mod affine;
mod eval;
pub mod index;
pub mod inline;
pub mod lower;
pub mod nest;
mod nest_print;
mod print;
pub mod scalar;
pub mod schedule;
pub mod stage;
pub mod tensor;

pub use affine::{AffineExpr, Atom};
pub use eval::eval;
pub use inline::inline;
pub use lower::lower;
pub use nest::{Loop, LoopNest};
pub use scalar::{Access, BinaryOp, CmpOp, ScalarExpr, UnaryOp};
pub use schedule::{apply, Schedule, Step};
pub use stage::{Region, Stage, StageKind};
pub use tensor::{Iter, Operand, ReduceKind, Reduction, TensorExpr};

#[cfg(test)]
mod tests;
