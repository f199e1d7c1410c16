//! Reductions and scans along axes.
//!
//! - `ReduceSum`, `ReduceMean`, `ReduceMax`, `ReduceMin`, `ReduceProd`,
//!   `ReduceL1`, `ReduceL2`, `ReduceLogSum`, `ReduceLogSumExp`,
//!   `ReduceSumSquare`: attributes `axes` (ints, optional; absent or empty
//!   means every axis), `keepdims` (int, default 1), `noop_with_empty_axes`
//!   (int, default 0: with no axes, reduce over no axis at all, i.e. apply the
//!   reduction to each element alone, as ONNX's reference does). An empty
//!   reduction gives the identity: 0 for sums and norms, 1 for products,
//!   -inf / the dtype's minimum for Max, +inf / its maximum for Min, NaN for a
//!   float Mean, -inf for LogSum and LogSumExp. Floats are computed in f64;
//!   integer Sum/Prod/L1/SumSquare/Max/Min/Mean are exact and wrap like the
//!   dtype; integer L2/LogSum/LogSumExp go through f64 and truncate. Max and
//!   Min also accept bool (any / all).
//! - `ArgMax`, `ArgMin`: attributes `axis` (default 0), `keepdims` (default 1),
//!   `select_last_index` (default 0). Output i64. The first NaN wins.
//! - `CumSum`, `CumProd`: attributes `axis` (int, required; the ONNX input),
//!   `exclusive` (default 0), `reverse` (default 0).
//! - `TopK`: attributes `k` (int, required; the ONNX input), `axis` (default
//!   -1), `largest` (default 1), `sorted` (default 1; results are always sorted).
//!   Outputs the values and their i64 indices; ties go to the lower index; NaN
//!   sorts above every number.

use super::util::{arity, class, norm_axes, norm_axis, Class};
use crate::{
    dispatch_dtype, dispatch_numeric, ensure, numel, op_err, strides, Attrs, DType, Elem, Registry,
    Result, Tensor, TensorType,
};

/// The reduction kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    L1,
    L2,
    LogSum,
    LogSumExp,
    SumSquare,
}

