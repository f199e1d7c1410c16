//! `ai.onnx.preview.training` mappings: Momentum, Adagrad, Adam map one-to-one
//! onto the Kiln ops of the same names (variadic inputs and outputs).

use crate::onnx::{MappingRegistry, NodeCtx};
use crate::MapError;

const DOMAIN: &str = "ai.onnx.preview.training";

fn same(ctx: &mut NodeCtx) -> Result<(), MapError> {
    ctx.emit_same()
}

pub fn register(r: &mut MappingRegistry) {
    for op in ["Momentum", "Adagrad", "Adam"] {
        r.add(DOMAIN, op, 1, same);
    }
}
