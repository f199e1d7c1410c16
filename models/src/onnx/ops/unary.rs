//! Element-wise unary math and activations, mapped one-to-one onto the Kiln
//! ops of the same names (see `kiln_ir::ops::unary`), keeping only the
//! attributes Kiln knows (opsets before 6 carried `consumed_inputs`).
//!
//! Clip: opsets 1 and 6 give `min`/`max` as float attributes; from opset 11
//! they are optional scalar inputs. Constant bounds become Kiln `min`/`max`
//! attributes (exact Int for integer inputs); a bound computed at run time is
//! applied with Kiln `Max`/`Min` nodes instead (same result: `min > max`
//! gives `max`).

use crate::onnx::{MappingRegistry, NodeCtx};
use crate::{map_err, MapError};
use kiln_ir::{Attr, Op};

/// Emits the Kiln op `kind` on all present inputs, copying only the attributes in `keep`.
pub(crate) fn emit_filtered(ctx: &mut NodeCtx, kind: &str, keep: &[&str]) -> Result<(), MapError> {
    let mut op = Op::new(kind);
    for &k in keep {
        if let Some(v) = ctx.attrs().get(k) {
            op.attrs.set(k, v.clone());
        }
    }
    let ins = ctx.inputs()?;
    ctx.emit(op, &ins)?;
    Ok(())
}

/// Op types without attributes.
const PLAIN: [&str; 29] = [
    "Abs",
    "Neg",
    "Sign",
    "Reciprocal",
    "Exp",
    "Log",
    "Sqrt",
    "Sin",
    "Cos",
    "Tan",
    "Asin",
    "Acos",
    "Atan",
    "Sinh",
    "Cosh",
    "Asinh",
    "Acosh",
    "Atanh",
    "Erf",
    "Floor",
    "Ceil",
    "Round",
    "Tanh",
    "Sigmoid",
    "Relu",
    "Softplus",
    "Softsign",
    "Mish",
    "HardSwish",
];

/// Op types with attributes, and the attributes Kiln keeps.
const WITH_ATTRS: [(&str, &[&str]); 10] = [
    ("LeakyRelu", &["alpha"]),
    ("Elu", &["alpha"]),
    ("Celu", &["alpha"]),
    ("ThresholdedRelu", &["alpha"]),
    ("Swish", &["alpha"]),
    ("Selu", &["alpha", "gamma"]),
    ("HardSigmoid", &["alpha", "beta"]),
    ("Shrink", &["lambd", "bias"]),
    ("Gelu", &["approximate"]),
    ("PRelu", &[]),
];

fn map_op(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let kind = ctx.op_type().to_string();
    let keep = WITH_ATTRS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(&[][..], |e| e.1);
    emit_filtered(ctx, &kind, keep)
}

/// Clip before opset 11: float attributes `min` and `max`.
fn clip_attrs(ctx: &mut NodeCtx) -> Result<(), MapError> {
    emit_filtered(ctx, "Clip", &["min", "max"])
}

/// Clip from opset 11: optional inputs 1 (min) and 2 (max).
fn clip_inputs(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let x = ctx.input(0)?;
    let xt = ctx.ty(x).clone();
    let mut op = Op::new("Clip");
    let mut dynamic = Vec::new();
    for (i, name) in [(1, "min"), (2, "max")] {
        let Some(v) = ctx.opt_input(i)? else { continue };
        let bt = ctx.ty(v).clone();
        if bt.dtype != xt.dtype || bt.shape.iter().product::<usize>() != 1 {
            return Err(map_err!(
                "Clip {name} must be a single {} value, got {bt}",
                xt.dtype
            ));
        }
        match ctx.try_const(v)? {
            Some(t) if xt.dtype.is_float() => op.attrs.set(name, Attr::Float(t.scalar_f64()?)),
            Some(t) => op.attrs.set(name, Attr::Int(t.to_i64_vec()?[0])),
            None => dynamic.push((name, v)),
        }
    }
    if dynamic.is_empty() {
        ctx.emit(op, &[x])?;
        return Ok(());
    }
    // Run-time bounds: clip the constant ones first, then Max/Min with the others.
    let mut cur = if op.attrs.0.is_empty() {
        x
    } else {
        ctx.emit1(op, &[x])?
    };
    for (k, &(name, v)) in dynamic.iter().enumerate() {
        let op = Op::new(if name == "min" { "Max" } else { "Min" });
        if k + 1 == dynamic.len() {
            ctx.emit(op, &[cur, v])?;
        } else {
            cur = ctx.emit1(op, &[cur, v])?;
        }
    }
    Ok(())
}

pub fn register(r: &mut MappingRegistry) {
    for op in PLAIN.iter().chain(WITH_ATTRS.iter().map(|e| &e.0)) {
        r.add("", op, 1, map_op);
    }
    r.add("", "Clip", 1, clip_attrs);
    r.add("", "Clip", 11, clip_inputs);
}