/// Which axes are reduced, and the output shape.
fn reduce_spec(attrs: &Attrs, shape: &[usize]) -> Result<(Vec<bool>, Vec<usize>)> {
    let rank = shape.len();
    let keep = attrs.int_or("keepdims", 1)? != 0;
    let noop = attrs.int_or("noop_with_empty_axes", 0)? != 0;
    let axes = attrs.opt_ints("axes")?.unwrap_or_default();
    let mut mask = vec![axes.is_empty() && !noop; rank];
    for a in norm_axes(&axes, rank)? {
        if a < rank {
            mask[a] = true;
        }
    }
    let out = shape
        .iter()
        .zip(&mask)
        .filter_map(|(&d, &m)| match (m, keep) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect();
    Ok((mask, out))
}

/// For each output element (reduced axes kept as 1), the flat input indices
/// reduced into it, in increasing order.
pub(crate) fn groups(shape: &[usize], mask: &[bool]) -> Vec<Vec<usize>> {
    let rank = shape.len();
    let out_dims: Vec<usize> = shape
        .iter()
        .zip(mask)
        .map(|(&d, &m)| if m { 1 } else { d })
        .collect();
    let ost = strides(&out_dims);
    let mut g = vec![Vec::new(); numel(&out_dims)];
    let mut idx = vec![0usize; rank];
    for flat in 0..numel(shape) {
        let o: usize = (0..rank)
            .filter(|&k| !mask[k])
            .map(|k| idx[k] * ost[k])
            .sum();
        g[o].push(flat);
        for k in (0..rank).rev() {
            idx[k] += 1;
            if idx[k] < shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    g
}

/// Reduces float values (as f64).
fn fold_float(kind: Kind, v: &[f64]) -> f64 {
    let sum = |f: fn(f64) -> f64| v.iter().map(|&x| f(x)).sum::<f64>();
    match kind {
        Kind::Sum => sum(|x| x),
        Kind::Mean => sum(|x| x) / v.len() as f64,
        Kind::Max => v.iter().fold(f64::NEG_INFINITY, |a, &b| {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.max(b)
            }
        }),
        Kind::Min => v.iter().fold(f64::INFINITY, |a, &b| {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.min(b)
            }
        }),
        Kind::Prod => v.iter().product(),
        Kind::L1 => sum(f64::abs),
        Kind::L2 => sum(|x| x * x).sqrt(),
        Kind::LogSum => sum(|x| x).ln(),
        Kind::LogSumExp => {
            let m = v
                .iter()
                .copied()
                .filter(|x| x.is_finite())
                .fold(f64::NEG_INFINITY, f64::max);
            let m = if m.is_finite() { m } else { 0.0 };
            m + v.iter().map(|&x| (x - m).exp()).sum::<f64>().ln()
        }
        Kind::SumSquare => sum(|x| x * x),
    }
}

/// The value range of an integer (or bool) dtype.
fn int_range(d: DType) -> (i128, i128) {
    match d {
        DType::I8 => (i8::MIN as i128, i8::MAX as i128),
        DType::U8 => (0, u8::MAX as i128),
        DType::I16 => (i16::MIN as i128, i16::MAX as i128),
        DType::U16 => (0, u16::MAX as i128),
        DType::I32 => (i32::MIN as i128, i32::MAX as i128),
        DType::U32 => (0, u32::MAX as i128),
        DType::I64 => (i64::MIN as i128, i64::MAX as i128),
        DType::U64 => (0, u64::MAX as i128),
        _ => (0, 1),
    }
}

/// The result of an integer reduction: exact (wrapped later by the cast to
/// the dtype) or through f64.
enum IntOut {
    Exact(i128),
    Float(f64),
}

/// Reduces integer values (widened to i128); `wrap` maps a value into the dtype's range.
fn fold_int(kind: Kind, v: &[i128], d: DType, wrap: &dyn Fn(i128) -> i128) -> IntOut {
    let (lo, hi) = int_range(d);
    let wsum = |f: fn(i128) -> i128| v.iter().fold(0i128, |a, &x| wrap(a.wrapping_add(f(x))));
    let floats = || v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    IntOut::Exact(match kind {
        Kind::Sum => wsum(|x| x),
        Kind::Mean if v.is_empty() => 0,
        Kind::Mean => wsum(|x| x) / v.len() as i128,
        Kind::Max => v.iter().fold(lo, |a, &b| a.max(b)),
        Kind::Min => v.iter().fold(hi, |a, &b| a.min(b)),
        Kind::Prod => v.iter().fold(1i128, |a, &x| wrap(a.wrapping_mul(x))),
        Kind::L1 => wsum(|x| x.abs()),
        Kind::SumSquare => wsum(|x| x.wrapping_mul(x)),
        Kind::L2 | Kind::LogSum | Kind::LogSumExp => {
            return IntOut::Float(fold_float(kind, &floats()))
        }
    })
}

/// Checks that `kind` supports dtype `d`.
fn check_dtype(kind: Kind, d: DType, name: &str) -> Result<()> {
    ensure!(
        d != DType::Bool || matches!(kind, Kind::Max | Kind::Min),
        "{name} does not support {d}"
    );
    Ok(())
}

fn reduce_infer(kind: Kind, name: &str, attrs: &Attrs, x: &TensorType) -> Result<TensorType> {
    check_dtype(kind, x.dtype, name)?;
    let (_, out) = reduce_spec(attrs, &x.shape)?;
    Ok(TensorType::new(x.dtype, out))
}

fn reduce_eval(kind: Kind, name: &str, attrs: &Attrs, x: &Tensor) -> Result<Tensor> {
    let d = x.dtype();
    check_dtype(kind, d, name)?;
    let (mask, out_shape) = reduce_spec(attrs, x.shape())?;
    let gs = groups(x.shape(), &mask);
    let cl = class(d);
    Ok(dispatch_dtype!(d, T => {
        let s = x.as_slice::<T>()?;
        let out: Vec<T> = if cl == Class::Float {
            gs.iter()
                .map(|g| T::from_f64(fold_float(kind, &g.iter().map(|&i| s[i].to_f64()).collect::<Vec<_>>())))
                .collect()
        } else {
            let signed = cl == Class::Signed;
            let to_t = |v: i128| if signed { T::from_i64(v as i64) } else { T::from_u64(v as u64) };
            let wrap = |v: i128| if signed { to_t(v).to_i64() as i128 } else { to_t(v).to_u64() as i128 };
            gs.iter()
                .map(|g| {
                    let v: Vec<i128> = g
                        .iter()
                        .map(|&i| if signed { s[i].to_i64() as i128 } else { s[i].to_u64() as i128 })
                        .collect();
                    match fold_int(kind, &v, d, &wrap) {
                        IntOut::Exact(r) => to_t(r),
                        IntOut::Float(f) => T::from_f64(f),
                    }
                })
                .collect()
        };
        Tensor::from_vec(out_shape, out)?
    }))
}

fn add_reduce(r: &mut Registry, name: &'static str, kind: Kind) {
    r.add(
        name,
        move |attrs, ins, _| {
            arity(ins, 1, 1)?;
            Ok(vec![reduce_infer(kind, name, attrs, ins[0])?])
        },
        move |attrs, ins, _| {
            arity(ins, 1, 1)?;
            Ok(vec![reduce_eval(kind, name, attrs, ins[0])?])
        },
    );
}

/// ArgMax/ArgMin: the reduced axis and output shape.
fn arg_spec(attrs: &Attrs, shape: &[usize]) -> Result<(usize, Vec<usize>)> {
    ensure!(!shape.is_empty(), "expects a tensor of rank 1 or more");
    let axis = norm_axis(attrs.int_or("axis", 0)?, shape.len())?;
    ensure!(
        shape[axis] > 0,
        "cannot take an arg-reduction over an empty axis"
    );
    let mut out = shape.to_vec();
    if attrs.int_or("keepdims", 1)? != 0 {
        out[axis] = 1;
    } else {
        out.remove(axis);
    }
    Ok((axis, out))
}

/// True when `v` is NaN (for any element type).
#[allow(clippy::eq_op)]
fn is_nan<T: PartialEq>(v: T) -> bool {
    v != v
}

fn arg_eval(attrs: &Attrs, x: &Tensor, is_max: bool) -> Result<Tensor> {
    let (axis, out_shape) = arg_spec(attrs, x.shape())?;
    let last = attrs.int_or("select_last_index", 0)? != 0;
    let mut mask = vec![false; x.rank()];
    mask[axis] = true;
    let gs = groups(x.shape(), &mask);
    let d = x.dtype();
    let idx: Vec<i64> = dispatch_numeric!(d, T => {
        let s = x.as_slice::<T>()?;
        gs.iter().map(|g| {
            let mut best = 0usize;
            for (j, &i) in g.iter().enumerate().skip(1) {
                let (v, b) = (s[i], s[g[best]]);
                if is_nan(b) {
                    break;
                }
                let better = is_nan(v)
                    || match (is_max, last) {
                        (true, false) => v > b,
                        (true, true) => v >= b,
                        (false, false) => v < b,
                        (false, true) => v <= b,
                    };
                if better {
                    best = j;
                }
            }
            best as i64
        }).collect()
    }, _ => return Err(op_err!("does not support {d}")));
    Tensor::from_vec(out_shape, idx)
}

fn add_arg(r: &mut Registry, name: &'static str, is_max: bool) {
    r.add(
        name,
        |attrs, ins, _| {
            arity(ins, 1, 1)?;
            ensure!(ins[0].dtype != DType::Bool, "does not support bool");
            let (_, out) = arg_spec(attrs, &ins[0].shape)?;
            Ok(vec![TensorType::new(DType::I64, out)])
        },
        move |attrs, ins, _| {
            arity(ins, 1, 1)?;
            Ok(vec![arg_eval(attrs, ins[0], is_max)?])
        },
    );
}

/// A running scan along `axis` of a row-major array of shape `shape`.
fn scan<A: Copy>(
    shape: &[usize],
    axis: usize,
    flags: (bool, bool),
    v: &[A],
    id: A,
    op: impl Fn(A, A) -> A,
) -> Vec<A> {
    let (exclusive, reverse) = flags;
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let outer: usize = shape[..axis].iter().product();
    let mut out = vec![id; v.len()];
    for o in 0..outer {
        for i in 0..inner {
            let base = o * n * inner + i;
            let mut acc = id;
            for step in 0..n {
                let k = if reverse { n - 1 - step } else { step };
                let at = base + k * inner;
                if exclusive {
                    out[at] = acc;
                    acc = op(acc, v[at]);
                } else {
                    acc = op(acc, v[at]);
                    out[at] = acc;
                }
            }
        }
    }
    out
}

fn cum_eval(attrs: &Attrs, x: &Tensor, prod: bool) -> Result<Tensor> {
    ensure!(x.rank() > 0, "expects a tensor of rank 1 or more");
    let axis = norm_axis(attrs.int("axis")?, x.rank())?;
    let flags = (
        attrs.int_or("exclusive", 0)? != 0,
        attrs.int_or("reverse", 0)? != 0,
    );
    let d = x.dtype();
    let cl = class(d);
    let shape = x.shape().to_vec();
    Ok(dispatch_numeric!(d, T => {
        let s = x.as_slice::<T>()?;
        let out: Vec<T> = match cl {
            Class::Float => {
                let v: Vec<f64> = s.iter().map(|a| a.to_f64()).collect();
                let r = if prod {
                    scan(&shape, axis, flags, &v, 1.0, |a, b| a * b)
                } else {
                    scan(&shape, axis, flags, &v, 0.0, |a, b| a + b)
                };
                r.into_iter().map(T::from_f64).collect()
            }
            _ => {
                let v: Vec<i64> = s.iter().map(|a| a.to_i64()).collect();
                let r = if prod {
                    scan(&shape, axis, flags, &v, 1, i64::wrapping_mul)
                } else {
                    scan(&shape, axis, flags, &v, 0, i64::wrapping_add)
                };
                r.into_iter().map(T::from_i64).collect()
            }
        };
        Tensor::from_vec(shape, out)?
    }, _ => return Err(op_err!("does not support {d}"))))
}

fn add_cum(r: &mut Registry, name: &'static str, prod: bool) {
    r.add(
        name,
        |attrs, ins, _| {
            arity(ins, 1, 1)?;
            let t = ins[0];
            ensure!(t.dtype != DType::Bool, "does not support bool");
            ensure!(t.rank() > 0, "expects a tensor of rank 1 or more");
            norm_axis(attrs.int("axis")?, t.rank())?;
            Ok(vec![t.clone()])
        },
        move |attrs, ins, _| {
            arity(ins, 1, 1)?;
            Ok(vec![cum_eval(attrs, ins[0], prod)?])
        },
    );
}

/// TopK: the axis and the output shape.
fn topk_spec(attrs: &Attrs, shape: &[usize]) -> Result<(usize, usize, Vec<usize>)> {
    ensure!(!shape.is_empty(), "expects a tensor of rank 1 or more");
    let axis = norm_axis(attrs.int_or("axis", -1)?, shape.len())?;
    let k = attrs.int("k")?;
    ensure!(
        k >= 0 && k as usize <= shape[axis],
        "k = {k} is out of range for an axis of size {}",
        shape[axis]
    );
    let mut out = shape.to_vec();
    out[axis] = k as usize;
    Ok((axis, k as usize, out))
}

/// Orders two values with NaN above every number.
fn nan_cmp<T: PartialOrd + Copy>(a: T, b: T) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    a.partial_cmp(&b)
        .unwrap_or_else(|| match (is_nan(a), is_nan(b)) {
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ => Ordering::Equal,
        })
}

