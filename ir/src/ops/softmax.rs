//! Softmax family and the losses built on it.
//!
//! - `Softmax`, `LogSoftmax`, `Hardmax`: attributes `axis` (default -1) and
//!   `coerce_2d` (int, default 0). With `coerce_2d` = 0 (ONNX opset 13+) the
//!   op normalises along `axis` alone; with 1 (ONNX opsets 1-12) the input is
//!   seen as a 2-D matrix `[prod(dims[..axis]), prod(dims[axis..])]` and each
//!   row is normalised, i.e. over every axis from `axis` on. Hardmax puts 1 at
//!   the first maximum and 0 elsewhere. Float types only.
//! - `NegativeLogLikelihoodLoss`: inputs `input` `[N, C, d1..dk]`, `target`
//!   `[N, d1..dk]` (integer), optional `weight` `[C]`; attributes `reduction`
//!   (`"none"`, `"sum"`, `"mean"`; default `"mean"`) and optional
//!   `ignore_index`. `loss = -input[n, t, d] * weight[t]`, 0 where `t` is
//!   ignored; `mean` divides the sum by the sum of the weights used.
//! - `SoftmaxCrossEntropyLoss`: inputs `scores`, `labels`, optional `weights`
//!   shaped like NegativeLogLikelihoodLoss's, same attributes; outputs the loss
//!   and optionally `log_prob` (LogSoftmax of `scores` along axis 1).
//!
//! Everything is computed in f64.

use super::util::{arity, norm_axis};
use crate::{ensure, numel, op_err, Attrs, DType, Registry, Result, Tensor, TensorType};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Softmax,
    LogSoftmax,
    Hardmax,
}

/// The normalised span: `(outer, n, inner)` where rows are `n` elements with stride `inner`.
fn span(attrs: &Attrs, shape: &[usize]) -> Result<(usize, usize, usize)> {
    let rank = shape.len();
    let coerce = attrs.int_or("coerce_2d", 0)? != 0;
    let axis = attrs.int_or("axis", -1)?;
    if rank == 0 {
        return Ok((1, 1, 1));
    }
    if coerce {
        // Opsets 1-12 also accept axis == rank (every row has one element).
        ensure!(
            axis >= -(rank as i64) && axis <= rank as i64,
            "axis {axis} is out of range for rank {rank}"
        );
        let a = if axis < 0 { axis + rank as i64 } else { axis } as usize;
        Ok((numel(&shape[..a]), numel(&shape[a..]), 1))
    } else {
        let a = norm_axis(axis, rank)?;
        Ok((numel(&shape[..a]), shape[a], numel(&shape[a + 1..])))
    }
}

/// Applies the kind to one row of values.
fn normalise(kind: Kind, row: &mut [f64]) {
    let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    match kind {
        Kind::Hardmax => {
            let first = row.iter().position(|&v| v == m || v.is_nan());
            for (j, v) in row.iter_mut().enumerate() {
                *v = if Some(j) == first { 1.0 } else { 0.0 };
            }
        }
        Kind::Softmax => {
            let s: f64 = row.iter().map(|&v| (v - m).exp()).sum();
            row.iter_mut().for_each(|v| *v = (*v - m).exp() / s);
        }
        Kind::LogSoftmax => {
            let ls = row.iter().map(|&v| (v - m).exp()).sum::<f64>().ln();
            row.iter_mut().for_each(|v| *v = *v - m - ls);
        }
    }
}

/// Applies `kind` over rows of `n` elements strided by `inner` in f64 data.
fn apply_rows(kind: Kind, v: &mut [f64], (outer, n, inner): (usize, usize, usize)) {
    let mut row = vec![0.0; n];
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| o * n * inner + j * inner + i;
            for (j, r) in row.iter_mut().enumerate() {
                *r = v[at(j)];
            }
            normalise(kind, &mut row);
            for (j, r) in row.iter().enumerate() {
                v[at(j)] = *r;
            }
        }
    }
}

/// Builds a float tensor of dtype `d` from f64 values.
fn from_f64s(d: DType, shape: Vec<usize>, v: Vec<f64>) -> Result<Tensor> {
    Ok(Tensor::from_vec(shape, v)?.cast(d))
}

