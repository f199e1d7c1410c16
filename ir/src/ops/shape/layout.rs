//! Layout and generator ops.
//!
//! - `DepthToSpace`: `blocksize`, `mode` (`DCR` default | `CRD`); NCHW input.
//! - `SpaceToDepth`: `blocksize`; NCHW input.
//! - `Trilu`: `upper` (default 1), `k` (diagonal offset, default 0): keeps the
//!   upper (`j - i >= k`) or lower (`j - i <= k`) triangle of the last two dims.
//! - `EyeLike`: `k` (default 0), `dtype` (optional, default the input's): ones
//!   on diagonal `k` of a 2-D tensor shaped like the input.
//! - `Range`: no inputs; `start`, `limit`, `delta` (ints for integer dtypes,
//!   floats otherwise) and `dtype`: `max(ceil((limit - start) / delta), 0)` values.
//! - `ReverseSequence`: inputs data and `sequence_lens` (int, one per batch);
//!   `batch_axis` (default 1), `time_axis` (default 0).

use super::{check_numel, offset, remap, remap_fill};
use crate::ops::util::arity;
use crate::{dispatch_dtype, ensure, op_err, strides, Attrs, DType, Elem, Registry, Result};
use crate::{Tensor, TensorType};

fn block(a: &Attrs, x: &[usize]) -> Result<usize> {
    ensure!(x.len() == 4, "expects a 4-D input, got {x:?}");
    let b = a.int("blocksize")?;
    ensure!(
        b > 0 && b < (1 << 16),
        "blocksize must be in 1..65536, got {b}"
    );
    Ok(b as usize)
}

fn d2s_shape(a: &Attrs, x: &[usize]) -> Result<Vec<usize>> {
    let b = block(a, x)?;
    ensure!(
        x[1].is_multiple_of(b * b),
        "channels {} not divisible by {b}^2",
        x[1]
    );
    let out = vec![x[0], x[1] / (b * b), x[2] * b, x[3] * b];
    check_numel(&out)?;
    Ok(out)
}

fn d2s(a: &Attrs, x: &Tensor) -> Result<Tensor> {
    let out = d2s_shape(a, x.shape())?;
    let b = block(a, x.shape())?;
    let crd = match a.str_or("mode", "DCR")? {
        "DCR" => false,
        "CRD" => true,
        m => return Err(op_err!("unknown DepthToSpace mode `{m}`")),
    };
    let st = strides(x.shape());
    let c2 = out[1];
    remap(x, out, |i| {
        let (bi, bj) = (i[2] % b, i[3] % b);
        let c = if crd {
            i[1] * b * b + bi * b + bj
        } else {
            (bi * b + bj) * c2 + i[1]
        };
        Ok(offset(&[i[0], c, i[2] / b, i[3] / b], &st))
    })
}

fn s2d_shape(a: &Attrs, x: &[usize]) -> Result<Vec<usize>> {
    let b = block(a, x)?;
    ensure!(
        x[2].is_multiple_of(b) && x[3].is_multiple_of(b),
        "spatial dims {x:?} not divisible by {b}"
    );
    Ok(vec![x[0], x[1] * b * b, x[2] / b, x[3] / b])
}

fn s2d(a: &Attrs, x: &Tensor) -> Result<Tensor> {
    let out = s2d_shape(a, x.shape())?;
    let b = block(a, x.shape())?;
    let st = strides(x.shape());
    let c = x.shape()[1];
    remap(x, out, |i| {
        let (blk, ch) = (i[1] / c, i[1] % c);
        let (bi, bj) = (blk / b, blk % b);
        Ok(offset(&[i[0], ch, i[2] * b + bi, i[3] * b + bj], &st))
    })
}

