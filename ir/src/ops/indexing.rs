//! Indexing: ops whose data input is read at positions given by an index tensor.
//!
//! Index tensors hold integers (any integer dtype); negative indices count from
//! the end of their axis, and an index outside `-d..d` is an error.
//!
//! - `Gather`: `axis` (default 0). Output `data[..axis] + indices + data[axis+1..]`.
//! - `GatherElements`: `axis` (default 0). Output has the shape of `indices`.
//! - `GatherND`: `batch_dims` (default 0).
//! - `OneHot`: inputs indices (any numeric; floats truncate) and `values`
//!   (`[off, on]`); `depth` (int), `axis` (default -1). Indices outside
//!   `-depth..depth` give an all-`off` row.
//! - `ScatterElements`, `ScatterND` (submodule `scatter`): `axis` (ScatterElements,
//!   default 0), `reduction` (`none` default, `add`, `mul`, `max`, `min`).
//!
//! Also the import-time folds of ops with data-dependent shapes:
//! [`nonzero`], [`unique`] and [`compress_indices`].

use super::shape::{for_each_index, offset};
use super::util::{arity, norm_axis, take_flat};
use crate::{dispatch_dtype, ensure, numel, op_err, strides, Attrs, Registry, Result};
use crate::{DType, Tensor, TensorType};

mod scatter;

/// Normalises index `i` against a dim of size `d`.
pub(crate) fn norm_index(i: i64, d: usize) -> Result<usize> {
    let di = d as i64;
    ensure!(
        (-di..di).contains(&i),
        "index {i} is out of range for a dim of size {d}"
    );
    Ok(if i < 0 { i + di } else { i } as usize)
}

fn check_indices(t: &TensorType) -> Result<()> {
    ensure!(
        t.dtype.is_int(),
        "indices must be integers, got {}",
        t.dtype
    );
    Ok(())
}

fn gather_ty(a: &Attrs, data: &TensorType, ind: &TensorType) -> Result<(usize, Vec<usize>)> {
    check_indices(ind)?;
    ensure!(data.rank() > 0, "Gather needs data of rank >= 1");
    let axis = norm_axis(a.int_or("axis", 0)?, data.rank())?;
    let mut out = data.shape[..axis].to_vec();
    out.extend(&ind.shape);
    out.extend(&data.shape[axis + 1..]);
    Ok((axis, out))
}

/// `Gather` on tensors (also used by the folds below).
pub fn gather(data: &Tensor, ind: &Tensor, axis: i64) -> Result<Tensor> {
    let a = Attrs::new().with("axis", crate::Attr::Int(axis));
    let (axis, out) = gather_ty(&a, &data.ty(), &ind.ty())?;
    let d = data.shape()[axis];
    let ind = ind
        .to_i64_vec()?
        .iter()
        .map(|&i| norm_index(i, d))
        .collect::<Result<Vec<_>>>()?;
    let outer = numel(&data.shape()[..axis]);
    let inner = numel(&data.shape()[axis + 1..]);
    let mut idx = Vec::with_capacity(numel(&out));
    for o in 0..outer {
        for &j in &ind {
            idx.extend((0..inner).map(|k| (o * d + j) * inner + k));
        }
    }
    take_flat(data, out, &idx)
}

fn gather_elements_ty(a: &Attrs, data: &TensorType, ind: &TensorType) -> Result<usize> {
    check_indices(ind)?;
    let r = data.rank();
    ensure!(
        r > 0 && ind.rank() == r,
        "data {data} and indices {ind} must have one rank >= 1"
    );
    let axis = norm_axis(a.int_or("axis", 0)?, r)?;
    ensure!(
        (0..r).all(|k| k == axis || ind.shape[k] <= data.shape[k]),
        "indices {ind} exceed data {data} outside axis {axis}"
    );
    Ok(axis)
}

fn gather_elements(a: &Attrs, data: &Tensor, ind: &Tensor) -> Result<Tensor> {
    let axis = gather_elements_ty(a, &data.ty(), &ind.ty())?;
    let st = strides(data.shape());
    let d = data.shape()[axis];
    let iv = ind.to_i64_vec()?;
    let mut idx = Vec::with_capacity(iv.len());
    for_each_index(ind.shape(), |i| {
        let j = norm_index(iv[idx.len()], d)?;
        idx.push(offset(i, &st) + j * st[axis] - i[axis] * st[axis]);
        Ok(())
    })?;
    take_flat(data, ind.shape().to_vec(), &idx)
}

/// GatherND checks: (batch_dims, index tuple length k, output shape).
fn gather_nd_ty(
    a: &Attrs,
    data: &TensorType,
    ind: &TensorType,
) -> Result<(usize, usize, Vec<usize>)> {
    check_indices(ind)?;
    let (r, q) = (data.rank(), ind.rank());
    let b = a.int_or("batch_dims", 0)?;
    ensure!(
        q >= 1 && r >= 1,
        "GatherND needs data and indices of rank >= 1"
    );
    ensure!(
        b >= 0 && (b as usize) < q.min(r),
        "batch_dims {b} too large"
    );
    let b = b as usize;
    let k = ind.shape[q - 1];
    ensure!(
        b + k <= r,
        "index tuples of length {k} too long for data {data}"
    );
    ensure!(
        data.shape[..b] == ind.shape[..b],
        "batch dims of data {data} and indices {ind} differ"
    );
    let mut out = ind.shape[..q - 1].to_vec();
    out.extend(&data.shape[b + k..]);
    Ok((b, k, out))
}