fn softmax_eval(kind: Kind, attrs: &Attrs, x: &Tensor) -> Result<Tensor> {
    let sp = span(attrs, x.shape())?;
    let mut v = x.to_f64_vec();
    apply_rows(kind, &mut v, sp);
    from_f64s(x.dtype(), x.shape().to_vec(), v)
}

fn add_softmax(r: &mut Registry, name: &'static str, kind: Kind) {
    r.add(
        name,
        |attrs, ins, _| {
            arity(ins, 1, 1)?;
            ensure!(
                ins[0].dtype.is_float(),
                "expects a float tensor, got {}",
                ins[0].dtype
            );
            span(attrs, &ins[0].shape)?;
            Ok(vec![ins[0].clone()])
        },
        move |attrs, ins, _| {
            arity(ins, 1, 1)?;
            ensure!(
                ins[0].dtype().is_float(),
                "expects a float tensor, got {}",
                ins[0].dtype()
            );
            Ok(vec![softmax_eval(kind, attrs, ins[0])?])
        },
    );
}

/// Loss reductions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reduction {
    None,
    Sum,
    Mean,
}

fn reduction(attrs: &Attrs) -> Result<Reduction> {
    match attrs.str_or("reduction", "mean")? {
        "none" => Ok(Reduction::None),
        "sum" => Ok(Reduction::Sum),
        "mean" => Ok(Reduction::Mean),
        s => Err(op_err!("reduction must be none, sum or mean, got `{s}`")),
    }
}

/// Checks the loss inputs and gives the loss output type.
fn loss_infer(attrs: &Attrs, ins: &[&TensorType]) -> Result<TensorType> {
    arity(ins, 2, 3)?;
    let (x, t) = (ins[0], ins[1]);
    ensure!(x.dtype.is_float(), "expects float scores, got {}", x.dtype);
    ensure!(x.rank() >= 2, "expects scores of rank 2 or more, got {}", x);
    ensure!(t.dtype.is_int(), "expects integer targets, got {}", t.dtype);
    let mut want = vec![x.shape[0]];
    want.extend_from_slice(&x.shape[2..]);
    ensure!(
        t.shape == want,
        "target shape {:?} must be {:?}",
        t.shape,
        want
    );
    if let Some(w) = ins.get(2) {
        ensure!(
            w.dtype == x.dtype,
            "weight must be {}, got {}",
            x.dtype,
            w.dtype
        );
        ensure!(
            w.shape == [x.shape[1]],
            "weight shape must be [{}], got {:?}",
            x.shape[1],
            w.shape
        );
    }
    let shape = if reduction(attrs)? == Reduction::None {
        want
    } else {
        vec![]
    };
    Ok(TensorType::new(x.dtype, shape))
}

/// Negative log-likelihood of log-probabilities `logp` (`[N, C, D]` flattened), as f64.
fn nll(
    attrs: &Attrs,
    logp: &[f64],
    shape: &[usize],
    target: &Tensor,
    weight: Option<&Tensor>,
) -> Result<Tensor> {
    let (n, c) = (shape[0], shape[1]);
    let d = numel(&shape[2..]);
    let tgt = target.to_i64_vec()?;
    let w = weight.map(|w| w.to_f64_vec());
    let ignore = attrs.opt_int("ignore_index")?;
    let red = reduction(attrs)?;
    let (mut losses, mut wsum) = (Vec::with_capacity(n * d), 0.0);
    for b in 0..n {
        for k in 0..d {
            let t = tgt[b * d + k];
            if Some(t) == ignore {
                losses.push(0.0);
                continue;
            }
            ensure!(
                t >= 0 && (t as usize) < c,
                "target {t} is out of range for {c} classes"
            );
            let wt = w.as_ref().map_or(1.0, |w| w[t as usize]);
            wsum += wt;
            losses.push(-logp[(b * c + t as usize) * d + k] * wt);
        }
    }
    let (shape, v) = match red {
        Reduction::None => (target.shape().to_vec(), losses),
        Reduction::Sum => (vec![], vec![losses.iter().sum()]),
        Reduction::Mean => (vec![], vec![losses.iter().sum::<f64>() / wsum]),
    };
    Tensor::from_vec(shape, v)
}