fn topk_eval(attrs: &Attrs, x: &Tensor, n_out: usize) -> Result<Vec<Tensor>> {
    let (axis, k, out_shape) = topk_spec(attrs, x.shape())?;
    let largest = attrs.int_or("largest", 1)? != 0;
    let shape = x.shape();
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let outer: usize = shape[..axis].iter().product();
    let d = x.dtype();
    let (vals, idx) = dispatch_dtype!(d, T => {
        let s = x.as_slice::<T>()?;
        let mut vals = vec![T::default(); numel(&out_shape)];
        let mut idx = vec![0i64; vals.len()];
        for o in 0..outer {
            for i in 0..inner {
                let at = |j: usize| o * n * inner + j * inner + i;
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by(|&p, &q| {
                    let c = nan_cmp(s[at(p)], s[at(q)]);
                    (if largest { c.reverse() } else { c }).then(p.cmp(&q))
                });
                for (j, &p) in order.iter().take(k).enumerate() {
                    let dst = o * k * inner + j * inner + i;
                    vals[dst] = s[at(p)];
                    idx[dst] = p as i64;
                }
            }
        }
        (Tensor::from_vec(out_shape.clone(), vals)?, Tensor::from_vec(out_shape.clone(), idx)?)
    });
    Ok([vals, idx].into_iter().take(n_out.max(1)).collect())
}

