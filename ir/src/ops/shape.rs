//! Shape manipulation: ops that move or copy elements without computing on them.
//!
//! Attributes (parameters ONNX passes as constant inputs are attributes here):
//! - `Reshape`: `shape` (ints; 0 copies the input dim at that position unless
//!   `allowzero` = 1; one -1 is inferred), `allowzero` (int, default 0).
//! - `Flatten`: `axis` (default 1, in `-r..=r`): output `[prod(d[..axis]), prod(d[axis..])]`.
//! - `Squeeze`: `axes` (optional; absent removes every dim of size 1).
//! - `Unsqueeze`: `axes` (positions in the output, possibly negative).
//! - `Transpose`: `perm` (default: reversed dims).
//! - `Expand`: `shape` (bidirectional numpy broadcast with the input shape).
//! - `Tile`: `repeats` (one per dim).
//! - `Concat`: `axis` (variadic inputs of one dtype).
//! - `Split`: `axis` (default 0), `split` (optional sizes, summing to the dim;
//!   the op gives the first `n_outputs` parts). Without `split` the dim is cut
//!   into `n_outputs` chunks of `ceil(d / n)`, the last one smaller.
//!
//! Submodules: `slice` (Slice, Pad, CenterCropPad), `layout` (DepthToSpace,
//! SpaceToDepth, Trilu, EyeLike, Range, ReverseSequence) and `axis_map`
//! (separable index maps of the movement ops, for copy kernels).

use super::util::{arity, broadcast_shapes, broadcast_to, norm_axes, norm_axis};
use crate::{
    dispatch_dtype, ensure, numel, op_err, strides, Attrs, Elem, Registry, Result, Tensor,
    TensorType,
};

pub mod axis_map;
mod layout;
mod slice;

/// Calls `f` with every multi-index of `shape`, in row-major order.
pub(crate) fn for_each_index(
    shape: &[usize],
    mut f: impl FnMut(&[usize]) -> Result<()>,
) -> Result<()> {
    let n = numel(shape);
    let mut idx = vec![0usize; shape.len()];
    for _ in 0..n {
        f(&idx)?;
        for d in (0..shape.len()).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(())
}

/// A tensor of shape `out` whose element at each multi-index is `x`'s element
/// at flat index `f(index)`, or `fill` where `f` gives `None`.
pub(crate) fn remap_fill(
    x: &Tensor,
    out: Vec<usize>,
    fill: f64,
    mut f: impl FnMut(&[usize]) -> Result<Option<usize>>,
) -> Result<Tensor> {
    dispatch_dtype!(x.dtype(), T => {
        let s = x.as_slice::<T>()?;
        let fv = T::from_f64(fill);
        let mut v = Vec::with_capacity(numel(&out));
        for_each_index(&out, |i| {
            v.push(match f(i)? {
                Some(k) => *s.get(k).ok_or_else(|| op_err!("internal: index {k} out of range"))?,
                None => fv,
            });
            Ok(())
        })?;
        Tensor::from_vec(out, v)
    })
}

/// Like [`remap_fill`] where every output element comes from the input.
pub(crate) fn remap(
    x: &Tensor,
    out: Vec<usize>,
    mut f: impl FnMut(&[usize]) -> Result<usize>,
) -> Result<Tensor> {
    remap_fill(x, out, 0.0, |i| f(i).map(Some))
}

/// Flat offset of a multi-index for the given strides.
pub(crate) fn offset(idx: &[usize], st: &[usize]) -> usize {
    idx.iter().zip(st).map(|(a, b)| a * b).sum()
}

/// Checks that a shape's element count fits in memory arithmetic.
pub(crate) fn check_numel(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= (isize::MAX as usize) / 16)
        .ok_or_else(|| op_err!("shape {shape:?} has too many elements"))
}

/// Converts non-negative i64 dims to a shape.
pub(crate) fn to_dims(v: &[i64], what: &str) -> Result<Vec<usize>> {
    v.iter()
        .map(|&d| usize::try_from(d).map_err(|_| op_err!("{what}: negative dimension {d}")))
        .collect()
}

