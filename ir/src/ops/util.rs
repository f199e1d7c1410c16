//! Helpers shared by the operator families: argument checks, axis
//! normalisation, numpy broadcasting and element-wise maps.

use crate::{dispatch_dtype, ensure, op_err, DType, Elem, Result, Tensor, TensorType};

/// Checks the input count is within `min..=max`.
pub fn arity<T>(inputs: &[T], min: usize, max: usize) -> Result<()> {
    ensure!(
        inputs.len() >= min && inputs.len() <= max,
        "expects {} inputs, got {}",
        if min == max {
            format!("{min}")
        } else {
            format!("{min} to {max}")
        },
        inputs.len()
    );
    Ok(())
}

/// Normalises a possibly negative axis against `rank` (valid: `-rank..rank`).
pub fn norm_axis(axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    ensure!(
        axis >= -r && axis < r.max(1),
        "axis {axis} is out of range for rank {rank}"
    );
    Ok(if axis < 0 {
        (axis + r) as usize
    } else {
        axis as usize
    })
}

/// Normalises a list of axes, rejecting duplicates.
pub fn norm_axes(axes: &[i64], rank: usize) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let n = norm_axis(a, rank)?;
        ensure!(!out.contains(&n), "axis {a} is repeated");
        out.push(n);
    }
    Ok(out)
}

/// Checks that all types share one dtype and returns it.
pub fn same_dtype(tys: &[&TensorType]) -> Result<DType> {
    let d = tys
        .first()
        .map(|t| t.dtype)
        .ok_or_else(|| op_err!("expects at least one input"))?;
    for t in tys {
        ensure!(
            t.dtype == d,
            "inputs must share one dtype, got {} and {}",
            d,
            t.dtype
        );
    }
    Ok(d)
}

/// Numpy-style broadcast of several shapes.
pub fn broadcast_shapes(shapes: &[&[usize]]) -> Result<Vec<usize>> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; rank];
    for s in shapes {
        let off = rank - s.len();
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[off + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return Err(op_err!("shapes {:?} cannot be broadcast together", shapes));
            }
        }
    }
    Ok(out)
}

/// For each element of the broadcast output shape `out`, the flat index into an
/// input of shape `shape` (which must broadcast to `out`).
pub fn broadcast_indices(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let off = out.len() - shape.len();
    let in_strides = crate::strides(shape);
    let mut st = vec![0usize; out.len()];
    for i in 0..shape.len() {
        st[off + i] = if shape[i] == 1 { 0 } else { in_strides[i] };
    }
    let n: usize = out.iter().product();
    let mut idx = Vec::with_capacity(n);
    let mut counter = vec![0usize; out.len()];
    let mut flat = 0usize;
    for _ in 0..n {
        idx.push(flat);
        for d in (0..out.len()).rev() {
            counter[d] += 1;
            flat += st[d];
            if counter[d] < out[d] {
                break;
            }
            flat -= st[d] * counter[d];
            counter[d] = 0;
        }
    }
    idx
}

/// Applies `f` element-wise to a tensor whose element type is `T`.
pub fn map<T: Elem, U: Elem>(x: &Tensor, f: impl Fn(T) -> U) -> Result<Tensor> {
    let v: Vec<U> = x.as_slice::<T>()?.iter().map(|&a| f(a)).collect();
    Tensor::from_vec(x.shape().to_vec(), v)
}

/// Applies `f` to pairs of elements of two tensors with numpy broadcasting.
pub fn zip<T: Elem, U: Elem>(
    a: &Tensor,
    b: &Tensor,
    f: impl Fn(T, T) -> Result<U>,
) -> Result<Tensor> {
    let shape = broadcast_shapes(&[a.shape(), b.shape()])?;
    let (sa, sb) = (a.as_slice::<T>()?, b.as_slice::<T>()?);
    let (ia, ib) = (
        broadcast_indices(a.shape(), &shape),
        broadcast_indices(b.shape(), &shape),
    );
    let v = ia
        .iter()
        .zip(&ib)
        .map(|(&i, &j)| f(sa[i], sb[j]))
        .collect::<Result<Vec<U>>>()?;
    Tensor::from_vec(shape, v)
}

/// Broadcasts a tensor to a larger shape (a copy).
pub fn broadcast_to(x: &Tensor, shape: &[usize]) -> Result<Tensor> {
    let full = broadcast_shapes(&[x.shape(), shape])?;
    ensure!(
        full == shape,
        "cannot broadcast {:?} to {:?}",
        x.shape(),
        shape
    );
    let idx = broadcast_indices(x.shape(), shape);
    Ok(dispatch_dtype!(x.dtype(), T => {
        let s = x.as_slice::<T>()?;
        Tensor::from_vec(shape.to_vec(), idx.iter().map(|&i| s[i]).collect::<Vec<T>>())?
    }))
}

/// Gathers elements by flat index (any dtype).
pub fn take_flat(x: &Tensor, shape: Vec<usize>, idx: &[usize]) -> Result<Tensor> {
    Ok(dispatch_dtype!(x.dtype(), T => {
        let s = x.as_slice::<T>()?;
        Tensor::from_vec(shape, idx.iter().map(|&i| s[i]).collect::<Vec<T>>())?
    }))
}

