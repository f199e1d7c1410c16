//! Pooling: MaxPool, AveragePool, LpPool, GlobalAveragePool, GlobalMaxPool,
//! GlobalLpPool and MaxUnpool, over `X [N, C, D1..Dn]` for any `n >= 1`.
//!
//! Window attributes (ONNX names): `kernel_shape` (required), `strides`,
//! `dilations`, `pads`, `auto_pad`, `ceil_mode` (see `conv.rs` for the
//! geometry). Padding is never read: a window covers only the input elements
//! inside it.
//! - `MaxPool` (any numeric type; 1 or 2 outputs): the maximum, and
//!   optionally its int64 index into the flattened input (`storage_order` 0:
//!   row-major, 1: column-major over the spatial dims; batch and channel are
//!   row-major), first occurrence on ties, NaN never selected (as onnxruntime).
//! - `AveragePool` (float): the mean; `count_include_pad` 1 divides by the
//!   number of window positions inside the explicit padding (not the extra
//!   room `ceil_mode` adds), 0 (default) by the number of input elements.
//! - `LpPool` (float): `(sum |x|^p)^(1/p)`, `p` default 2.
//! - `GlobalAveragePool`, `GlobalMaxPool`, `GlobalLpPool` (`p`): one window
//!   over all spatial dims; the output keeps them as size 1.
//! - `MaxUnpool(X, I)`: `kernel_shape`, `strides`, `pads`, and optional
//!   `output_shape` (the full shape). Scatters `X` into zeros of shape
//!   `[N, C, (D-1)*stride - pad_begin - pad_end + k]` at the flat indices
//!   `I`, then places that top-left in `output_shape` (onnx's reference).
//!
//! RoiAlign lives in `pool/roi_align.rs`.

mod roi_align;

use super::conv::{all_indices, positive_ints, read_pads, window, Window};
use super::util::arity;
use crate::{
    dispatch_numeric, ensure, op_err, Attrs, DType, Elem, Registry, Result, Tensor, TensorType,
};

/// A pooling geometry with, per spatial dim and output index, the input
/// coordinates its window reads and the number of positions it covers
/// inside the explicit padding.
struct Pool {
    nc: usize,
    input: Vec<usize>,
    win: Window,
    valid: Vec<Vec<Vec<usize>>>,
    incl: Vec<Vec<usize>>,
}

fn kernel(attrs: &Attrs) -> Result<Vec<usize>> {
    let k = attrs.ints("kernel_shape")?;
    ensure!(
        k.iter().all(|&v| v >= 1),
        "kernel_shape must be >= 1, got {k:?}"
    );
    Ok(k.iter().map(|&v| v as usize).collect())
}

fn spatial(x: &[usize]) -> Result<()> {
    ensure!(x.len() >= 3, "input must be [N, C, spatial...], got {x:?}");
    Ok(())
}

impl Pool {
    #[allow(clippy::needless_range_loop)] // several per-dim arrays in step
    fn new(attrs: &Attrs, x: &[usize]) -> Result<Pool> {
        spatial(x)?;
        let ceil = attrs.int_or("ceil_mode", 0)? != 0;
        let win = window(attrs, &x[2..], &kernel(attrs)?, ceil)?;
        let input = x[2..].to_vec();
        let (mut valid, mut incl) = (vec![], vec![]);
        for d in 0..input.len() {
            let (lo, hi) = (-(win.begin[d] as isize), (input[d] + win.end[d]) as isize);
            let (mut vd, mut id) = (vec![], vec![]);
            for o in 0..win.out[d] {
                let start = (o * win.strides[d]) as isize - win.begin[d] as isize;
                let pos = (0..win.kernel[d]).map(|k| start + (k * win.dilations[d]) as isize);
                id.push(pos.clone().filter(|&i| i >= lo && i < hi).count());
                let ok = pos.filter(|&i| i >= 0 && i < input[d] as isize);
                vd.push(ok.map(|i| i as usize).collect());
            }
            valid.push(vd);
            incl.push(id);
        }
        Ok(Pool {
            nc: x[0] * x[1],
            input,
            win,
            valid,
            incl,
        })
    }

    fn out_shape(&self, x: &[usize]) -> Vec<usize> {
        let mut s = x[..2].to_vec();
        s.extend(&self.win.out);
        s
    }

