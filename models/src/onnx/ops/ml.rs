//! `ai.onnx.ml` mappings: Binarizer, ArrayFeatureExtractor and TreeEnsemble
//! map one-to-one onto the Kiln ops of the same names (attributes unchanged),
//! as does ai.onnx's TfIdfVectorizer.

use crate::onnx::{MappingRegistry, NodeCtx};
use crate::{map_err, MapError};

const ML: &str = "ai.onnx.ml";

fn same(ctx: &mut NodeCtx) -> Result<(), MapError> {
    ctx.emit_same()
}

pub fn register(r: &mut MappingRegistry) {
    r.add(ML, "Binarizer", 1, same);
    r.add(ML, "ArrayFeatureExtractor", 1, same);
    r.add(ML, "TreeEnsemble", 5, same);
    r.add("", "TfIdfVectorizer", 9, same);
    r.add(ML, "LabelEncoder", 2, label_encoder);
}

/// LabelEncoder: the typed `keys_*`/`values_*`/`default_*` attributes (or the
/// opset-4 `*_tensor` forms) become the tensor attributes `keys`, `values`,
/// `default` of the Kiln op.
fn label_encoder(ctx: &mut NodeCtx) -> Result<(), MapError> {
    use kiln_ir::{Attr, Attrs, Op, Tensor};
    use std::sync::Arc;
    let a = ctx.attrs();
    let list = |prefix: &str| -> Result<Option<Tensor>, MapError> {
        Ok(
            match (
                a.get(&format!("{prefix}_tensor")),
                a.get(&format!("{prefix}_strings")),
                a.get(&format!("{prefix}_int64s")),
                a.get(&format!("{prefix}_floats")),
            ) {
                (Some(Attr::Tensor(t)), ..) => Some((**t).clone()),
                (_, Some(Attr::Strs(v)), ..) => {
                    Some(Tensor::from_strings(vec![v.len()], v.clone())?)
                }
                (_, _, Some(Attr::Ints(v)), _) => Some(Tensor::from_i64s(v)),
                (_, _, _, Some(Attr::Floats(v))) => Some(Tensor::from_vec(
                    vec![v.len()],
                    v.iter().map(|&x| x as f32).collect(),
                )?),
                _ => None,
            },
        )
    };
    let keys = list("keys")?.ok_or_else(|| map_err!("LabelEncoder needs keys"))?;
    let values = list("values")?.ok_or_else(|| map_err!("LabelEncoder needs values"))?;
    let default = match (
        a.get("default_tensor"),
        a.get("default_string"),
        a.get("default_int64"),
        a.get("default_float"),
    ) {
        (Some(Attr::Tensor(t)), ..) => (**t).clone().reshape(vec![1])?,
        _ if values.dtype() == kiln_ir::DType::String => Tensor::from_strings(
            vec![1],
            vec![a.str_or("default_string", "_Unused")?.to_string()],
        )?,
        _ if values.dtype() == kiln_ir::DType::I64 => {
            Tensor::from_i64s(&[a.int_or("default_int64", -1)?])
        }
        _ => Tensor::full(values.dtype(), vec![1], a.float_or("default_float", -0.0)?),
    };
    let attrs = Attrs::new()
        .with("keys", Attr::Tensor(Arc::new(keys)))
        .with("values", Attr::Tensor(Arc::new(values)))
        .with("default", Attr::Tensor(Arc::new(default)));
    let x = ctx.input(0)?;
    ctx.emit(
        Op {
            kind: "LabelEncoder".into(),
            attrs,
        },
        &[x],
    )?;
    Ok(())
}
