//! Normalization ops. Statistics are computed in f64 (population variance).
//!
//! - `BatchNormalization`: inputs X `[N, C, ...]`, scale, B, mean, var (each
//!   `[C]`); attributes `epsilon` (1e-5), `momentum` (0.9), `training_mode`
//!   (0). Inference: `y = scale * (x - mean) / sqrt(var + eps) + B`. With
//!   `training_mode` = 1 the batch statistics are used and two more outputs
//!   may be asked for: `running_mean = mean * momentum + batch_mean * (1 -
//!   momentum)` and likewise `running_var` (dtype of the mean input).
//! - `LayerNormalization`: inputs X, Scale, optional B (both broadcast to X);
//!   attributes `axis` (-1), `epsilon` (1e-5), `stash_type` (a dtype, default
//!   f32). Normalises over the axes from `axis` on. Optional outputs Mean and
//!   InvStdDev, shaped `X.shape[..axis] + [1; rank - axis]`, of `stash_type`.
//! - `InstanceNormalization`: inputs input `[N, C, ...]`, scale `[C]`, B `[C]`;
//!   attribute `epsilon`. Normalises each (n, c) over the spatial axes.
//! - `GroupNormalization`: inputs X `[N, C, ...]`, scale, bias; attributes
//!   `num_groups` (required), `epsilon` (1e-5), `stash_type` (accepted, f64 is
//!   used). Normalises each group of `C / num_groups` channels. scale and bias
//!   have C elements (one per channel, ONNX opset 21) or, in ONNX opset 18's
//!   form, `num_groups` elements (one per group).
//! - `LpNormalization`: attributes `axis` (-1), `p` (1 or 2, default 2);
//!   `x / ||x||_p` along the axis, 0 where the norm is 0.
//! - `LRN`: attributes `size` (required), `alpha` (1e-4), `beta` (0.75),
//!   `bias` (1.0); across channels (axis 1) of an `[N, C, ...]` input.
//! - `RMSNormalization`: inputs X, scale (broadcast to X); attributes `axis`
//!   (-1), `epsilon` (1e-5), `stash_type` (accepted).
//!   `y = x / sqrt(mean(x^2) + eps) * scale` over the axes from `axis` on.
//! - `MeanVarianceNormalization`: attribute `axes` (default `[0, 2, 3]`);
//!   `y = (x - mean) / (sqrt(var) + 1e-9)` over those axes.

use super::reduce::groups;
use super::util::{arity, broadcast_to, norm_axes, norm_axis};
use crate::{ensure, numel, Attrs, DType, Registry, Result, Tensor, TensorType};

/// Builds a tensor of dtype `d` from f64 values.
fn from_f64s(d: DType, shape: &[usize], v: Vec<f64>) -> Result<Tensor> {
    Ok(Tensor::from_vec(shape.to_vec(), v)?.cast(d))
}

/// Mean and population variance of each group of `v`.
fn moments(v: &[f64], gs: &[Vec<usize>]) -> Vec<(f64, f64)> {
    gs.iter()
        .map(|g| {
            let n = g.len() as f64;
            let mean = g.iter().map(|&i| v[i]).sum::<f64>() / n;
            let var = g.iter().map(|&i| (v[i] - mean).powi(2)).sum::<f64>() / n;
            (mean, var)
        })
        .collect()
}

/// Mask of the axes `from..rank`.
fn tail_mask(rank: usize, from: usize) -> Vec<bool> {
    (0..rank).map(|k| k >= from).collect()
}

/// Checks a float input.
fn check_float(t: &TensorType, what: &str) -> Result<()> {
    ensure!(t.dtype.is_float(), "{what} must be a float tensor, got {t}");
    Ok(())
}

/// Checks an `[N, C, ...]` input and per-channel parameters of `len` elements.
fn check_nc(ins: &[&TensorType], params: std::ops::Range<usize>, len: &[usize]) -> Result<()> {
    check_float(ins[0], "X")?;
    ensure!(
        ins[0].rank() >= 2,
        "X must have rank 2 or more, got {}",
        ins[0]
    );
    for i in params {
        check_float(ins[i], "a parameter")?;
        ensure!(
            len.contains(&ins[i].numel()) && ins[i].rank() == 1,
            "input {i} must be 1-D with {:?} elements, got {}",
            len,
            ins[i]
        );
    }
    Ok(())
}