fn trilu(a: &Attrs, x: &Tensor) -> Result<Tensor> {
    let r = x.rank();
    ensure!(r >= 2, "Trilu expects rank >= 2, got {r}");
    let upper = a.int_or("upper", 1)? != 0;
    let k = a.int_or("k", 0)? as i128;
    let st = strides(x.shape());
    remap_fill(x, x.shape().to_vec(), 0.0, |i| {
        let diff = i[r - 1] as i128 - i[r - 2] as i128;
        let keep = if upper { diff >= k } else { diff <= k };
        Ok(keep.then(|| offset(i, &st)))
    })
}

fn eyelike_ty(a: &Attrs, x: &TensorType) -> Result<TensorType> {
    ensure!(x.rank() == 2, "EyeLike expects a 2-D input, got {x}");
    Ok(TensorType::new(
        a.opt_dtype("dtype")?.unwrap_or(x.dtype),
        x.shape.clone(),
    ))
}

fn eyelike(a: &Attrs, x: &Tensor) -> Result<Tensor> {
    let ty = eyelike_ty(a, &x.ty())?;
    let k = a.int_or("k", 0)? as i128;
    let (rows, cols) = (ty.shape[0], ty.shape[1]);
    let v: Vec<f64> = (0..rows * cols)
        .map(|p| f64::from(((p % cols) as i128 - (p / cols) as i128 == k) as u8))
        .collect();
    Ok(Tensor::from_vec(ty.shape, v)?.cast(ty.dtype))
}

/// Length of a Range and a function giving element `i` as f64 or i64.
fn range_len(a: &Attrs) -> Result<usize> {
    let d = a.dtype("dtype")?;
    let n = if d.is_float() {
        let (s, l, dl) = (a.float("start")?, a.float("limit")?, a.float("delta")?);
        let n = ((l - s) / dl).ceil();
        ensure!(n.is_finite() && dl != 0.0, "Range: bad start/limit/delta");
        n.max(0.0) as u128
    } else {
        let (s, l, dl) = (
            a.int("start")? as i128,
            a.int("limit")? as i128,
            a.int("delta")? as i128,
        );
        ensure!(dl != 0, "Range: delta cannot be 0");
        let diff = l - s;
        let n = if (diff > 0) == (dl > 0) && diff != 0 {
            (diff.abs() + dl.abs() - 1) / dl.abs()
        } else {
            0
        };
        n as u128
    };
    let n = usize::try_from(n).map_err(|_| op_err!("Range too long"))?;
    check_numel(&[n])?;
    Ok(n)
}

fn range(a: &Attrs) -> Result<Tensor> {
    let n = range_len(a)?;
    let d = a.dtype("dtype")?;
    ensure!(d != DType::Bool, "Range does not support bool");
    Ok(dispatch_dtype!(d, T => {
        let v: Vec<T> = if d.is_float() {
            let (s, dl) = (a.float("start")?, a.float("delta")?);
            (0..n).map(|i| T::from_f64(s + i as f64 * dl)).collect()
        } else {
            let (s, dl) = (a.int("start")?, a.int("delta")?);
            (0..n).map(|i| T::from_i64(s.wrapping_add((i as i64).wrapping_mul(dl)))).collect()
        };
        Tensor::from_vec(vec![n], v)?
    }))
}

fn revseq_axes(a: &Attrs, x: &TensorType, lens: &TensorType) -> Result<(usize, usize)> {
    ensure!(x.rank() >= 2, "ReverseSequence expects rank >= 2, got {x}");
    let (b, t) = (a.int_or("batch_axis", 1)?, a.int_or("time_axis", 0)?);
    ensure!(
        (b == 0 && t == 1) || (b == 1 && t == 0),
        "batch_axis/time_axis must be 0 and 1, got {b} and {t}"
    );
    ensure!(
        lens.dtype.is_int() && lens.shape == [x.shape[b as usize]],
        "sequence_lens must be an integer vector of the batch size, got {lens}"
    );
    Ok((b as usize, t as usize))
}