fn nll_eval(attrs: &Attrs, ins: &[&Tensor]) -> Result<Tensor> {
    let ty: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
    let refs: Vec<&TensorType> = ty.iter().collect();
    let out = loss_infer(attrs, &refs)?;
    let r = nll(
        attrs,
        &ins[0].to_f64_vec(),
        ins[0].shape(),
        ins[1],
        ins.get(2).copied(),
    )?;
    Ok(r.cast(out.dtype))
}

fn sce_eval(attrs: &Attrs, ins: &[&Tensor], n_out: usize) -> Result<Vec<Tensor>> {
    let ty: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
    let refs: Vec<&TensorType> = ty.iter().collect();
    let out = loss_infer(attrs, &refs)?;
    let x = ins[0];
    let shape = x.shape();
    let mut logp = x.to_f64_vec();
    apply_rows(
        Kind::LogSoftmax,
        &mut logp,
        (shape[0], shape[1], numel(&shape[2..])),
    );
    let loss = nll(attrs, &logp, shape, ins[1], ins.get(2).copied())?.cast(out.dtype);
    let mut outs = vec![loss];
    if n_out > 1 {
        outs.push(from_f64s(x.dtype(), shape.to_vec(), logp)?);
    }
    Ok(outs)
}

fn add_losses(r: &mut Registry) {
    r.add(
        "NegativeLogLikelihoodLoss",
        |attrs, ins, _| Ok(vec![loss_infer(attrs, ins)?]),
        |attrs, ins, _| Ok(vec![nll_eval(attrs, ins)?]),
    );
    r.add(
        "SoftmaxCrossEntropyLoss",
        |attrs, ins, n| {
            ensure!(n <= 2, "has 2 outputs, {n} requested");
            let loss = loss_infer(attrs, ins)?;
            let mut outs = vec![loss];
            if n > 1 {
                outs.push(ins[0].clone());
            }
            Ok(outs)
        },
        |attrs, ins, n| {
            ensure!(n <= 2, "has 2 outputs, {n} requested");
            sce_eval(attrs, ins, n)
        },
    );
}

pub fn register(r: &mut Registry) {
    add_softmax(r, "Softmax", Kind::Softmax);
    add_softmax(r, "LogSoftmax", Kind::LogSoftmax);
    add_softmax(r, "Hardmax", Kind::Hardmax);
    add_losses(r);
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
    fn coerce_2d_normalises_trailing_axes_together() {
        let x = Tensor::from_vec(vec![1, 2, 2], vec![0.0f32; 4]).unwrap();
        let a = Attrs::new()
            .with("axis", Attr::Int(1))
            .with("coerce_2d", Attr::Int(1));
        let y = run("Softmax", a, &[&x], 1);
        assert_eq!(y[0].as_slice::<f32>().unwrap(), &[0.25; 4]);
        let y = run("Softmax", Attrs::new(), &[&x], 1);
        assert_eq!(y[0].as_slice::<f32>().unwrap(), &[0.5; 4]);
    }

    #[test]
    fn nll_mean_divides_by_used_weights() {
        // logp [N=2, C=2]; targets 0 and 1 (ignored).
        let x = Tensor::from_vec(vec![2, 2], vec![-1.0f32, -2.0, -3.0, -4.0]).unwrap();
        let t = Tensor::from_i64s(&[0, 1]);
        let w = Tensor::from_vec(vec![2], vec![2.0f32, 5.0]).unwrap();
        let a = Attrs::new().with("ignore_index", Attr::Int(1));
        let y = run("NegativeLogLikelihoodLoss", a, &[&x, &t, &w], 1);
        assert_eq!(y[0].shape(), &[] as &[usize]);
        assert_eq!(y[0].as_slice::<f32>().unwrap(), &[1.0]);
    }

    #[test]
    fn nll_rejects_out_of_range_target() {
        let x = Tensor::from_vec(vec![1, 2], vec![-1.0f32, -2.0]).unwrap();
        let t = Tensor::from_i64s(&[2]);
        let op = crate::registry().get("NegativeLogLikelihoodLoss").unwrap();
        assert!(op.eval(&Attrs::new(), &[&x, &t], 1).is_err());
    }
}