    /// (row-major, column-major) spatial offsets read by the window at `o`.
    fn taps(&self, o: &[usize]) -> Vec<(usize, usize)> {
        let mut taps = vec![(0usize, 0usize)];
        let mut col_stride = 1;
        for (d, &od) in o.iter().enumerate() {
            let coords = &self.valid[d][od];
            let mut next = Vec::with_capacity(taps.len() * coords.len());
            for &(r, c) in &taps {
                for &i in coords {
                    next.push((r * self.input[d] + i, c + i * col_stride));
                }
            }
            taps = next;
            col_stride *= self.input[d];
        }
        taps
    }

    fn included(&self, o: &[usize]) -> usize {
        o.iter()
            .enumerate()
            .map(|(d, &od)| self.incl[d][od])
            .product()
    }

    /// Applies `f(values, included)` to every window of a float input.
    fn reduce(&self, x: &Tensor, f: impl Fn(&[f64], usize) -> f64) -> Result<Tensor> {
        let xs = x.to_f64_vec();
        let in_sz: usize = self.input.iter().product();
        let outs = all_indices(&self.win.out);
        let mut y = Vec::with_capacity(self.nc * outs.len());
        let mut vals = Vec::new();
        for nc in 0..self.nc {
            for o in &outs {
                vals.clear();
                vals.extend(self.taps(o).iter().map(|&(r, _)| xs[nc * in_sz + r]));
                y.push(f(&vals, self.included(o)));
            }
        }
        let mut shape = vec![self.nc];
        shape.extend(&self.win.out);
        Ok(Tensor::from_vec(shape, y)?.cast(x.dtype()))
    }

    /// Max of every window, with its flat input index.
    fn max<T: Elem>(&self, x: &[T], col_major: bool) -> (Vec<T>, Vec<i64>) {
        let in_sz: usize = self.input.iter().product();
        let outs = all_indices(&self.win.out);
        let (mut y, mut idx) = (vec![], vec![]);
        for nc in 0..self.nc {
            for o in &outs {
                let taps = self.taps(o);
                let flat =
                    |(r, c): (usize, usize)| (nc * in_sz + if col_major { c } else { r }) as i64;
                let mut best = T::from_f64(f64::NEG_INFINITY);
                let mut at = taps.first().map_or(-1, |&t| flat(t));
                for &t in &taps {
                    let v = x[nc * in_sz + t.0];
                    if v > best {
                        best = v;
                        at = flat(t);
                    }
                }
                y.push(best);
                idx.push(at);
            }
        }
        (y, idx)
    }
}

fn float_in(ins: &[&TensorType], name: &str) -> Result<()> {
    arity(ins, 1, 1)?;
    ensure!(
        ins[0].dtype.is_float(),
        "{name} needs a float input, got {}",
        ins[0].dtype
    );
    spatial(&ins[0].shape)
}

fn max_pool_infer(a: &Attrs, ins: &[&TensorType], n_out: usize) -> Result<Vec<TensorType>> {
    arity(ins, 1, 1)?;
    ensure!(
        (1..=2).contains(&n_out),
        "MaxPool has 1 or 2 outputs, {n_out} asked"
    );
    let d = ins[0].dtype;
    ensure!(d.is_numeric(), "MaxPool needs a numeric input, got {d}");
    let shape = Pool::new(a, &ins[0].shape)?.out_shape(&ins[0].shape);
    let mut out = vec![TensorType::new(d, shape.clone())];
    if n_out == 2 {
        out.push(TensorType::new(DType::I64, shape));
    }
    Ok(out)
}

fn max_pool_eval(a: &Attrs, ins: &[&Tensor], n_out: usize) -> Result<Vec<Tensor>> {
    arity(ins, 1, 1)?;
    let ty = max_pool_infer(a, &[&ins[0].ty()], n_out)?;
    let p = Pool::new(a, ins[0].shape())?;
    let col = match a.int_or("storage_order", 0)? {
        0 => false,
        1 => true,
        s => return Err(op_err!("storage_order must be 0 or 1, got {s}")),
    };
    let (y, idx) = dispatch_numeric!(ins[0].dtype(), T => {
        let (y, idx) = p.max(ins[0].as_slice::<T>()?, col);
        (Tensor::from_vec(ty[0].shape.clone(), y)?, idx)
    }, _ => return Err(op_err!("MaxPool does not support {}", ins[0].dtype())));
    let mut out = vec![y];
    if n_out == 2 {
        out.push(Tensor::from_vec(ty[1].shape.clone(), idx)?);
    }
    Ok(out)
}