fn add_topk(r: &mut Registry) {
    r.add(
        "TopK",
        |attrs, ins, n| {
            arity(ins, 1, 1)?;
            ensure!(n <= 2, "has 2 outputs, {n} requested");
            let (_, _, out) = topk_spec(attrs, &ins[0].shape)?;
            let v = TensorType::new(ins[0].dtype, out.clone());
            let i = TensorType::new(DType::I64, out);
            Ok([v, i].into_iter().take(n.max(1)).collect())
        },
        |attrs, ins, n| {
            arity(ins, 1, 1)?;
            ensure!(n <= 2, "has 2 outputs, {n} requested");
            topk_eval(attrs, ins[0], n)
        },
    );
}

pub fn register(r: &mut Registry) {
    for (name, kind) in [
        ("ReduceSum", Kind::Sum),
        ("ReduceMean", Kind::Mean),
        ("ReduceMax", Kind::Max),
        ("ReduceMin", Kind::Min),
        ("ReduceProd", Kind::Prod),
        ("ReduceL1", Kind::L1),
        ("ReduceL2", Kind::L2),
        ("ReduceLogSum", Kind::LogSum),
        ("ReduceLogSumExp", Kind::LogSumExp),
        ("ReduceSumSquare", Kind::SumSquare),
    ] {
        add_reduce(r, name, kind);
    }
    add_arg(r, "ArgMax", true);
    add_arg(r, "ArgMin", false);
    add_cum(r, "CumSum", false);
    add_cum(r, "CumProd", true);
    add_topk(r);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Attr;

    fn run(op: &str, attrs: Attrs, x: Tensor, n: usize) -> Vec<Tensor> {
        crate::registry()
            .get(op)
            .unwrap()
            .eval(&attrs, &[&x], n)
            .unwrap()
    }

    #[test]
    fn empty_reductions_give_identity() {
        let x = Tensor::from_vec(vec![2, 0], Vec::<f32>::new()).unwrap();
        let a = Attrs::new().with("axes", Attr::Ints(vec![1]));
        let min = run("ReduceMin", a.clone(), x.clone(), 1);
        assert_eq!(min[0].as_slice::<f32>().unwrap(), &[f32::INFINITY; 2]);
        let prod = run("ReduceProd", a, x, 1);
        assert_eq!(prod[0].as_slice::<f32>().unwrap(), &[1.0; 2]);
        let xi = Tensor::from_vec(vec![0], Vec::<i32>::new()).unwrap();
        let m = run("ReduceMax", Attrs::new(), xi, 1);
        assert_eq!(m[0].as_slice::<i32>().unwrap(), &[i32::MIN]);
    }

    #[test]
    fn noop_with_empty_axes_applies_per_element() {
        let x = Tensor::from_vec(vec![2], vec![-2.0f32, 3.0]).unwrap();
        let a = Attrs::new().with("noop_with_empty_axes", Attr::Int(1));
        let r = run("ReduceSumSquare", a, x, 1);
        assert_eq!(r[0].as_slice::<f32>().unwrap(), &[4.0, 9.0]);
    }

    #[test]
    fn integer_sum_wraps() {
        let x = Tensor::from_vec(vec![2], vec![100i8, 100]).unwrap();
        let r = run(
            "ReduceSum",
            Attrs::new().with("keepdims", Attr::Int(0)),
            x,
            1,
        );
        assert_eq!(r[0].as_slice::<i8>().unwrap(), &[-56]);
    }

    #[test]
    fn topk_ties_take_lower_index() {
        let x = Tensor::from_vec(vec![4], vec![1i64, 3, 3, 2]).unwrap();
        let r = run("TopK", Attrs::new().with("k", Attr::Int(2)), x, 2);
        assert_eq!(r[0].as_slice::<i64>().unwrap(), &[3, 3]);
        assert_eq!(r[1].as_slice::<i64>().unwrap(), &[1, 2]);
    }

    #[test]
    fn argmax_last_index_and_cumsum_exclusive_reverse() {
        let x = Tensor::from_vec(vec![3], vec![2.0f32, 5.0, 5.0]).unwrap();
        let a = Attrs::new().with("select_last_index", Attr::Int(1));
        assert_eq!(run("ArgMax", a, x, 1)[0].as_slice::<i64>().unwrap(), &[2]);
        let x = Tensor::from_vec(vec![3], vec![1i32, 2, 3]).unwrap();
        let a = Attrs::new()
            .with("axis", Attr::Int(0))
            .with("exclusive", Attr::Int(1))
            .with("reverse", Attr::Int(1));
        assert_eq!(
            run("CumSum", a, x, 1)[0].as_slice::<i32>().unwrap(),
            &[5, 3, 0]
        );
    }
}
