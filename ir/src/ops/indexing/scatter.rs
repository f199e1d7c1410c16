//! Scatter ops: a copy of `data` with `updates` written (or combined) at the
//! positions given by `indices`.
//!
//! - `ScatterElements`: inputs data, indices, updates (indices and updates of
//!   one shape, the rank of data); `axis` (default 0), `reduction`.
//! - `ScatterND`: inputs data, indices (`[..., k]`), updates
//!   (`indices.shape[..-1] + data.shape[k..]`); `reduction`.
//!
//! `reduction`: `none` (default; later writes win), `add`, `mul`, `max`, `min`.

use super::{index_values, norm_index};
use crate::ops::shape::{for_each_index, offset};
use crate::ops::util::{arity, norm_axis, same_dtype};
use crate::{dispatch_dtype, ensure, numel, op_err, strides, Attrs, Elem, Registry, Result};
use crate::{Tensor, TensorType};

#[derive(Clone, Copy)]
enum Reduction {
    None,
    Add,
    Mul,
    Max,
    Min,
}

fn reduction(a: &Attrs) -> Result<Reduction> {
    Ok(match a.str_or("reduction", "none")? {
        "none" => Reduction::None,
        "add" => Reduction::Add,
        "mul" => Reduction::Mul,
        "max" => Reduction::Max,
        "min" => Reduction::Min,
        r => return Err(op_err!("unknown reduction `{r}`")),
    })
}

/// Combines an existing element with an update.
fn combine<T: Elem>(r: Reduction, a: T, b: T) -> T {
    let d = T::DTYPE;
    let arith = |f: fn(f64, f64) -> f64, i: fn(i64, i64) -> i64, u: fn(u64, u64) -> u64| {
        if d.is_float() {
            T::from_f64(f(a.to_f64(), b.to_f64()))
        } else if d.is_signed_int() || d == crate::DType::Bool {
            T::from_i64(i(a.to_i64(), b.to_i64()))
        } else {
            T::from_u64(u(a.to_u64(), b.to_u64()))
        }
    };
    match r {
        Reduction::None => b,
        Reduction::Add => arith(|x, y| x + y, i64::wrapping_add, u64::wrapping_add),
        Reduction::Mul => arith(|x, y| x * y, i64::wrapping_mul, u64::wrapping_mul),
        Reduction::Max => {
            if b > a {
                b
            } else {
                a
            }
        }
        Reduction::Min => {
            if b < a {
                b
            } else {
                a
            }
        }
    }
}

/// Applies `(flat destination, flat update index)` pairs to a copy of `data`.
fn apply(
    data: &Tensor,
    updates: &Tensor,
    r: Reduction,
    pairs: &[(usize, usize)],
) -> Result<Tensor> {
    let mut out = data.clone();
    dispatch_dtype!(data.dtype(), T => {
        let u = updates.as_slice::<T>()?;
        let o = out.as_slice_mut::<T>()?;
        for &(dst, src) in pairs {
            let (Some(&x), Some(&y)) = (o.get(dst), u.get(src)) else {
                return Err(op_err!("internal: scatter position out of range"));
            };
            o[dst] = combine(r, x, y);
        }
    });
    Ok(out)
}

fn elements_check(a: &Attrs, ins: &[&TensorType]) -> Result<usize> {
    arity(ins, 3, 3)?;
    let (data, ind, upd) = (ins[0], ins[1], ins[2]);
    same_dtype(&[data, upd])?;
    ensure!(
        ind.dtype.is_int(),
        "indices must be integers, got {}",
        ind.dtype
    );
    ensure!(
        ind.shape == upd.shape && ind.rank() == data.rank() && data.rank() > 0,
        "indices {ind} and updates {upd} must share a shape of the rank of data {data}"
    );
    let axis = norm_axis(a.int_or("axis", 0)?, data.rank())?;
    ensure!(
        (0..data.rank()).all(|k| k == axis || ind.shape[k] <= data.shape[k]),
        "indices {ind} exceed data {data} outside axis {axis}"
    );
    reduction(a)?;
    Ok(axis)
}