fn reshape_shape(a: &Attrs, x: &[usize]) -> Result<Vec<usize>> {
    let spec = a.ints("shape")?;
    let allowzero = a.int_or("allowzero", 0)? != 0;
    let mut out = Vec::with_capacity(spec.len());
    let mut infer_at = None;
    for (i, &s) in spec.iter().enumerate() {
        match s {
            -1 => {
                ensure!(infer_at.is_none(), "more than one -1 in shape {spec:?}");
                infer_at = Some(i);
                out.push(1);
            }
            0 if !allowzero => {
                ensure!(
                    i < x.len(),
                    "shape {spec:?}: 0 at {i} has no input dim to copy"
                );
                out.push(x[i]);
            }
            s if s >= 0 => out.push(s as usize),
            _ => return Err(op_err!("invalid dimension {s} in shape {spec:?}")),
        }
    }
    let total = numel(x);
    if let Some(i) = infer_at {
        let known = check_numel(&out)?;
        ensure!(
            known != 0 && total.is_multiple_of(known),
            "cannot reshape {x:?} to {spec:?}"
        );
        out[i] = total / known;
    }
    ensure!(
        check_numel(&out)? == total,
        "cannot reshape {x:?} ({total} elements) to {spec:?}"
    );
    Ok(out)
}

fn flatten_shape(a: &Attrs, x: &[usize]) -> Result<Vec<usize>> {
    let r = x.len() as i64;
    let axis = a.int_or("axis", 1)?;
    ensure!(
        (-r..=r).contains(&axis),
        "axis {axis} is out of range for rank {r}"
    );
    let axis = if axis < 0 { axis + r } else { axis } as usize;
    Ok(vec![numel(&x[..axis]), numel(&x[axis..])])
}

fn squeeze_shape(a: &Attrs, x: &[usize]) -> Result<Vec<usize>> {
    match a.opt_ints("axes")? {
        None => Ok(x.iter().copied().filter(|&d| d != 1).collect()),
        Some(axes) => {
            let axes = norm_axes(&axes, x.len())?;
            for &ax in &axes {
                ensure!(x[ax] == 1, "cannot squeeze axis {ax} of size {}", x[ax]);
            }
            Ok((0..x.len())
                .filter(|i| !axes.contains(i))
                .map(|i| x[i])
                .collect())
        }
    }
}

fn unsqueeze_shape(a: &Attrs, x: &[usize]) -> Result<Vec<usize>> {
    let axes = a.ints("axes")?;
    let r = x.len() + axes.len();
    let axes = norm_axes(&axes, r)?;
    let mut it = x.iter();
    Ok((0..r)
        .map(|i| {
            if axes.contains(&i) {
                1
            } else {
                *it.next().unwrap_or(&1)
            }
        })
        .collect())
}

pub(super) fn transpose_perm(a: &Attrs, r: usize) -> Result<Vec<usize>> {
    match a.opt_ints("perm")? {
        None => Ok((0..r).rev().collect()),
        Some(p) => {
            ensure!(p.len() == r, "perm {p:?} does not match rank {r}");
            norm_axes(&p, r)
        }
    }
}

fn transpose(a: &Attrs, x: &Tensor) -> Result<Tensor> {
    let perm = transpose_perm(a, x.rank())?;
    let st = strides(x.shape());
    let out: Vec<usize> = perm.iter().map(|&p| x.shape()[p]).collect();
    remap(x, out, |i| {
        Ok(i.iter().zip(&perm).map(|(&k, &p)| k * st[p]).sum())
    })
}

pub(super) fn expand_shape(a: &Attrs, x: &[usize]) -> Result<Vec<usize>> {
    let s = to_dims(&a.ints("shape")?, "Expand")?;
    let out = broadcast_shapes(&[x, &s])?;
    check_numel(&out)?;
    Ok(out)
}

