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

#[cfg(test)]
mod tests {
    use crate::onnx::proto::{
        tensor_shape_proto::{dimension::Value as Dim, Dimension},
        type_proto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto,
        TypeProto, ValueInfoProto,
    };
    use crate::onnx::{from_bytes, ImportOptions};
    use kiln_ir::{interp, Tensor};
    use prost::Message;
    use std::collections::HashMap;

    fn f32_value(name: &str, shape: &[i64]) -> ValueInfoProto {
        let dim = shape
            .iter()
            .map(|&d| Dimension {
                value: Some(Dim::DimValue(d)),
                ..Default::default()
            })
            .collect();
        let tt = type_proto::Tensor {
            elem_type: Some(1),
            shape: Some(TensorShapeProto { dim }),
        };
        ValueInfoProto {
            name: Some(name.into()),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(tt)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Clip with a bound known only at run time lowers to Max/Min.
    #[test]
    fn clip_with_runtime_bound() {
        let node = NodeProto {
            input: vec!["x".into(), "lo".into(), "".into()],
            output: vec!["y".into()],
            op_type: Some("Clip".into()),
            ..Default::default()
        };
        let graph = GraphProto {
            node: vec![node],
            input: vec![f32_value("x", &[3]), f32_value("lo", &[])],
            output: vec![f32_value("y", &[3])],
            ..Default::default()
        };
        let model = ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(13),
            }],
            graph: Some(graph),
            ..Default::default()
        };
        let path = std::path::Path::new("clip.onnx");
        let m = from_bytes(&model.encode_to_vec(), path, &ImportOptions::default()).unwrap();
        let kinds: Vec<&str> = m.graph.nodes().iter().map(|n| n.op.kind.as_str()).collect();
        assert_eq!(kinds, ["Max"]);
        let feeds = HashMap::from([
            (
                "x".to_string(),
                Tensor::from_vec(vec![3], vec![-2.0f32, 0.5, 3.0]).unwrap(),
            ),
            ("lo".to_string(), Tensor::scalar(0.0f32)),
        ]);
        let y = interp::run(&m.graph, &feeds).unwrap();
        assert_eq!(y[0].as_slice::<f32>().unwrap(), &[0.0, 0.5, 3.0]);
    }
}