fn batchnorm_infer(attrs: &Attrs, ins: &[&TensorType], n: usize) -> Result<Vec<TensorType>> {
    arity(ins, 5, 5)?;
    check_nc(ins, 1..5, &[ins[0].shape[1]])?;
    let training = attrs.int_or("training_mode", 0)? != 0;
    ensure!(
        n <= if training { 3 } else { 1 },
        "{n} outputs requested (training_mode = {})",
        training as i64
    );
    let mut outs = vec![ins[0].clone()];
    outs.extend((1..n).map(|_| ins[3].clone()));
    Ok(outs)
}

fn batchnorm_eval(attrs: &Attrs, ins: &[&Tensor], n: usize) -> Result<Vec<Tensor>> {
    let x = ins[0];
    let (shape, eps) = (x.shape(), attrs.float_or("epsilon", 1e-5)?);
    let c = shape[1];
    let inner = numel(&shape[2..]);
    let [s, b, mean, var] = [1, 2, 3, 4].map(|i| ins[i].to_f64_vec());
    let v = x.to_f64_vec();
    let training = attrs.int_or("training_mode", 0)? != 0;
    let (m, va) = if training {
        let mask: Vec<bool> = (0..x.rank()).map(|k| k != 1).collect();
        moments(&v, &groups(shape, &mask)).into_iter().unzip()
    } else {
        (mean.clone(), var.clone())
    };
    let y: Vec<f64> = v
        .iter()
        .enumerate()
        .map(|(i, &xv)| {
            let ch = (i / inner) % c;
            s[ch] * (xv - m[ch]) / (va[ch] + eps).sqrt() + b[ch]
        })
        .collect();
    let mut outs = vec![from_f64s(x.dtype(), shape, y)?];
    let mom = attrs.float_or("momentum", 0.9)?;
    let run = |old: &[f64], new: &[f64]| -> Vec<f64> {
        old.iter()
            .zip(new)
            .map(|(o, n)| o * mom + n * (1.0 - mom))
            .collect()
    };
    for (old, new) in [(&mean, &m), (&var, &va)]
        .into_iter()
        .take(n.saturating_sub(1))
    {
        outs.push(from_f64s(ins[3].dtype(), &[c], run(old, new))?);
    }
    Ok(outs)
}

/// LayerNormalization/RMSNormalization: the normalised axis and the stats shape.
fn tail_axis(attrs: &Attrs, x: &TensorType) -> Result<(usize, Vec<usize>)> {
    check_float(x, "X")?;
    let axis = norm_axis(attrs.int_or("axis", -1)?, x.rank())?;
    let stats = (0..x.rank())
        .map(|k| if k < axis { x.shape[k] } else { 1 })
        .collect();
    Ok((axis, stats))
}

/// Checks that parameter inputs broadcast to X.
fn check_params(ins: &[&TensorType], from: usize) -> Result<()> {
    for t in &ins[from..] {
        check_float(t, "a parameter")?;
        let b = super::util::broadcast_shapes(&[&ins[0].shape, &t.shape])?;
        ensure!(
            b == ins[0].shape,
            "{} does not broadcast to X {}",
            t,
            ins[0]
        );
    }
    Ok(())
}

fn layernorm_infer(attrs: &Attrs, ins: &[&TensorType], n: usize) -> Result<Vec<TensorType>> {
    arity(ins, 2, 3)?;
    ensure!(n <= 3, "has 3 outputs, {n} requested");
    let (_, stats) = tail_axis(attrs, ins[0])?;
    check_params(ins, 1)?;
    let u = attrs.opt_dtype("stash_type")?.unwrap_or(DType::F32);
    ensure!(u.is_float(), "stash_type must be a float type, got {u}");
    let mut outs = vec![ins[0].clone()];
    outs.extend((1..n).map(|_| TensorType::new(u, stats.clone())));
    Ok(outs)
}

