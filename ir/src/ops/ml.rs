//! Classic ML ops of ONNX's `ai.onnx.ml` domain.
//!
//! - `Binarizer`: `threshold` (float, 0). `y = x > threshold ? 1 : 0`, x's dtype.
//! - `ArrayFeatureExtractor`: inputs `data`, `indices` (int); picks
//!   `data[..., indices]` (flattened indices, each in `0..last dim`). Output
//!   `[*data.shape[..-1], n]`; 1-D data gives `[1, n]`.
//! - `TreeEnsemble` (ml opset 5): input `X [N, F]` float; attributes as in
//!   ONNX: `nodes_splits`, `nodes_modes`, `leaf_weights`, `membership_values`
//!   (tensors or float lists), `nodes_featureids`, `nodes_truenodeids`,
//!   `nodes_falsenodeids`, `nodes_trueleafs`, `nodes_falseleafs`,
//!   `nodes_missing_value_tracks_true`, `leaf_targetids`, `tree_roots` (ints),
//!   `n_targets`, `aggregate_function` (0 avg, 1 sum default, 2 min, 3 max),
//!   `post_transform` (only 0, none). Output `[N, n_targets]` in X's dtype.
//! - `TfIdfVectorizer` (ai.onnx domain, child file `tfidf.rs`).

use super::util::arity;
use crate::{ensure, op_err, Attr, Attrs, Registry, Result, Tensor, TensorType};

fn binarizer(a: &Attrs, x: &Tensor) -> Result<Tensor> {
    let th = a.float_or("threshold", 0.0)?;
    let v: Vec<f64> = x
        .to_f64_vec()
        .iter()
        .map(|&e| if e > th { 1.0 } else { 0.0 })
        .collect();
    Ok(Tensor::from_vec(x.shape().to_vec(), v)?.cast(x.dtype()))
}

fn afe_type(ins: &[&TensorType]) -> Result<TensorType> {
    arity(ins, 2, 2)?;
    let (d, i) = (ins[0], ins[1]);
    ensure!(
        d.rank() >= 1,
        "ArrayFeatureExtractor needs data of rank >= 1"
    );
    ensure!(
        i.dtype.is_int(),
        "indices must be integers, got {}",
        i.dtype
    );
    let mut shape = if d.rank() == 1 {
        vec![1]
    } else {
        d.shape[..d.rank() - 1].to_vec()
    };
    shape.push(i.numel());
    Ok(TensorType::new(d.dtype, shape))
}

fn afe(data: &Tensor, ind: &Tensor) -> Result<Tensor> {
    let ty = afe_type(&[&data.ty(), &ind.ty()])?;
    let last = *data.shape().last().unwrap_or(&1);
    let idx = ind.to_i64_vec()?;
    let mut pos = Vec::with_capacity(ty.numel());
    for row in 0..data.len() / last.max(1) {
        for &i in &idx {
            ensure!(
                (0..last as i64).contains(&i),
                "index {i} is out of range for a last dim of size {last}"
            );
            pos.push(row * last + i as usize);
        }
    }
    super::util::take_flat(data, ty.shape, &pos)
}

/// A float-valued attribute given as a tensor or a float list.
fn fvec(a: &Attrs, name: &str) -> Result<Option<Vec<f64>>> {
    match a.get(name) {
        None => Ok(None),
        Some(Attr::Tensor(t)) => Ok(Some(t.to_f64_vec())),
        Some(Attr::Floats(v)) => Ok(Some(v.clone())),
        Some(Attr::Ints(v)) => Ok(Some(v.iter().map(|&i| i as f64).collect())),
        Some(_) => Err(op_err!("attribute {name} must be a tensor or a list")),
    }
}

fn ivec(a: &Attrs, name: &str) -> Result<Vec<i64>> {
    match a.get(name) {
        Some(Attr::Tensor(t)) => t.to_i64_vec(),
        _ => a.ints(name),
    }
}

#[path = "tfidf.rs"]
mod tfidf;
#[path = "tree_ensemble.rs"]
mod tree_ensemble;

pub fn register(r: &mut Registry) {
    r.add(
        "Binarizer",
        |a, ins, _| {
            arity(ins, 1, 1)?;
            a.float_or("threshold", 0.0)?;
            ensure!(ins[0].dtype.is_numeric(), "Binarizer needs numbers");
            Ok(vec![ins[0].clone()])
        },
        |a, ins, _| {
            arity(ins, 1, 1)?;
            Ok(vec![binarizer(a, ins[0])?])
        },
    );
    r.add(
        "ArrayFeatureExtractor",
        |_, ins, _| Ok(vec![afe_type(ins)?]),
        |_, ins, _| {
            arity(ins, 2, 2)?;
            Ok(vec![afe(ins[0], ins[1])?])
        },
    );
    tree_ensemble::register(r);
    tfidf::register(r);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn afe_picks_last_axis_and_checks_range() {
        let d = Tensor::from_vec(vec![2, 3], vec![0.0f32, 1., 2., 3., 4., 5.]).unwrap();
        let i = Tensor::from_i64s(&[2, 0]);
        let r = afe(&d, &i).unwrap();
        assert_eq!(r.shape(), &[2, 2]);
        assert_eq!(r.to_f64_vec(), vec![2., 0., 5., 3.]);
        assert!(afe(&d, &Tensor::from_i64s(&[3])).is_err());
    }
}