/// Arithmetic class of a dtype: how the interpreter computes on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Float,
    Signed,
    Unsigned,
    Bool,
}

pub fn class(d: DType) -> Class {
    if d.is_float() {
        Class::Float
    } else if d.is_signed_int() {
        Class::Signed
    } else if d == DType::Bool {
        Class::Bool
    } else {
        Class::Unsigned
    }
}

/// A scalar function given per arithmetic class; `None` where the class is not supported.
pub struct ScalarFns {
    pub float: Option<fn(f64) -> f64>,
    pub signed: Option<fn(i64) -> i64>,
    pub unsigned: Option<fn(u64) -> u64>,
}

/// Applies a unary function element-wise, computing floats in f64 and
/// integers in i64/u64 (so narrow types wrap exactly as they would natively).
pub fn unary(x: &Tensor, f: &ScalarFns, name: &str) -> Result<Tensor> {
    let d = x.dtype();
    let unsupported = || op_err!("{name} does not support {d}");
    Ok(dispatch_dtype!(d, T => match class(d) {
        Class::Float => { let g = f.float.ok_or_else(unsupported)?; map::<T, T>(x, |a| T::from_f64(g(a.to_f64())))? }
        Class::Signed => { let g = f.signed.ok_or_else(unsupported)?; map::<T, T>(x, |a| T::from_i64(g(a.to_i64())))? }
        Class::Unsigned => { let g = f.unsigned.ok_or_else(unsupported)?; map::<T, T>(x, |a| T::from_u64(g(a.to_u64())))? }
        Class::Bool => return Err(unsupported()),
    }))
}

/// A binary scalar function per arithmetic class; integer versions may fail (division by zero).
pub struct BinaryFns {
    pub float: Option<fn(f64, f64) -> f64>,
    pub signed: Option<fn(i64, i64) -> Result<i64>>,
    pub unsigned: Option<fn(u64, u64) -> Result<u64>>,
    pub boolean: Option<fn(bool, bool) -> bool>,
}

/// Applies a binary function with broadcasting; both inputs must share a dtype.
pub fn binary(a: &Tensor, b: &Tensor, f: &BinaryFns, name: &str) -> Result<Tensor> {
    let d = a.dtype();
    ensure!(
        b.dtype() == d,
        "{name} inputs must share one dtype, got {d} and {}",
        b.dtype()
    );
    let unsupported = || op_err!("{name} does not support {d}");
    Ok(dispatch_dtype!(d, T => match class(d) {
        Class::Float => { let g = f.float.ok_or_else(unsupported)?; zip::<T, T>(a, b, |x, y| Ok(T::from_f64(g(x.to_f64(), y.to_f64()))))? }
        Class::Signed => { let g = f.signed.ok_or_else(unsupported)?; zip::<T, T>(a, b, |x, y| Ok(T::from_i64(g(x.to_i64(), y.to_i64())?)))? }
        Class::Unsigned => { let g = f.unsigned.ok_or_else(unsupported)?; zip::<T, T>(a, b, |x, y| Ok(T::from_u64(g(x.to_u64(), y.to_u64())?)))? }
        Class::Bool => { let g = f.boolean.ok_or_else(unsupported)?; zip::<bool, bool>(a, b, |x, y| Ok(g(x, y)))? }
    }))
}

/// Compares two tensors element-wise with broadcasting, giving a bool tensor.
pub fn compare(
    a: &Tensor,
    b: &Tensor,
    f: fn(std::cmp::Ordering) -> bool,
    name: &str,
) -> Result<Tensor> {
    if let (Ok(x), Ok(y)) = (a.as_strings(), b.as_strings()) {
        let shape = broadcast_shapes(&[a.shape(), b.shape()])?;
        let (ia, ib) = (
            broadcast_indices(a.shape(), &shape),
            broadcast_indices(b.shape(), &shape),
        );
        let v: Vec<bool> = ia
            .iter()
            .zip(&ib)
            .map(|(&i, &j)| f(x[i].cmp(&y[j])))
            .collect();
        return Tensor::from_vec(shape, v);
    }
    ensure!(
        a.dtype() == b.dtype(),
        "{name} inputs must share one dtype, got {} and {}",
        a.dtype(),
        b.dtype()
    );
    dispatch_dtype!(a.dtype(), T => zip::<T, bool>(a, b, |x, y| Ok(x.partial_cmp(&y).is_some_and(f))))
}

/// Output type of an element-wise op: broadcast shape of all inputs, dtype of the first
/// (all inputs must share it).
pub fn infer_broadcast(inputs: &[&TensorType]) -> Result<TensorType> {
    let d = same_dtype(inputs)?;
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape.as_slice()).collect();
    Ok(TensorType::new(d, broadcast_shapes(&shapes)?))
}

/// Applies an f64 function to every element of a float tensor, keeping its dtype.
pub fn unary_with(x: &Tensor, f: impl Fn(f64) -> f64) -> Result<Tensor> {
    let d = x.dtype();
    ensure!(d.is_float(), "expects a float tensor, got {d}");
    Ok(dispatch_dtype!(d, T => map::<T, T>(x, |a| T::from_f64(f(a.to_f64())))?))
}