fn layernorm_eval(attrs: &Attrs, ins: &[&Tensor], n: usize) -> Result<Vec<Tensor>> {
    let types = layernorm_infer(
        attrs,
        &ins.iter()
            .map(|t| t.ty())
            .collect::<Vec<_>>()
            .iter()
            .collect::<Vec<_>>(),
        n,
    )?;
    let x = ins[0];
    let (axis, stats) = tail_axis(attrs, &x.ty())?;
    let eps = attrs.float_or("epsilon", 1e-5)?;
    let v = x.to_f64_vec();
    let gs = groups(x.shape(), &tail_mask(x.rank(), axis));
    let mo = moments(&v, &gs);
    let scale = broadcast_to(ins[1], x.shape())?.to_f64_vec();
    let bias = match ins.get(2) {
        Some(b) => broadcast_to(b, x.shape())?.to_f64_vec(),
        None => vec![0.0; v.len()],
    };
    let mut y = vec![0.0; v.len()];
    for (g, &(m, var)) in gs.iter().zip(&mo) {
        let inv = 1.0 / (var + eps).sqrt();
        for &i in g {
            y[i] = (v[i] - m) * inv * scale[i] + bias[i];
        }
    }
    let mut outs = vec![from_f64s(x.dtype(), x.shape(), y)?];
    let means = mo.iter().map(|p| p.0).collect();
    let invs = mo.iter().map(|p| 1.0 / (p.1 + eps).sqrt()).collect();
    for (k, vals) in [means, invs]
        .into_iter()
        .enumerate()
        .take(n.saturating_sub(1))
    {
        outs.push(from_f64s(types[k + 1].dtype, &stats, vals)?);
    }
    Ok(outs)
}

fn rmsnorm_eval(attrs: &Attrs, ins: &[&Tensor]) -> Result<Tensor> {
    let x = ins[0];
    let (axis, _) = tail_axis(attrs, &x.ty())?;
    let eps = attrs.float_or("epsilon", 1e-5)?;
    let v = x.to_f64_vec();
    let scale = broadcast_to(ins[1], x.shape())?.to_f64_vec();
    let mut y = vec![0.0; v.len()];
    for g in groups(x.shape(), &tail_mask(x.rank(), axis)) {
        let ms = g.iter().map(|&i| v[i] * v[i]).sum::<f64>() / g.len() as f64;
        let inv = 1.0 / (ms + eps).sqrt();
        for i in g {
            y[i] = v[i] * inv * scale[i];
        }
    }
    from_f64s(x.dtype(), x.shape(), y)
}

/// Normalises `v` (shape `[N, C, ...]`) over groups, then applies per-channel
/// scale and bias (`per_group`: one value per group instead).
fn group_norm(
    x: &Tensor,
    n_groups: usize,
    eps: f64,
    scale: &[f64],
    bias: &[f64],
) -> Result<Tensor> {
    let shape = x.shape();
    let (n, c) = (shape[0], shape[1]);
    ensure!(
        n_groups > 0 && c % n_groups == 0,
        "num_groups {n_groups} must divide the {c} channels"
    );
    let inner = numel(&shape[2..]);
    let v = x.to_f64_vec();
    let view = [n, n_groups, c / n_groups * inner];
    let gs = groups(&view, &[false, false, true]);
    let mut y = vec![0.0; v.len()];
    let per_group = scale.len() != c;
    for (gi, (g, (m, var))) in gs.iter().zip(moments(&v, &gs)).enumerate() {
        let inv = 1.0 / (var + eps).sqrt();
        for &i in g {
            let ch = (i / inner) % c;
            let p = if per_group { gi % n_groups } else { ch };
            y[i] = (v[i] - m) * inv * scale[p] + bias[p];
        }
    }
    from_f64s(x.dtype(), shape, y)
}

fn groupnorm_check(attrs: &Attrs, ins: &[&TensorType]) -> Result<usize> {
    arity(ins, 3, 3)?;
    let g = attrs.int("num_groups")?;
    let c = ins[0].shape.get(1).copied().unwrap_or(0);
    ensure!(
        g > 0 && c % g as usize == 0,
        "num_groups {g} must divide the {c} channels"
    );
    check_nc(ins, 1..3, &[c, g as usize])?;
    ensure!(
        ins[1].numel() == ins[2].numel(),
        "scale and bias must have the same length"
    );
    Ok(g as usize)
}

fn instancenorm_eval(attrs: &Attrs, ins: &[&Tensor]) -> Result<Tensor> {
    let c = ins[0].shape()[1];
    let eps = attrs.float_or("epsilon", 1e-5)?;
    group_norm(ins[0], c, eps, &ins[1].to_f64_vec(), &ins[2].to_f64_vec())
}