fn add_window_pool(r: &mut Registry, name: &'static str, f: fn(&Attrs, &[f64], usize) -> f64) {
    r.add(
        name,
        move |a, ins, _| {
            float_in(ins, name)?;
            let shape = Pool::new(a, &ins[0].shape)?.out_shape(&ins[0].shape);
            Ok(vec![TensorType::new(ins[0].dtype, shape)])
        },
        move |a, ins, _| {
            arity(ins, 1, 1)?;
            float_in(&[&ins[0].ty()], name)?;
            check_p(a)?;
            let p = Pool::new(a, ins[0].shape())?;
            let y = p.reduce(ins[0], |v, incl| f(a, v, incl))?;
            Ok(vec![y.reshape(p.out_shape(ins[0].shape()))?])
        },
    );
}

fn p_of(a: &Attrs) -> f64 {
    a.float_or("p", 2.0).unwrap_or(2.0)
}

fn check_p(a: &Attrs) -> Result<()> {
    let p = a.float_or("p", 2.0)?;
    if p.is_nan() || p <= 0.0 {
        return Err(op_err!("p must be positive, got {p}"));
    }
    Ok(())
}

fn average(a: &Attrs, v: &[f64], incl: usize) -> f64 {
    let n = if a.int_or("count_include_pad", 0).unwrap_or(0) != 0 {
        incl
    } else {
        v.len()
    };
    v.iter().sum::<f64>() / n as f64
}

fn lp(a: &Attrs, v: &[f64], _: usize) -> f64 {
    let p = p_of(a);
    v.iter().map(|x| x.abs().powf(p)).sum::<f64>().powf(1.0 / p)
}

fn maximum(_: &Attrs, v: &[f64], _: usize) -> f64 {
    v.iter()
        .fold(f64::NEG_INFINITY, |m, &x| if x > m { x } else { m })
}

/// A global pool: one window covering every spatial dim.
fn add_global(
    r: &mut Registry,
    name: &'static str,
    f: fn(&Attrs, &[f64], usize) -> f64,
    floats: bool,
) {
    let infer = move |ins: &[&TensorType]| -> Result<TensorType> {
        arity(ins, 1, 1)?;
        spatial(&ins[0].shape)?;
        let d = ins[0].dtype;
        ensure!(
            d.is_float() || (!floats && d.is_numeric()),
            "{name} does not support {d}"
        );
        let mut s = ins[0].shape[..2].to_vec();
        s.extend(vec![1; ins[0].rank() - 2]);
        Ok(TensorType::new(d, s))
    };
    r.add(
        name,
        move |_, ins, _| Ok(vec![infer(ins)?]),
        move |a, ins, _| {
            arity(ins, 1, 1)?;
            let ty = infer(&[&ins[0].ty()])?;
            check_p(a)?;
            let x = ins[0].to_f64_vec();
            let sz: usize = ins[0].shape()[2..].iter().product();
            let y: Vec<f64> = (0..ty.shape[0] * ty.shape[1])
                .map(|i| f(a, &x[i * sz..(i + 1) * sz], sz))
                .collect();
            Ok(vec![Tensor::from_vec(ty.shape, y)?.cast(ty.dtype)])
        },
    );
}

/// Output shape of MaxUnpool before `output_shape`: the pooled-from shape.
fn unpool_natural(a: &Attrs, x: &[usize]) -> Result<Vec<usize>> {
    spatial(x)?;
    let n = x.len() - 2;
    let k = kernel(a)?;
    ensure!(k.len() == n, "kernel_shape needs {n} values, got {k:?}");
    let s = positive_ints(a, "strides", n)?;
    let (b, e) = read_pads(a, n)?;
    let mut out = x[..2].to_vec();
    for d in 0..n {
        let full = x[d + 2].saturating_sub(1) * s[d] + k[d];
        ensure!(
            full >= b[d] + e[d],
            "pads exceed the unpooled size in dim {d}"
        );
        out.push(full - b[d] - e[d]);
    }
    Ok(out)
}

