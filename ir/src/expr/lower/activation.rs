//! Activations and the remaining float element-wise ops, written with the
//! scalar IR's arithmetic, comparisons, selection and math functions:
//! HardSigmoid, HardSwish, Gelu (`approximate` none / tanh), Mish,
//! Softplus, Softsign, Swish, Elu, Selu, Celu, LeakyRelu, ThresholdedRelu,
//! PRelu, Shrink, Sign, Round (ties to even), IsNaN, IsInf and float Mod
//! (`fmod` 0 and 1). Attributes and defaults follow `ops/unary/activation.rs`.
//!
//! Float inputs only (f16/bf16/f32/f64); integer cases are left to the
//! interpreter (`Ok(None)`).

use super::elementwise::{plain_float, sigmoid};
use super::{Ctx, Rule};
use crate::expr::scalar::{BinaryOp as B, CmpOp, ScalarExpr as S, UnaryOp as U};
use crate::expr::TensorExpr;
use crate::{ensure, op_err, Result};
use std::collections::HashMap;

fn k(c: f64) -> S {
    S::Const(c)
}
fn add(a: S, b: S) -> S {
    S::binary(B::Add, a, b)
}
fn sub(a: S, b: S) -> S {
    S::binary(B::Sub, a, b)
}
fn mul(a: S, b: S) -> S {
    S::binary(B::Mul, a, b)
}
fn div(a: S, b: S) -> S {
    S::binary(B::Div, a, b)
}
fn un(op: U, x: S) -> S {
    S::unary(op, x)
}
fn sel(c: S, t: S, e: S) -> S {
    S::select(c, t, e)
}
fn lt(a: S, b: S) -> S {
    S::cmp(CmpOp::Lt, a, b)
}
fn gt(a: S, b: S) -> S {
    S::cmp(CmpOp::Gt, a, b)
}
fn clamp01(x: S) -> S {
    S::binary(B::Min, S::binary(B::Max, x, k(0.0)), k(1.0))
}

/// `exp(x) - 1` (the plain difference; absolute error near 0 only).
fn expm1(x: S) -> S {
    sub(un(U::Exp, x), k(1.0))
}

/// `ln(1 + u)` for `u >= 0`, accurate for tiny `u` (Goldberg: `u ln w /
/// (w - 1)` with `w = 1 + u` rounded, `u` itself where `w` rounds to 1).
fn log1p(u: S) -> S {
    let w = add(k(1.0), u.clone());
    let r = div(
        mul(un(U::Log, w.clone()), u.clone()),
        sub(w.clone(), k(1.0)),
    );
    sel(S::cmp(CmpOp::Eq, w, k(1.0)), u, r)
}

/// `ln(1 + exp(x))` as `max(x, 0) + ln(1 + exp(-|x|))` (no overflow).
fn softplus(x: S) -> S {
    let e = un(U::Exp, un(U::Neg, un(U::Abs, x.clone())));
    add(S::binary(B::Max, x, k(0.0)), log1p(e))
}

fn gelu(c: &Ctx, x: S) -> Result<S> {
    let inner = match c.attrs.str_or("approximate", "none")? {
        "none" => un(U::Erf, mul(x.clone(), k(std::f64::consts::FRAC_1_SQRT_2))),
        "tanh" => {
            let cube = mul(mul(x.clone(), x.clone()), x.clone());
            let a = add(x.clone(), mul(k(0.044715), cube));
            un(U::Tanh, mul(k((2.0 / std::f64::consts::PI).sqrt()), a))
        }
        m => return Err(op_err!("Gelu approximate must be none or tanh, got `{m}`")),
    };
    Ok(mul(mul(k(0.5), x), add(k(1.0), inner)))
}