pub(super) fn tile_shape(a: &Attrs, x: &[usize]) -> Result<Vec<usize>> {
    let reps = to_dims(&a.ints("repeats")?, "Tile repeats")?;
    ensure!(
        reps.len() == x.len(),
        "repeats {reps:?} do not match rank {}",
        x.len()
    );
    let out = x
        .iter()
        .zip(&reps)
        .map(|(&d, &r)| d.checked_mul(r).ok_or_else(|| op_err!("Tile: too large")))
        .collect::<Result<Vec<_>>>()?;
    check_numel(&out)?;
    Ok(out)
}

fn tile(a: &Attrs, x: &Tensor) -> Result<Tensor> {
    let out = tile_shape(a, x.shape())?;
    let (xs, st) = (x.shape().to_vec(), strides(x.shape()));
    remap(x, out, |i| {
        Ok(i.iter()
            .zip(&xs)
            .zip(&st)
            .map(|((&k, &d), &s)| (k % d) * s)
            .sum())
    })
}

/// Registers a one-input, one-output op from an output-shape function and an eval.
fn add_unary(
    r: &mut Registry,
    name: &'static str,
    shape: fn(&Attrs, &[usize]) -> Result<Vec<usize>>,
    eval: fn(&Attrs, &Tensor, Vec<usize>) -> Result<Tensor>,
) {
    r.add(
        name,
        move |a, ins, _| {
            arity(ins, 1, 1)?;
            Ok(vec![TensorType::new(
                ins[0].dtype,
                shape(a, &ins[0].shape)?,
            )])
        },
        move |a, ins, _| {
            arity(ins, 1, 1)?;
            let out = shape(a, ins[0].shape())?;
            Ok(vec![eval(a, ins[0], out)?])
        },
    );
}

fn just_reshape(_: &Attrs, x: &Tensor, out: Vec<usize>) -> Result<Tensor> {
    x.clone().reshape(out)
}

fn concat_shape(a: &Attrs, ins: &[&[usize]]) -> Result<(usize, Vec<usize>)> {
    ensure!(!ins.is_empty(), "expects at least one input");
    let r = ins[0].len();
    ensure!(r > 0, "cannot concatenate scalars");
    let axis = norm_axis(a.int("axis")?, r)?;
    let mut out = ins[0].to_vec();
    out[axis] = 0;
    for s in ins {
        ensure!(
            s.len() == r && (0..r).all(|k| k == axis || s[k] == out[k]),
            "cannot concatenate shapes {:?} on axis {axis}",
            ins
        );
        out[axis] += s[axis];
    }
    Ok((axis, out))
}

fn concat(a: &Attrs, ins: &[&Tensor]) -> Result<Tensor> {
    let shapes: Vec<&[usize]> = ins.iter().map(|t| t.shape()).collect();
    let (axis, out) = concat_shape(a, &shapes)?;
    let outer = numel(&out[..axis]);
    let d = ins[0].dtype();
    dispatch_dtype!(d, T => {
        let mut v: Vec<T> = Vec::with_capacity(numel(&out));
        let slices = ins.iter().map(|t| t.as_slice::<T>()).collect::<Result<Vec<_>>>()?;
        for o in 0..outer {
            for (t, s) in ins.iter().zip(&slices) {
                let inner = numel(&t.shape()[axis..]);
                v.extend_from_slice(&s[o * inner..(o + 1) * inner]);
            }
        }
        Tensor::from_vec(out, v)
    })
}

fn split_sizes(a: &Attrs, x: &[usize], n: usize) -> Result<(usize, Vec<usize>)> {
    ensure!(!x.is_empty(), "cannot split a scalar");
    let axis = norm_axis(a.int_or("axis", 0)?, x.len())?;
    let d = x[axis];
    let sizes = match a.opt_ints("split")? {
        Some(s) => {
            let s = to_dims(&s, "split")?;
            ensure!(
                s.iter().sum::<usize>() == d,
                "split {s:?} does not sum to dim {d}"
            );
            ensure!(n <= s.len(), "{n} outputs for {} parts", s.len());
            s
        }
        None => {
            ensure!(n > 0, "Split needs at least one output");
            let chunk = d.div_ceil(n);
            (0..n)
                .map(|i| chunk.min(d.saturating_sub(i * chunk)))
                .collect()
        }
    };
    Ok((axis, sizes))
}

