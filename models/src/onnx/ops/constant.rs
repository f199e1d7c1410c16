//! Constant and Identity-like nodes, resolved at import time.

use crate::onnx::{MappingRegistry, NodeCtx};
use crate::{map_err, MapError};
use kiln_ir::{Attr, Tensor};

/// `Constant`: one of `value` (tensor), `value_float(s)`, `value_int(s)`.
fn constant(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let a = ctx.attrs();
    let t = match (
        a.get("value"),
        a.get("value_float"),
        a.get("value_floats"),
        a.get("value_int"),
        a.get("value_ints"),
    ) {
        (Some(Attr::Tensor(t)), ..) => (**t).clone(),
        (_, Some(Attr::Float(f)), ..) => Tensor::scalar(*f as f32),
        (_, _, Some(Attr::Floats(v)), ..) => {
            Tensor::from_vec(vec![v.len()], v.iter().map(|&x| x as f32).collect())?
        }
        (_, _, _, Some(Attr::Int(i)), _) => Tensor::scalar(*i),
        (.., Some(Attr::Ints(v))) => Tensor::from_i64s(v),
        _ => {
            if a.contains("value_string") || a.contains("value_strings") {
                return Err(MapError::Unsupported("string constants".into()));
            }
            if a.contains("sparse_value") {
                return Err(MapError::Unsupported("sparse constants".into()));
            }
            return Err(map_err!("Constant has no supported value attribute"));
        }
    };
    ctx.const_output(0, t)
}

/// `Identity`: the output names the input value.
fn identity(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let x = ctx.input(0)?;
    ctx.alias_output(0, x);
    Ok(())
}

pub fn register(r: &mut MappingRegistry) {
    r.add("", "Constant", 1, constant);
    r.add("", "Identity", 1, identity);
}
