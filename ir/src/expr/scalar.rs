//! The scalar body of a tensor expression: constants, input accesses,
//! arithmetic, comparisons, selection, math functions and casts.
//!
//! Values are numbers; a comparison gives 1 or 0 and a condition holds when
//! it is non-zero (booleans are 0/1). Evaluation runs in f64.

use super::affine::AffineExpr;
use crate::DType;
use serde::{Deserialize, Serialize};

/// A read of one element of input number `input`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Access {
    pub input: usize,
    /// One subscript per dimension of the input.
    pub index: Vec<AffineExpr>,
}

/// One-argument functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UnaryOp {
    Neg,
    Abs,
    Exp,
    Log,
    Sqrt,
    Tanh,
    Erf,
    Recip,
    Floor,
    Ceil,
    Sin,
    Cos,
}

/// Two-argument arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    /// NaN if either side is NaN.
    Max,
    /// NaN if either side is NaN.
    Min,
    Pow,
}

/// Comparisons (false when either side is NaN, except `Ne`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A scalar expression over the iterators of its tensor expression.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ScalarExpr {
    /// A literal number.
    Const(f64),
    /// An element of an input; the subscripts must be in bounds.
    Access(Access),
    /// 1 if every subscript of the access is inside the input, else 0
    /// (guards reads of padded regions).
    InBounds(Access),
    /// The reduced value, in a tensor expression's epilogue only.
    Acc,
    Unary(UnaryOp, Box<ScalarExpr>),
    Binary(BinaryOp, Box<ScalarExpr>, Box<ScalarExpr>),
    Cmp(CmpOp, Box<ScalarExpr>, Box<ScalarExpr>),
    /// `cond ? then : other`; only the chosen side is evaluated.
    Select(Box<ScalarExpr>, Box<ScalarExpr>, Box<ScalarExpr>),
    /// Converts to the dtype's value set (rounding, truncation, 0/1 for bool).
    Cast(DType, Box<ScalarExpr>),
}

impl ScalarExpr {
    /// Reads input `input` at `index`.
    pub fn access(input: usize, index: Vec<AffineExpr>) -> ScalarExpr {
        ScalarExpr::Access(Access { input, index })
    }
    /// Reads input `input` at `index`, or `fill` where that is out of bounds.
    pub fn guarded(input: usize, index: Vec<AffineExpr>, fill: f64) -> ScalarExpr {
        let a = Access { input, index };
        ScalarExpr::select(
            ScalarExpr::InBounds(a.clone()),
            ScalarExpr::Access(a),
            ScalarExpr::Const(fill),
        )
    }
    pub fn unary(op: UnaryOp, x: ScalarExpr) -> ScalarExpr {
        ScalarExpr::Unary(op, Box::new(x))
    }
    pub fn binary(op: BinaryOp, a: ScalarExpr, b: ScalarExpr) -> ScalarExpr {
        ScalarExpr::Binary(op, Box::new(a), Box::new(b))
    }
    pub fn cmp(op: CmpOp, a: ScalarExpr, b: ScalarExpr) -> ScalarExpr {
        ScalarExpr::Cmp(op, Box::new(a), Box::new(b))
    }
    pub fn select(c: ScalarExpr, t: ScalarExpr, e: ScalarExpr) -> ScalarExpr {
        ScalarExpr::Select(Box::new(c), Box::new(t), Box::new(e))
    }
    pub fn cast(to: DType, x: ScalarExpr) -> ScalarExpr {
        ScalarExpr::Cast(to, Box::new(x))
    }

    /// Calls `f` on every access (guards included), depth first.
    pub fn visit_accesses(&self, f: &mut dyn FnMut(&Access)) {
        match self {
            ScalarExpr::Const(_) | ScalarExpr::Acc => {}
            ScalarExpr::Access(a) | ScalarExpr::InBounds(a) => f(a),
            ScalarExpr::Unary(_, x) | ScalarExpr::Cast(_, x) => x.visit_accesses(f),
            ScalarExpr::Binary(_, a, b) | ScalarExpr::Cmp(_, a, b) => {
                a.visit_accesses(f);
                b.visit_accesses(f);
            }
            ScalarExpr::Select(c, t, e) => {
                c.visit_accesses(f);
                t.visit_accesses(f);
                e.visit_accesses(f);
            }
        }
    }

    /// True if the expression reads the accumulator.
    pub fn uses_acc(&self) -> bool {
        match self {
            ScalarExpr::Acc => true,
            ScalarExpr::Const(_) | ScalarExpr::Access(_) | ScalarExpr::InBounds(_) => false,
            ScalarExpr::Unary(_, x) | ScalarExpr::Cast(_, x) => x.uses_acc(),
            ScalarExpr::Binary(_, a, b) | ScalarExpr::Cmp(_, a, b) => a.uses_acc() || b.uses_acc(),
            ScalarExpr::Select(c, t, e) => c.uses_acc() || t.uses_acc() || e.uses_acc(),
        }
    }
}

impl UnaryOp {
    /// The function's name as printed.
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Abs => "abs",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Erf => "erf",
            UnaryOp::Recip => "recip",
            UnaryOp::Floor => "floor",
            UnaryOp::Ceil => "ceil",
            UnaryOp::Sin => "sin",
            UnaryOp::Cos => "cos",
        }
    }
}