/// Round half to even: `r = floor x`, `d = x - r` (exact); up when `d > 1/2`
/// or `d = 1/2` and `r` is odd.
fn round(x: S) -> S {
    let r = un(U::Floor, x.clone());
    let d = sub(x, r.clone());
    let h = mul(r.clone(), k(0.5));
    let odd = S::cmp(CmpOp::Ne, un(U::Floor, h.clone()), h);
    let tie = S::cmp(CmpOp::Eq, d.clone(), k(0.5));
    let up = sel(gt(d, k(0.5)), k(1.0), sel(tie, odd, k(0.0)));
    add(r, up)
}

/// `x > 0 ? 1 : x < 0 ? -1 : x` (0, -0 and NaN stay).
fn sign(x: S) -> S {
    sel(
        gt(x.clone(), k(0.0)),
        k(1.0),
        sel(lt(x.clone(), k(0.0)), k(-1.0), x),
    )
}

fn shrink(c: &Ctx, x: S) -> Result<S> {
    let l = c.attrs.float_or("lambd", 0.5)?;
    let b = c.attrs.float_or("bias", 0.0)?;
    let hi = sel(gt(x.clone(), k(l)), sub(x.clone(), k(b)), k(0.0));
    Ok(sel(lt(x.clone(), k(-l)), add(x, k(b)), hi))
}

fn selu(c: &Ctx, x: S) -> Result<S> {
    let a = c.attrs.float_or("alpha", 1.673_263_192_176_818_8)?;
    let g = c.attrs.float_or("gamma", 1.050_701_022_148_132_3)?;
    let neg = mul(k(g * a), expm1(x.clone()));
    Ok(sel(gt(x.clone(), k(0.0)), mul(k(g), x), neg))
}

fn celu(c: &Ctx, x: S) -> Result<S> {
    let a = c.attrs.float_or("alpha", 1.0)?;
    ensure!(a != 0.0, "Celu alpha must not be 0");
    let neg = mul(k(a), expm1(div(x.clone(), k(a))));
    Ok(add(
        S::binary(B::Max, x, k(0.0)),
        S::binary(B::Min, neg, k(0.0)),
    ))
}

/// The body of a one-input activation applied to `x`.
fn body(c: &Ctx, x: S) -> Result<Option<S>> {
    let f = |name, d| c.attrs.float_or(name, d);
    Ok(Some(match c.node.op.kind.as_str() {
        "HardSigmoid" => clamp01(add(mul(k(f("alpha", 0.2)?), x), k(f("beta", 0.5)?))),
        "HardSwish" => mul(x.clone(), clamp01(add(div(x, k(6.0)), k(0.5)))),
        "Gelu" => gelu(c, x)?,
        "Mish" => mul(x.clone(), un(U::Tanh, softplus(x))),
        "Softplus" => softplus(x),
        "Softsign" => div(x.clone(), add(k(1.0), un(U::Abs, x))),
        "Swish" => mul(x.clone(), sigmoid(mul(k(f("alpha", 1.0)?), x))),
        "Elu" => {
            let neg = mul(k(f("alpha", 1.0)?), expm1(x.clone()));
            sel(lt(x.clone(), k(0.0)), neg, x)
        }
        "Selu" => selu(c, x)?,
        "Celu" => celu(c, x)?,
        "LeakyRelu" => {
            let neg = mul(k(f("alpha", 0.01)?), x.clone());
            sel(lt(x.clone(), k(0.0)), neg, x)
        }
        "ThresholdedRelu" => sel(gt(x.clone(), k(f("alpha", 1.0)?)), x, k(0.0)),
        "Shrink" => shrink(c, x)?,
        "Sign" => sign(x),
        "Round" => round(x),
        _ => return Ok(None),
    }))
}

fn unary(c: &Ctx) -> Result<Option<TensorExpr>> {
    if c.inputs.len() != 1 || !plain_float(c.ty(0).dtype) {
        return Ok(None);
    }
    Ok(body(c, c.broadcast(0))?.map(|b| c.pointwise(b)))
}