fn gather_nd(a: &Attrs, data: &Tensor, ind: &Tensor) -> Result<Tensor> {
    let (b, k, out) = gather_nd_ty(a, &data.ty(), &ind.ty())?;
    let ds = data.shape();
    let st = strides(ds);
    let slice = numel(&ds[b + k..]);
    let batch_stride = numel(&ds[b..]);
    let per_batch = numel(&ind.shape()[b..ind.rank() - 1]);
    let iv = ind.to_i64_vec()?;
    let mut idx = Vec::with_capacity(numel(&out));
    for p in 0..numel(&ind.shape()[..ind.rank() - 1]) {
        let mut base = (p / per_batch.max(1)) * batch_stride;
        for j in 0..k {
            base += norm_index(iv[p * k + j], ds[b + j])? * st[b + j];
        }
        idx.extend(base..base + slice);
    }
    take_flat(data, out, &idx)
}

fn onehot_ty(a: &Attrs, ind: &TensorType, values: &TensorType) -> Result<(usize, TensorType)> {
    ensure!(ind.dtype.is_numeric(), "OneHot indices must be numeric");
    ensure!(
        values.numel() == 2,
        "OneHot values must hold [off, on], got {values}"
    );
    let depth = a.int("depth")?;
    ensure!(depth >= 1, "OneHot depth must be positive, got {depth}");
    let axis = norm_axis(a.int_or("axis", -1)?, ind.rank() + 1)?;
    let mut out = ind.shape.clone();
    out.insert(axis, depth as usize);
    super::shape::check_numel(&out)?;
    Ok((axis, TensorType::new(values.dtype, out)))
}

fn onehot(a: &Attrs, ind: &Tensor, values: &Tensor) -> Result<Tensor> {
    let (axis, ty) = onehot_ty(a, &ind.ty(), &values.ty())?;
    let depth = ty.shape[axis] as i64;
    let iv = ind.to_f64_vec();
    let ist = strides(ind.shape());
    let mut idx = Vec::with_capacity(ty.numel());
    for_each_index(&ty.shape, |i| {
        let flat: usize = (0..i.len())
            .filter(|&k| k != axis)
            .zip(&ist)
            .map(|(k, s)| i[k] * s)
            .sum();
        let mut v = iv[flat].trunc() as i64;
        if v < 0 {
            v += depth;
        }
        idx.push(usize::from(v == i[axis] as i64));
        Ok(())
    })?;
    take_flat(values, ty.shape, &idx)
}

/// `NonZero` of a constant: int64 `[rank, count]` coordinates of the non-zero elements.
pub fn nonzero(x: &Tensor) -> Result<Tensor> {
    let v = x.to_f64_vec();
    let mut coords: Vec<Vec<i64>> = vec![Vec::new(); x.rank()];
    let mut n = 0;
    let mut p = 0;
    for_each_index(x.shape(), |i| {
        if v[p] != 0.0 {
            n += 1;
            for (c, &k) in coords.iter_mut().zip(i) {
                c.push(k as i64);
            }
        }
        p += 1;
        Ok(())
    })?;
    Tensor::from_vec(vec![x.rank(), n], coords.concat())
}

/// `Compress`'s positions: where a condition is true, checked against a dim of size `d`.
pub fn compress_indices(cond: &Tensor, d: usize) -> Result<Vec<i64>> {
    let pos: Vec<i64> = cond
        .to_f64_vec()
        .iter()
        .enumerate()
        .filter(|(_, &c)| c != 0.0)
        .map(|(i, _)| i as i64)
        .collect();
    ensure!(
        pos.iter().all(|&p| (p as usize) < d),
        "condition selects beyond the dim of size {d}"
    );
    Ok(pos)
}