fn scatter_elements(a: &Attrs, ins: &[&Tensor]) -> Result<Tensor> {
    let tys: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
    let axis = elements_check(a, &tys.iter().collect::<Vec<_>>())?;
    let (data, ind, upd) = (ins[0], ins[1], ins[2]);
    let st = strides(data.shape());
    let d = data.shape()[axis];
    let iv = index_values(ind)?;
    let mut pairs = Vec::with_capacity(iv.len());
    for_each_index(ind.shape(), |i| {
        let p = pairs.len();
        let j = norm_index(iv[p], d)?;
        pairs.push((offset(i, &st) - i[axis] * st[axis] + j * st[axis], p));
        Ok(())
    })?;
    apply(data, upd, reduction(a)?, &pairs)
}

fn nd_check(a: &Attrs, ins: &[&TensorType]) -> Result<usize> {
    arity(ins, 3, 3)?;
    let (data, ind, upd) = (ins[0], ins[1], ins[2]);
    same_dtype(&[data, upd])?;
    ensure!(
        ind.dtype.is_int(),
        "indices must be integers, got {}",
        ind.dtype
    );
    let q = ind.rank();
    ensure!(q >= 1, "ScatterND indices must have rank >= 1");
    let k = ind.shape[q - 1];
    ensure!(
        k <= data.rank(),
        "index tuples of length {k} too long for {data}"
    );
    let mut want = ind.shape[..q - 1].to_vec();
    want.extend(&data.shape[k..]);
    ensure!(upd.shape == want, "updates {upd} must have shape {want:?}");
    reduction(a)?;
    Ok(k)
}

fn scatter_nd(a: &Attrs, ins: &[&Tensor]) -> Result<Tensor> {
    let tys: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
    let k = nd_check(a, &tys.iter().collect::<Vec<_>>())?;
    let (data, ind, upd) = (ins[0], ins[1], ins[2]);
    let ds = data.shape();
    let st = strides(ds);
    let slice = numel(&ds[k..]);
    let iv = index_values(ind)?;
    let mut pairs = Vec::with_capacity(upd.len());
    for p in 0..numel(&ind.shape()[..ind.rank() - 1]) {
        let mut base = 0;
        for j in 0..k {
            base += norm_index(iv[p * k + j], ds[j])? * st[j];
        }
        pairs.extend((0..slice).map(|e| (base + e, p * slice + e)));
    }
    apply(data, upd, reduction(a)?, &pairs)
}

pub fn register(r: &mut Registry) {
    r.add(
        "ScatterElements",
        |a, ins, _| {
            elements_check(a, ins)?;
            Ok(vec![ins[0].clone()])
        },
        |a, ins, _| Ok(vec![scatter_elements(a, ins)?]),
    );
    r.add(
        "ScatterND",
        |a, ins, _| {
            nd_check(a, ins)?;
            Ok(vec![ins[0].clone()])
        },
        |a, ins, _| Ok(vec![scatter_nd(a, ins)?]),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Attr;

    #[test]
    fn scatter_elements_add_negative_index() {
        let data = Tensor::from_vec(vec![1, 3], vec![1f32, 2., 3.]).unwrap();
        let ind = Tensor::from_vec(vec![1, 2], vec![-1i64, -1]).unwrap();
        let upd = Tensor::from_vec(vec![1, 2], vec![10f32, 5.]).unwrap();
        let a = Attrs::new()
            .with("axis", Attr::Int(1))
            .with("reduction", Attr::Str("add".into()));
        let y = scatter_elements(&a, &[&data, &ind, &upd]).unwrap();
        assert_eq!(y.to_f64_vec(), [1., 2., 18.]);
        let bad = Tensor::from_vec(vec![1, 2], vec![3i64, 0]).unwrap();
        assert!(scatter_elements(&a, &[&data, &bad, &upd]).is_err());
    }
}