fn split(a: &Attrs, x: &Tensor, n: usize) -> Result<Vec<Tensor>> {
    let (axis, sizes) = split_sizes(a, x.shape(), n)?;
    let st = strides(x.shape());
    let mut start = 0;
    let mut outs = Vec::with_capacity(n);
    for &len in sizes.iter().take(n) {
        let mut shape = x.shape().to_vec();
        shape[axis] = len;
        outs.push(remap(x, shape, |i| Ok(offset(i, &st) + start * st[axis]))?);
        start += len;
    }
    Ok(outs)
}

pub fn register(r: &mut Registry) {
    add_unary(r, "Reshape", reshape_shape, just_reshape);
    add_unary(r, "Flatten", flatten_shape, just_reshape);
    add_unary(r, "Squeeze", squeeze_shape, just_reshape);
    add_unary(r, "Unsqueeze", unsqueeze_shape, just_reshape);
    add_unary(
        r,
        "Transpose",
        |a, x| {
            let p = transpose_perm(a, x.len())?;
            Ok(p.iter().map(|&k| x[k]).collect())
        },
        |a, x, _| transpose(a, x),
    );
    add_unary(r, "Expand", expand_shape, |_, x, out| broadcast_to(x, &out));
    add_unary(r, "Tile", tile_shape, |a, x, _| tile(a, x));
    r.add(
        "Concat",
        |a, ins, _| {
            let d = super::util::same_dtype(ins)?;
            let shapes: Vec<&[usize]> = ins.iter().map(|t| t.shape.as_slice()).collect();
            Ok(vec![TensorType::new(d, concat_shape(a, &shapes)?.1)])
        },
        |a, ins, _| {
            let tys: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
            super::util::same_dtype(&tys.iter().collect::<Vec<_>>())?;
            Ok(vec![concat(a, ins)?])
        },
    );
    r.add(
        "Split",
        |a, ins, n| {
            arity(ins, 1, 1)?;
            let (axis, sizes) = split_sizes(a, &ins[0].shape, n)?;
            Ok(sizes[..n]
                .iter()
                .map(|&s| {
                    let mut sh = ins[0].shape.clone();
                    sh[axis] = s;
                    TensorType::new(ins[0].dtype, sh)
                })
                .collect())
        },
        |a, ins, n| {
            arity(ins, 1, 1)?;
            split(a, ins[0], n)
        },
    );
    slice::register(r);
    layout::register(r);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{registry, Attr};

    fn run(op: &str, a: Attrs, ins: &[&Tensor], n: usize) -> Result<Vec<Tensor>> {
        registry().get(op)?.eval(&a, ins, n)
    }

    #[test]
    fn reshape_zero_and_minus_one() {
        let x = Tensor::zeros(crate::DType::F32, vec![2, 3, 4]);
        let a = Attrs::new().with("shape", Attr::Ints(vec![0, -1]));
        assert_eq!(run("Reshape", a, &[&x], 1).unwrap()[0].shape(), &[2, 12]);
        let a = Attrs::new()
            .with("shape", Attr::Ints(vec![0, -1]))
            .with("allowzero", Attr::Int(1));
        assert!(run("Reshape", a, &[&x], 1).is_err());
    }

    #[test]
    fn transpose_and_split_uneven() {
        let x = Tensor::from_vec(vec![2, 3], (0..6).map(|v| v as f32).collect()).unwrap();
        let t = &run("Transpose", Attrs::new(), &[&x], 1).unwrap()[0];
        assert_eq!(t.as_slice::<f32>().unwrap(), &[0., 3., 1., 4., 2., 5.]);
        let a = Attrs::new().with("axis", Attr::Int(1));
        let parts = run("Split", a, &[&x], 2).unwrap();
        assert_eq!(parts[0].shape(), &[2, 2]);
        assert_eq!(parts[1].as_slice::<f32>().unwrap(), &[2., 5.]);
    }
}