fn lpnorm_eval(attrs: &Attrs, x: &Tensor) -> Result<Tensor> {
    let axis = norm_axis(attrs.int_or("axis", -1)?, x.rank())?;
    let p = attrs.int_or("p", 2)?;
    let v = x.to_f64_vec();
    let mut mask = vec![false; x.rank()];
    if let Some(m) = mask.get_mut(axis) {
        *m = true;
    }
    let mut y = vec![0.0; v.len()];
    for g in groups(x.shape(), &mask) {
        let norm = if p == 1 {
            g.iter().map(|&i| v[i].abs()).sum::<f64>()
        } else {
            g.iter().map(|&i| v[i] * v[i]).sum::<f64>().sqrt()
        };
        for i in g {
            y[i] = if norm == 0.0 { 0.0 } else { v[i] / norm };
        }
    }
    from_f64s(x.dtype(), x.shape(), y)
}

fn lrn_eval(attrs: &Attrs, x: &Tensor) -> Result<Tensor> {
    let size = attrs.int("size")?;
    ensure!(size > 0, "size must be positive, got {size}");
    let (alpha, beta) = (
        attrs.float_or("alpha", 1e-4)?,
        attrs.float_or("beta", 0.75)?,
    );
    let bias = attrs.float_or("bias", 1.0)?;
    let shape = x.shape();
    let c = shape[1] as i64;
    let inner = numel(&shape[2..]);
    let v = x.to_f64_vec();
    let (lo, hi) = ((size - 1) / 2, size / 2);
    let y = (0..v.len())
        .map(|i| {
            let ch = ((i / inner) as i64) % c;
            let base = i as i64 - ch * inner as i64;
            let sq: f64 = ((ch - lo).max(0)..=(ch + hi).min(c - 1))
                .map(|k| v[(base + k * inner as i64) as usize].powi(2))
                .sum();
            v[i] / (bias + alpha / size as f64 * sq).powf(beta)
        })
        .collect();
    from_f64s(x.dtype(), shape, y)
}

fn mvn_eval(attrs: &Attrs, x: &Tensor) -> Result<Tensor> {
    let mask = mvn_mask(attrs, x.rank())?;
    let v = x.to_f64_vec();
    let gs = groups(x.shape(), &mask);
    let mut y = vec![0.0; v.len()];
    for (g, (m, var)) in gs.iter().zip(moments(&v, &gs)) {
        for &i in g {
            y[i] = (v[i] - m) / (var.sqrt() + 1e-9);
        }
    }
    from_f64s(x.dtype(), x.shape(), y)
}

fn mvn_mask(attrs: &Attrs, rank: usize) -> Result<Vec<bool>> {
    let axes = attrs.opt_ints("axes")?.unwrap_or_else(|| vec![0, 2, 3]);
    let mut mask = vec![false; rank];
    for a in norm_axes(&axes, rank)? {
        ensure!(a < rank, "axis {a} is out of range for rank {rank}");
        mask[a] = true;
    }
    Ok(mask)
}

/// Registers a one-output op whose output type is its first input's.
fn add_same_type(
    r: &mut Registry,
    name: &str,
    check: impl Fn(&Attrs, &[&TensorType]) -> Result<()> + Send + Sync + Copy + 'static,
    eval: impl Fn(&Attrs, &[&Tensor]) -> Result<Tensor> + Send + Sync + 'static,
) {
    r.add(
        name,
        move |attrs, ins, _| {
            check(attrs, ins)?;
            Ok(vec![ins[0].clone()])
        },
        move |attrs, ins, _| {
            let tys: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
            check(attrs, &tys.iter().collect::<Vec<_>>())?;
            Ok(vec![eval(attrs, ins)?])
        },
    );
}

fn check_nc_only(ins: &[&TensorType]) -> Result<()> {
    arity(ins, 1, 1)?;
    check_nc(ins, 1..1, &[])
}

