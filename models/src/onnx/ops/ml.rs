//! `ai.onnx.ml` mappings: Binarizer, ArrayFeatureExtractor and TreeEnsemble
//! map one-to-one onto the Kiln ops of the same names (attributes unchanged),
//! as does ai.onnx's TfIdfVectorizer.

use crate::onnx::{MappingRegistry, NodeCtx};
use crate::MapError;

const ML: &str = "ai.onnx.ml";

fn same(ctx: &mut NodeCtx) -> Result<(), MapError> {
    ctx.emit_same()
}

pub fn register(r: &mut MappingRegistry) {
    r.add(ML, "Binarizer", 1, same);
    r.add(ML, "ArrayFeatureExtractor", 1, same);
    r.add(ML, "TreeEnsemble", 5, same);
    r.add("", "TfIdfVectorizer", 9, same);
}
