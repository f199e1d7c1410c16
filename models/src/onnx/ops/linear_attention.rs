//! Opset-27 recurrent-state mappings: `LinearAttention` and
//! `CausalConvWithState`. Omitted optional state/bias inputs become zero
//! constants so the Kiln ops always see the same inputs.

use crate::onnx::{MappingRegistry, NodeCtx};
use crate::{map_err, MapError};
use kiln_ir::{Op, Tensor, ValueId};

/// Input `i`, or a zero constant of `shape` in the dtype of input 0.
fn or_zeros(ctx: &mut NodeCtx, i: usize, shape: Vec<usize>) -> Result<ValueId, MapError> {
    match ctx.opt_input(i)? {
        Some(v) => Ok(v),
        None => {
            let dt = ctx.input_type(0)?.dtype;
            ctx.constant(Tensor::zeros(dt, shape))
        }
    }
}

fn head_count(ctx: &NodeCtx, name: &str) -> Result<usize, MapError> {
    let h = ctx.attrs().int(name)?;
    usize::try_from(h)
        .ok()
        .filter(|&h| h > 0)
        .ok_or_else(|| map_err!("{name} must be positive, got {h}"))
}

fn linear_attention(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let (hq, hkv) = (
        head_count(ctx, "q_num_heads")?,
        head_count(ctx, "kv_num_heads")?,
    );
    let (q, v) = (ctx.input_type(0)?, ctx.input_type(2)?);
    if q.rank() != 3 || v.rank() != 3 {
        return Err(map_err!("LinearAttention query and value must be rank 3"));
    }
    let shape = vec![q.shape[0], hkv, q.shape[2] / hq, v.shape[2] / hkv];
    let state = or_zeros(ctx, 3, shape)?;
    let rule = ctx
        .attrs()
        .str_or("update_rule", "gated_delta")?
        .to_string();
    let gating = rule == "gated" || rule == "gated_delta";
    let delta = rule == "delta" || rule == "gated_delta";
    let mut ins = vec![ctx.input(0)?, ctx.input(1)?, ctx.input(2)?, state];
    for (slot, wanted, name) in [(4, gating, "decay"), (5, delta, "beta")] {
        match (ctx.opt_input(slot)?, wanted) {
            (Some(x), true) => ins.push(x),
            (None, false) => {}
            (_, true) => return Err(map_err!("update_rule {rule} needs the {name} input")),
            (_, false) => return Err(map_err!("update_rule {rule} forbids the {name} input")),
        }
    }
    let mut op = Op::new("LinearAttention");
    op.attrs = ctx.attrs().clone();
    ctx.emit(op, &ins)?;
    Ok(())
}

fn causal_conv(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let (x, w) = (ctx.input_type(0)?, ctx.input_type(1)?);
    if x.rank() != 3 || w.rank() != 3 || w.shape[2] == 0 {
        return Err(map_err!(
            "CausalConvWithState needs rank-3 input and weight"
        ));
    }
    let (b, c, k) = (x.shape[0], x.shape[1], w.shape[2]);
    let bias = or_zeros(ctx, 2, vec![c])?;
    let past = or_zeros(ctx, 3, vec![b, c, k - 1])?;
    let mut op = Op::new("CausalConvWithState");
    op.attrs = ctx.attrs().clone();
    let ins = [ctx.input(0)?, ctx.input(1)?, bias, past];
    ctx.emit(op, &ins)?;
    Ok(())
}

pub fn register(r: &mut MappingRegistry) {
    r.add("", "LinearAttention", 27, linear_attention);
    r.add("", "CausalConvWithState", 27, causal_conv);
}