pub fn register(r: &mut Registry) {
    r.add("BatchNormalization", batchnorm_infer, |a, ins, n| {
        let tys: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
        batchnorm_infer(a, &tys.iter().collect::<Vec<_>>(), n)?;
        batchnorm_eval(a, ins, n)
    });
    r.add("LayerNormalization", layernorm_infer, layernorm_eval);
    add_same_type(
        r,
        "RMSNormalization",
        |a, ins| {
            arity(ins, 2, 2)?;
            tail_axis(a, ins[0])?;
            check_params(ins, 1)
        },
        rmsnorm_eval,
    );
    add_same_type(
        r,
        "InstanceNormalization",
        |_, ins| {
            arity(ins, 3, 3)?;
            check_nc(ins, 1..3, &[ins[0].shape.get(1).copied().unwrap_or(0)])
        },
        instancenorm_eval,
    );
    add_same_type(
        r,
        "GroupNormalization",
        |a, ins| groupnorm_check(a, ins).map(|_| ()),
        |a, ins| {
            let g = a.int("num_groups")? as usize;
            let eps = a.float_or("epsilon", 1e-5)?;
            group_norm(ins[0], g, eps, &ins[1].to_f64_vec(), &ins[2].to_f64_vec())
        },
    );
    add_same_type(
        r,
        "LpNormalization",
        |a, ins| {
            arity(ins, 1, 1)?;
            check_float(ins[0], "input")?;
            norm_axis(a.int_or("axis", -1)?, ins[0].rank())?;
            let p = a.int_or("p", 2)?;
            ensure!(p == 1 || p == 2, "p must be 1 or 2, got {p}");
            Ok(())
        },
        |a, ins| lpnorm_eval(a, ins[0]),
    );
    add_same_type(
        r,
        "LRN",
        |a, ins| {
            check_nc_only(ins)?;
            ensure!(a.int("size")? > 0, "size must be positive");
            Ok(())
        },
        |a, ins| lrn_eval(a, ins[0]),
    );
    add_same_type(
        r,
        "MeanVarianceNormalization",
        |a, ins| {
            arity(ins, 1, 1)?;
            check_float(ins[0], "input")?;
            mvn_mask(a, ins[0].rank()).map(|_| ())
        },
        |a, ins| mvn_eval(a, ins[0]),
    );
}

#[cfg(test)]
mod tests {
    use crate::{Attr, Attrs, Tensor};

    fn run(op: &str, attrs: Attrs, ins: &[&Tensor], n: usize) -> Vec<Tensor> {
        crate::registry()
            .get(op)
            .unwrap()
            .eval(&attrs, ins, n)
            .unwrap()
    }

    #[test]
    fn group_norm_per_group_and_per_channel_scale() {
        // N=1, C=4, 2 groups of 2 channels with one element each: +-1 after normalising.
        let x = Tensor::from_vec(vec![1, 4, 1], vec![1.0f64, 3.0, 5.0, 9.0]).unwrap();
        let a = Attrs::new()
            .with("num_groups", Attr::Int(2))
            .with("epsilon", Attr::Float(0.0));
        let s = Tensor::from_vec(vec![2], vec![1.0f64, 2.0]).unwrap();
        let b = Tensor::from_vec(vec![2], vec![0.0f64, 10.0]).unwrap();
        let y = run("GroupNormalization", a.clone(), &[&x, &s, &b], 1);
        assert_eq!(y[0].as_slice::<f64>().unwrap(), &[-1.0, 1.0, 8.0, 12.0]);
        let s = Tensor::from_vec(vec![4], vec![1.0f64, 2.0, 3.0, 4.0]).unwrap();
        let b = Tensor::from_vec(vec![4], vec![0.0f64; 4]).unwrap();
        let y = run("GroupNormalization", a, &[&x, &s, &b], 1);
        assert_eq!(y[0].as_slice::<f64>().unwrap(), &[-1.0, 2.0, -3.0, 4.0]);
    }

    #[test]
    fn layer_norm_stats_outputs() {
        let x = Tensor::from_vec(vec![2, 2], vec![1.0f32, 3.0, 2.0, 2.0]).unwrap();
        let s = Tensor::from_vec(vec![2], vec![1.0f32, 1.0]).unwrap();
        let a = Attrs::new().with("epsilon", Attr::Float(0.0));
        let y = run("LayerNormalization", a, &[&x, &s], 3);
        assert_eq!(y[1].shape(), &[2, 1]);
        assert_eq!(y[1].as_slice::<f32>().unwrap(), &[2.0, 2.0]);
        assert_eq!(y[2].as_slice::<f32>().unwrap()[0], 1.0);
        assert_eq!(y[0].as_slice::<f32>().unwrap()[..2], [-1.0, 1.0]);
    }

    #[test]
    fn lp_norm_zero_vector_stays_zero() {
        let x = Tensor::from_vec(vec![2, 2], vec![0.0f32, 0.0, -3.0, 4.0]).unwrap();
        let a = Attrs::new().with("p", Attr::Int(1));
        let y = run("LpNormalization", a, &[&x], 1);
        let v = y[0].as_slice::<f32>().unwrap();
        assert_eq!(v[..2], [0.0, 0.0]);
        assert!((v[2] + 3.0 / 7.0).abs() < 1e-6);
    }
}