/// `Unique` of a constant: (values, first indices, inverse indices, counts).
pub fn unique(x: &Tensor, axis: Option<i64>, sorted: bool) -> Result<[Tensor; 4]> {
    let (x, axis) = match axis {
        Some(a) => (x.clone(), norm_axis(a, x.rank())?),
        None => (x.clone().reshape(vec![x.len()])?, 0),
    };
    let n = x.shape()[axis];
    // Each slice along `axis` as a 1-element-wide gather.
    let slices = (0..n)
        .map(|j| gather(&x, &Tensor::from_i64s(&[j as i64]), axis as i64))
        .collect::<Result<Vec<_>>>()?;
    let cmp = |a: &Tensor, b: &Tensor| -> std::cmp::Ordering {
        dispatch_dtype!(a.dtype(), T => {
            let (p, q) = (a.as_slice::<T>().unwrap_or(&[]), b.as_slice::<T>().unwrap_or(&[]));
            p.partial_cmp(q).unwrap_or(std::cmp::Ordering::Equal)
        })
    };
    let (mut first, mut inverse, mut counts) = (Vec::<usize>::new(), vec![0usize; n], Vec::new());
    for j in 0..n {
        match first.iter().position(|&f| slices[f] == slices[j]) {
            Some(p) => {
                inverse[j] = p;
                counts[p] += 1;
            }
            None => {
                inverse[j] = first.len();
                first.push(j);
                counts.push(1i64);
            }
        }
    }
    let mut order: Vec<usize> = (0..first.len()).collect();
    if sorted {
        order.sort_by(|&p, &q| cmp(&slices[first[p]], &slices[first[q]]));
    }
    let mut rank_of = vec![0usize; order.len()];
    for (r, &p) in order.iter().enumerate() {
        rank_of[p] = r;
    }
    let firsts: Vec<i64> = order.iter().map(|&p| first[p] as i64).collect();
    let y = gather(&x, &Tensor::from_i64s(&firsts), axis as i64)?;
    let inv: Vec<i64> = inverse.iter().map(|&p| rank_of[p] as i64).collect();
    let cnt: Vec<i64> = order.iter().map(|&p| counts[p]).collect();
    Ok([
        y,
        Tensor::from_i64s(&firsts),
        Tensor::from_i64s(&inv),
        Tensor::from_i64s(&cnt),
    ])
}

/// Registers a two-input, one-output op.
fn add2(
    r: &mut Registry,
    name: &'static str,
    ty: fn(&Attrs, &TensorType, &TensorType) -> Result<TensorType>,
    eval: fn(&Attrs, &Tensor, &Tensor) -> Result<Tensor>,
) {
    r.add(
        name,
        move |a, ins, _| {
            arity(ins, 2, 2)?;
            Ok(vec![ty(a, ins[0], ins[1])?])
        },
        move |a, ins, _| {
            arity(ins, 2, 2)?;
            Ok(vec![eval(a, ins[0], ins[1])?])
        },
    );
}

pub fn register(r: &mut Registry) {
    add2(
        r,
        "Gather",
        |a, d, i| Ok(TensorType::new(d.dtype, gather_ty(a, d, i)?.1)),
        |a, d, i| gather(d, i, a.int_or("axis", 0)?),
    );
    add2(
        r,
        "GatherElements",
        |a, d, i| {
            gather_elements_ty(a, d, i)?;
            Ok(TensorType::new(d.dtype, i.shape.clone()))
        },
        gather_elements,
    );
    add2(
        r,
        "GatherND",
        |a, d, i| Ok(TensorType::new(d.dtype, gather_nd_ty(a, d, i)?.2)),
        gather_nd,
    );
    add2(r, "OneHot", |a, i, v| Ok(onehot_ty(a, i, v)?.1), onehot);
    scatter::register(r);
}

/// Reads a tensor of indices of any dtype as i64 (used by the scatter ops).
pub(crate) fn index_values(t: &Tensor) -> Result<Vec<i64>> {
    ensure!(
        t.dtype() != DType::Bool,
        "indices must be integers, got bool"
    );
    t.to_i64_vec().map_err(|e| op_err!("indices: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Attr;

    #[test]
    fn gather_negative_and_out_of_range() {
        let x = Tensor::from_vec(vec![3], vec![10i32, 20, 30]).unwrap();
        let y = gather(&x, &Tensor::from_i64s(&[-1, 0]), 0).unwrap();
        assert_eq!(y.to_i64_vec().unwrap(), [30, 10]);
        assert!(gather(&x, &Tensor::from_i64s(&[3]), 0).is_err());
    }

    #[test]
    fn gather_nd_batch_dims() {
        let x = Tensor::from_vec(vec![2, 2, 2], (0..8).collect::<Vec<i64>>()).unwrap();
        let i = Tensor::from_vec(vec![2, 1], vec![1i64, 0]).unwrap();
        let a = Attrs::new().with("batch_dims", Attr::Int(1));
        let y = gather_nd(&a, &x, &i).unwrap();
        assert_eq!(y.shape(), &[2, 2]);
        assert_eq!(y.to_i64_vec().unwrap(), [2, 3, 4, 5]);
    }

    #[test]
    fn unique_unsorted_and_sorted() {
        let x = Tensor::from_vec(vec![5], vec![2.0f32, 1., 1., 3., 2.]).unwrap();
        let [y, f, inv, c] = unique(&x, None, false).unwrap();
        assert_eq!(y.to_f64_vec(), [2., 1., 3.]);
        assert_eq!(f.to_i64_vec().unwrap(), [0, 1, 3]);
        assert_eq!(inv.to_i64_vec().unwrap(), [0, 1, 1, 2, 0]);
        assert_eq!(c.to_i64_vec().unwrap(), [2, 2, 1]);
        let [y, _, inv, _] = unique(&x, None, true).unwrap();
        assert_eq!(y.to_f64_vec(), [1., 2., 3.]);
        assert_eq!(inv.to_i64_vec().unwrap(), [1, 0, 0, 2, 1]);
    }
}
