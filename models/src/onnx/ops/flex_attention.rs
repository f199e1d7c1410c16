//! `ai.onnx.preview` FlexAttention: without `score_mod`/`prob_mod` subgraphs
//! it is plain scaled dot-product attention over rank-4 Q, K, V (GQA when Hq is
//! a multiple of Hkv), mapped onto Kiln's `Attention` with the same `scale`.
//! The modifier subgraphs are not supported (Kiln does not inline subgraphs here).

use crate::onnx::{MappingRegistry, NodeCtx};
use crate::{map_err, MapError};
use kiln_ir::{Attr, Op};

fn flex_attention(ctx: &mut NodeCtx) -> Result<(), MapError> {
    if let Some(a) = ctx.node.attribute.iter().find(|a| a.g.is_some()) {
        return Err(MapError::Unsupported(format!(
            "FlexAttention with a `{}` subgraph",
            a.name()
        )));
    }
    for i in 0..3 {
        if ctx.input_type(i)?.rank() != 4 {
            return Err(map_err!("FlexAttention inputs must be rank 4"));
        }
    }
    let mut op = Op::new("Attention");
    if let Some(s) = ctx.attrs().opt_float("scale")? {
        op = op.with("scale", Attr::Float(s));
    }
    let ins = [ctx.input(0)?, ctx.input(1)?, ctx.input(2)?];
    ctx.emit(op, &ins)?;
    Ok(())
}

pub fn register(r: &mut MappingRegistry) {
    r.add("ai.onnx.preview", "FlexAttention", 1, flex_attention);
}
