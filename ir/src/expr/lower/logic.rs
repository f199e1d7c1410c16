//! Boolean logic and broadcasting copies: `And`, `Or`, `Xor`, `Not` on bool
//! values (0/1: and is min, or is max, xor is inequality, not is `== 0`), and
//! `Expand` (the input broadcast to the output shape) for every dtype whose
//! values f64 holds exactly.

use super::elementwise::exact_in_f64;
use super::{Ctx, Rule};
use crate::expr::scalar::{BinaryOp, CmpOp, ScalarExpr as S};
use crate::expr::TensorExpr;
use crate::{DType, Result};
use std::collections::HashMap;

fn all_bool(c: &Ctx) -> bool {
    c.inputs.iter().all(|o| o.ty.dtype == DType::Bool) && c.output.ty.dtype == DType::Bool
}

fn logic(c: &Ctx) -> Result<Option<TensorExpr>> {
    if !all_bool(c) {
        return Ok(None);
    }
    let body = match (c.node.op.kind.as_str(), c.inputs.len()) {
        ("And", 2) => S::binary(BinaryOp::Min, c.broadcast(0), c.broadcast(1)),
        ("Or", 2) => S::binary(BinaryOp::Max, c.broadcast(0), c.broadcast(1)),
        ("Xor", 2) => S::cmp(CmpOp::Ne, c.broadcast(0), c.broadcast(1)),
        ("Not", 1) => S::cmp(CmpOp::Eq, c.broadcast(0), S::Const(0.0)),
        _ => return Ok(None),
    };
    Ok(Some(c.pointwise(S::cast(DType::Bool, body))))
}

fn expand(c: &Ctx) -> Result<Option<TensorExpr>> {
    if c.inputs.len() != 1 || !exact_in_f64(c.ty(0).dtype) {
        return Ok(None);
    }
    Ok(Some(c.pointwise(c.broadcast(0))))
}

pub(super) fn register(r: &mut HashMap<&'static str, Rule>) {
    for k in ["And", "Or", "Xor", "Not"] {
        r.insert(k, logic as Rule);
    }
    r.insert("Expand", expand as Rule);
}