fn unpool_infer(a: &Attrs, ins: &[&TensorType]) -> Result<(Vec<usize>, TensorType)> {
    arity(ins, 2, 2)?;
    ensure!(
        ins[1].dtype == DType::I64,
        "indices must be i64, got {}",
        ins[1].dtype
    );
    ensure!(
        ins[1].shape == ins[0].shape,
        "indices shape {:?} differs from input shape {:?}",
        ins[1].shape,
        ins[0].shape
    );
    let natural = unpool_natural(a, &ins[0].shape)?;
    let out = match a.opt_ints("output_shape")? {
        None => natural.clone(),
        Some(s) => {
            ensure!(
                s.len() == natural.len(),
                "output_shape {s:?} must have rank {}",
                natural.len()
            );
            let s: Vec<usize> = s.iter().map(|&v| v.max(0) as usize).collect();
            let fits = s.iter().zip(&natural).all(|(o, n)| o >= n);
            ensure!(
                fits && s[..2] == natural[..2],
                "output_shape {s:?} is smaller than the unpooled shape {natural:?}"
            );
            s
        }
    };
    Ok((natural, TensorType::new(ins[0].dtype, out)))
}

fn unpool_eval(a: &Attrs, ins: &[&Tensor]) -> Result<Tensor> {
    arity(ins, 2, 2)?;
    let (natural, ty) = unpool_infer(a, &[&ins[0].ty(), &ins[1].ty()])?;
    let idx = ins[1].as_slice::<i64>()?;
    let total: usize = natural.iter().product();
    let x = ins[0].to_f64_vec();
    let mut y = vec![0.0; total];
    for (&i, &v) in idx.iter().zip(&x) {
        ensure!(
            i >= 0 && (i as usize) < total,
            "index {i} is out of range for {natural:?}"
        );
        y[i as usize] = v;
    }
    let mut out = vec![0.0; ty.numel()];
    let ostr = crate::strides(&ty.shape);
    for (f, m) in all_indices(&natural).iter().enumerate() {
        let o: usize = m.iter().zip(&ostr).map(|(a, b)| a * b).sum();
        out[o] = y[f];
    }
    Ok(Tensor::from_vec(ty.shape, out)?.cast(ty.dtype))
}

pub fn register(r: &mut Registry) {
    r.add("MaxPool", max_pool_infer, max_pool_eval);
    add_window_pool(r, "AveragePool", average);
    add_window_pool(r, "LpPool", lp);
    add_global(
        r,
        "GlobalAveragePool",
        |_, v, n| v.iter().sum::<f64>() / n as f64,
        true,
    );
    add_global(r, "GlobalMaxPool", maximum, false);
    add_global(r, "GlobalLpPool", lp, true);
    roi_align::register(r);
    r.add(
        "MaxUnpool",
        |a, ins, _| Ok(vec![unpool_infer(a, ins)?.1]),
        |a, ins, _| Ok(vec![unpool_eval(a, ins)?]),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Attr;

    fn x4() -> Tensor {
        Tensor::from_vec(vec![1, 1, 2, 2], vec![1.0f32, 4.0, 3.0, 2.0]).unwrap()
    }

    #[test]
    fn max_pool_index_column_major() {
        let a = Attrs::new()
            .with("kernel_shape", Attr::Ints(vec![2, 2]))
            .with("storage_order", Attr::Int(1));
        let out = max_pool_eval(&a, &[&x4()], 2).unwrap();
        assert_eq!(out[1].as_slice::<i64>().unwrap(), &[2]);
    }

    #[test]
    fn average_pool_count_include_pad() {
        let a = Attrs::new()
            .with("kernel_shape", Attr::Ints(vec![2, 2]))
            .with("pads", Attr::Ints(vec![1, 1, 0, 0]));
        let mk = |c| {
            let r = crate::registry().get("AveragePool").unwrap();
            let a = a.clone().with("count_include_pad", Attr::Int(c));
            r.eval(&a, &[&x4()], 1).unwrap().remove(0)
        };
        assert_eq!(mk(0).as_slice::<f32>().unwrap(), &[1.0, 2.5, 2.0, 2.5]);
        assert_eq!(mk(1).as_slice::<f32>().unwrap(), &[0.25, 1.25, 1.0, 2.5]);
    }
}