fn prelu(c: &Ctx) -> Result<Option<TensorExpr>> {
    if c.inputs.len() != 2 || !c.inputs.iter().all(|o| plain_float(o.ty.dtype)) {
        return Ok(None);
    }
    let (x, s) = (c.broadcast(0), c.broadcast(1));
    let b = sel(lt(x.clone(), k(0.0)), mul(x.clone(), s), x);
    Ok(Some(c.pointwise(b)))
}

/// IsNaN and IsInf (`detect_positive`, `detect_negative`): bool outputs.
fn predicate(c: &Ctx) -> Result<Option<TensorExpr>> {
    if c.inputs.len() != 1 || !plain_float(c.ty(0).dtype) {
        return Ok(None);
    }
    let x = c.broadcast(0);
    let b = if c.node.op.kind == "IsNaN" {
        S::cmp(CmpOp::Ne, x.clone(), x)
    } else {
        let pos = c.attrs.int_or("detect_positive", 1)? != 0;
        let neg = c.attrs.int_or("detect_negative", 1)? != 0;
        let is = |v: f64| S::cmp(CmpOp::Eq, x.clone(), k(v));
        match (pos, neg) {
            (true, true) => S::cmp(CmpOp::Eq, un(U::Abs, x.clone()), k(f64::INFINITY)),
            (true, false) => is(f64::INFINITY),
            (false, true) => is(f64::NEG_INFINITY),
            (false, false) => k(0.0),
        }
    };
    Ok(Some(c.pointwise(b)))
}

/// Float Mod: `fmod = 1` is C's `fmod` (sign of `a`), `fmod = 0` moves a
/// non-zero remainder to the sign of `b`. `a - trunc(a / b) b`, corrected
/// by one `|b|` when the rounded quotient is off by one.
fn modulo(c: &Ctx) -> Result<Option<TensorExpr>> {
    if c.inputs.len() != 2 || !c.inputs.iter().all(|o| plain_float(o.ty.dtype)) {
        return Ok(None);
    }
    let fmod = c.attrs.int_or("fmod", 0)? != 0;
    let (a, b) = (c.broadcast(0), c.broadcast(1));
    let q = div(a.clone(), b.clone());
    let t = sel(
        lt(q.clone(), k(0.0)),
        un(U::Ceil, q.clone()),
        un(U::Floor, q),
    );
    let r = sub(a.clone(), mul(t, b.clone()));
    // Toward the sign of `a`, below |b| in magnitude.
    let sa = sel(lt(a, k(0.0)), k(-1.0), k(1.0));
    let ab = un(U::Abs, b.clone());
    let wrong_sign = lt(mul(r.clone(), sa.clone()), k(0.0));
    let r = sel(wrong_sign, add(r.clone(), mul(sa.clone(), ab.clone())), r);
    let too_big = S::cmp(CmpOp::Ge, un(U::Abs, r.clone()), ab.clone());
    let r = sel(too_big, sub(r.clone(), mul(sa, ab)), r);
    if fmod {
        return Ok(Some(c.pointwise(r)));
    }
    let differ = S::cmp(CmpOp::Ne, lt(r.clone(), k(0.0)), lt(b.clone(), k(0.0)));
    let nonzero = S::cmp(CmpOp::Ne, r.clone(), k(0.0));
    let fix = mul(differ, nonzero);
    Ok(Some(c.pointwise(sel(fix, add(r.clone(), b), r))))
}

pub(super) fn register(r: &mut HashMap<&'static str, Rule>) {
    let unaries = [
        "HardSigmoid",
        "HardSwish",
        "Gelu",
        "Mish",
        "Softplus",
        "Softsign",
        "Swish",
        "Elu",
        "Selu",
        "Celu",
        "LeakyRelu",
        "ThresholdedRelu",
        "Shrink",
        "Sign",
        "Round",
    ];
    for name in unaries {
        r.insert(name, unary as Rule);
    }
    r.insert("PRelu", prelu as Rule);
    r.insert("IsNaN", predicate as Rule);
    r.insert("IsInf", predicate as Rule);
    r.insert("Mod", modulo as Rule);
}