fn reverse_sequence(a: &Attrs, x: &Tensor, lens: &Tensor) -> Result<Tensor> {
    let (ba, ta) = revseq_axes(a, &x.ty(), &lens.ty())?;
    let t_len = x.shape()[ta] as i64;
    let lens = lens.to_i64_vec()?;
    ensure!(
        lens.iter().all(|&l| (0..=t_len).contains(&l)),
        "sequence_lens {lens:?} out of range 0..={t_len}"
    );
    let st = strides(x.shape());
    let mut src = vec![0usize; x.rank()];
    remap(x, x.shape().to_vec(), |i| {
        src.copy_from_slice(i);
        let l = lens[i[ba]] as usize;
        if i[ta] < l {
            src[ta] = l - 1 - i[ta];
        }
        Ok(offset(&src, &st))
    })
}

fn add1(
    r: &mut Registry,
    name: &'static str,
    ty: fn(&Attrs, &TensorType) -> Result<TensorType>,
    eval: fn(&Attrs, &Tensor) -> Result<Tensor>,
) {
    r.add(
        name,
        move |a, ins, _| {
            arity(ins, 1, 1)?;
            Ok(vec![ty(a, ins[0])?])
        },
        move |a, ins, _| {
            arity(ins, 1, 1)?;
            Ok(vec![eval(a, ins[0])?])
        },
    );
}

pub fn register(r: &mut Registry) {
    add1(
        r,
        "DepthToSpace",
        |a, x| Ok(TensorType::new(x.dtype, d2s_shape(a, &x.shape)?)),
        d2s,
    );
    add1(
        r,
        "SpaceToDepth",
        |a, x| Ok(TensorType::new(x.dtype, s2d_shape(a, &x.shape)?)),
        s2d,
    );
    add1(
        r,
        "Trilu",
        |_, x| {
            ensure!(x.rank() >= 2, "Trilu expects rank >= 2, got {x}");
            Ok(x.clone())
        },
        trilu,
    );
    add1(r, "EyeLike", eyelike_ty, eyelike);
    r.add(
        "Range",
        |a, ins, _| {
            arity(ins, 0, 0)?;
            Ok(vec![TensorType::new(
                a.dtype("dtype")?,
                vec![range_len(a)?],
            )])
        },
        |a, ins, _| {
            arity(ins, 0, 0)?;
            Ok(vec![range(a)?])
        },
    );
    r.add(
        "ReverseSequence",
        |a, ins, _| {
            arity(ins, 2, 2)?;
            revseq_axes(a, ins[0], ins[1])?;
            Ok(vec![ins[0].clone()])
        },
        |a, ins, _| {
            arity(ins, 2, 2)?;
            Ok(vec![reverse_sequence(a, ins[0], ins[1])?])
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Attr;

    #[test]
    fn depth_to_space_modes_roundtrip() {
        let x = Tensor::from_vec(vec![1, 4, 1, 1], vec![0f32, 1., 2., 3.]).unwrap();
        let a = Attrs::new().with("blocksize", Attr::Int(2));
        let y = d2s(&a, &x).unwrap();
        assert_eq!(y.shape(), &[1, 1, 2, 2]);
        assert_eq!(s2d(&a, &y).unwrap(), x);
        let x = Tensor::from_vec(vec![1, 8, 1, 1], (0..8).map(|v| v as f32).collect()).unwrap();
        let dcr = d2s(&a, &x).unwrap().to_f64_vec();
        let crd = d2s(&a.with("mode", Attr::Str("CRD".into())), &x)
            .unwrap()
            .to_f64_vec();
        assert_eq!(dcr, [0., 2., 4., 6., 1., 3., 5., 7.]);
        assert_eq!(crd, [0., 1., 2., 3., 4., 5., 6., 7.]);
    }

    #[test]
    fn range_int_negative_delta() {
        let a = Attrs::new()
            .with("start", Attr::Int(10))
            .with("limit", Attr::Int(4))
            .with("delta", Attr::Int(-3))
            .with("dtype", Attr::DType(DType::I32));
        assert_eq!(range(&a).unwrap().to_i64_vec().unwrap(), [10, 7]);
    }
}
