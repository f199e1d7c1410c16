//! `LabelEncoder` (ai.onnx.ml): maps each input element to the value of the
//! equal key, or to `default`. Attributes (tensors): `keys` (1-D, the input's
//! dtype: string, i64 or a float), `values` (1-D, same length; its dtype is the
//! output's), `default` (one element of the values' dtype).

use super::util::arity;
use crate::{ensure, Attrs, DType, Registry, Result, Tensor, TensorType};

fn infer(a: &Attrs, ins: &[&TensorType]) -> Result<TensorType> {
    arity(ins, 1, 1)?;
    let (keys, values, default) = (a.tensor("keys")?, a.tensor("values")?, a.tensor("default")?);
    ensure!(
        keys.dtype() == ins[0].dtype,
        "keys are {} but the input is {}",
        keys.dtype(),
        ins[0].dtype
    );
    ensure!(
        keys.len() == values.len(),
        "{} keys but {} values",
        keys.len(),
        values.len()
    );
    ensure!(
        default.len() == 1 && default.dtype() == values.dtype(),
        "default must be one {} value",
        values.dtype()
    );
    Ok(TensorType::new(values.dtype(), ins[0].shape.clone()))
}

/// Keys in a form that compares across dtypes: strings as-is, numbers by value
/// (NaN matches NaN).
#[derive(PartialEq)]
enum Key {
    Str(String),
    Num(u64),
}

fn keys_of(t: &Tensor) -> Vec<Key> {
    match t.as_strings() {
        Ok(v) => v.iter().cloned().map(Key::Str).collect(),
        Err(_) => t
            .to_f64_vec()
            .into_iter()
            .map(|x| {
                Key::Num(if x.is_nan() {
                    u64::MAX
                } else {
                    (x + 0.0).to_bits()
                })
            })
            .collect(),
    }
}

fn eval(a: &Attrs, x: &Tensor) -> Result<Tensor> {
    infer(a, &[&x.ty()])?;
    let (keys, values, default) = (a.tensor("keys")?, a.tensor("values")?, a.tensor("default")?);
    let table: std::collections::HashMap<Vec<u8>, usize> = keys_of(keys)
        .into_iter()
        .enumerate()
        .map(|(i, k)| (key_bytes(&k), i))
        .collect();
    let pick: Vec<Option<usize>> = keys_of(x)
        .iter()
        .map(|k| table.get(&key_bytes(k)).copied())
        .collect();
    if values.dtype() == DType::String {
        let (v, d) = (values.as_strings()?, &default.as_strings()?[0]);
        let out = pick
            .iter()
            .map(|p| p.map_or_else(|| d.clone(), |i| v[i].clone()))
            .collect();
        return Tensor::from_strings(x.shape().to_vec(), out);
    }
    let idx: Vec<usize> = pick.iter().map(|p| p.map_or(values.len(), |i| i)).collect();
    let both = crate::dispatch_dtype!(values.dtype(), T => {
        let v: Vec<T> = values.as_slice::<T>()?.iter().chain(default.as_slice::<T>()?).copied().collect();
        Tensor::from_vec(vec![v.len()], v)?
    });
    super::util::take_flat(&both, x.shape().to_vec(), &idx)
}

fn key_bytes(k: &Key) -> Vec<u8> {
    match k {
        Key::Str(s) => [&[0u8][..], s.as_bytes()].concat(),
        Key::Num(n) => [&[1u8][..], &n.to_le_bytes()[..]].concat(),
    }
}

pub fn register(r: &mut Registry) {
    r.add(
        "LabelEncoder",
        |a, ins, _| Ok(vec![infer(a, ins)?]),
        |a, ins, _| {
            arity(ins, 1, 1)?;
            Ok(vec![eval(a, ins[0])?])
        },
    );
}
