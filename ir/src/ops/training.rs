//! Training ops of ONNX's `ai.onnx.preview.training` domain: one optimizer
//! step over `n` tensors at once. Inputs `R` (learning rate, scalar), `T`
//! (iteration count, scalar), then `n` tensors each of `X` (weights), `G`
//! (gradients) and the optimizer's states; outputs the `n` new `X`, then the
//! `n` new values of each state. `X`, `G` and the states of one tensor have
//! one shape; arithmetic is in f64, results in each output's input dtype.
//!
//! - `Momentum` (states `V`): `alpha`, `beta`, `norm_coefficient` (floats),
//!   `mode` (`standard` or `nesterov`).
//! - `Adagrad` (states `H`): `decay_factor` (0), `epsilon` (1e-6),
//!   `norm_coefficient` (0).
//! - `Adam` (states `V`, `H`): `alpha` (0.9), `beta` (0.999), `epsilon` (1e-6),
//!   `norm_coefficient` (0), `norm_coefficient_post` (0).

use crate::{ensure, op_err, Attrs, Registry, Result, Tensor, TensorType};

/// Per-element update: `(r, t, x, g, states) -> (x_new, new states)`.
type Step = Box<dyn Fn(f64, f64, f64, f64, &[f64]) -> (f64, Vec<f64>)>;

/// `n`, the number of tensors, from the input count and the number of states.
fn group_size(n_inputs: usize, states: usize) -> Result<usize> {
    let per = 2 + states;
    ensure!(
        n_inputs > 2 && (n_inputs - 2).is_multiple_of(per),
        "expected 2 + {per}*n inputs (R, T, X.., G.., states..), got {n_inputs}"
    );
    Ok((n_inputs - 2) / per)
}

/// Input index of output `j` (outputs skip the `G` group).
fn source(j: usize, n: usize) -> usize {
    let (grp, i) = (j / n, j % n);
    2 + if grp == 0 { i } else { (grp + 1) * n + i }
}

fn infer(ins: &[&TensorType], n_out: usize, states: usize) -> Result<Vec<TensorType>> {
    let n = group_size(ins.len(), states)?;
    ensure!(
        n_out == n * (1 + states),
        "expected {} outputs, got {n_out}",
        n * (1 + states)
    );
    for k in [0, 1] {
        ensure!(
            ins[k].numel() == 1 && ins[k].dtype.is_numeric(),
            "R and T must be numeric scalars, got {}",
            ins[k].dtype
        );
    }
    for i in 0..n {
        for g in 0..2 + states {
            let t = ins[2 + g * n + i];
            ensure!(
                t.dtype.is_float(),
                "tensor inputs must be float, got {}",
                t.dtype
            );
            ensure!(
                t.shape == ins[2 + i].shape,
                "input {} has shape {:?}, X has {:?}",
                2 + g * n + i,
                t.shape,
                ins[2 + i].shape
            );
        }
    }
    Ok((0..n_out).map(|j| ins[source(j, n)].clone()).collect())
}

fn eval(ins: &[&Tensor], n_out: usize, states: usize, step: &Step) -> Result<Vec<Tensor>> {
    let tys: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
    let refs: Vec<&TensorType> = tys.iter().collect();
    infer(&refs, n_out, states)?;
    let n = group_size(ins.len(), states)?;
    let (r, t) = (ins[0].scalar_f64()?, ins[1].scalar_f64()?);
    let mut outs: Vec<Option<Tensor>> = vec![None; n_out];
    for i in 0..n {
        let vals: Vec<Vec<f64>> = (0..2 + states)
            .map(|g| ins[2 + g * n + i].to_f64_vec())
            .collect();
        let len = vals[0].len();
        let mut res: Vec<Vec<f64>> = vec![Vec::with_capacity(len); 1 + states];
        for (e, (&x, &g)) in vals[0].iter().zip(&vals[1]).enumerate() {
            let st: Vec<f64> = vals[2..].iter().map(|s| s[e]).collect();
            let (x, ns) = step(r, t, x, g, &st);
            res[0].push(x);
            for (s, v) in ns.into_iter().enumerate() {
                res[1 + s].push(v);
            }
        }
        for (grp, v) in res.into_iter().enumerate() {
            let j = grp * n + i;
            let like = ins[source(j, n)];
            outs[j] = Some(Tensor::from_vec(like.shape().to_vec(), v)?.cast(like.dtype()));
        }
    }
    outs.into_iter()
        .map(|o| o.ok_or_else(|| op_err!("missing optimizer output")))
        .collect()
}

fn momentum(a: &Attrs) -> Result<Step> {
    let (alpha, beta, norm) = (
        a.float("alpha")?,
        a.float("beta")?,
        a.float("norm_coefficient")?,
    );
    let nesterov = match a.str_or("mode", "standard")? {
        "standard" => false,
        "nesterov" => true,
        m => {
            return Err(op_err!(
                "Momentum mode must be standard or nesterov, got {m}"
            ))
        }
    };
    Ok(Box::new(move |r, t, x, g, s| {
        let g = norm * x + g;
        let b = if t > 0.0 { beta } else { 1.0 };
        let v = alpha * s[0] + b * g;
        let x = if nesterov {
            x - r * (g + alpha * v)
        } else {
            x - r * v
        };
        (x, vec![v])
    }))
}

fn adagrad(a: &Attrs) -> Result<Step> {
    let decay = a.float_or("decay_factor", 0.0)?;
    let eps = a.float_or("epsilon", 1e-6)?;
    let norm = a.float_or("norm_coefficient", 0.0)?;
    Ok(Box::new(move |r, t, x, g, s| {
        let r = r / (1.0 + t * decay);
        let g = norm * x + g;
        let h = s[0] + g * g;
        (x - r * g / (h.sqrt() + eps), vec![h])
    }))
}

fn adam(a: &Attrs) -> Result<Step> {
    let alpha = a.float_or("alpha", 0.9)?;
    let beta = a.float_or("beta", 0.999)?;
    let eps = a.float_or("epsilon", 1e-6)?;
    let norm = a.float_or("norm_coefficient", 0.0)?;
    let post = a.float_or("norm_coefficient_post", 0.0)?;
    Ok(Box::new(move |r, t, x, g, s| {
        let g = norm * x + g;
        let v = alpha * s[0] + (1.0 - alpha) * g;
        let h = beta * s[1] + (1.0 - beta) * g * g;
        let r = if t > 0.0 {
            r * (1.0 - beta.powf(t)).sqrt() / (1.0 - alpha.powf(t))
        } else {
            r
        };
        let x = (1.0 - post) * (x - r * v / (h.sqrt() + eps));
        (x, vec![v, h])
    }))
}

fn add(r: &mut Registry, name: &str, states: usize, rule: fn(&Attrs) -> Result<Step>) {
    r.add(
        name,
        move |a, ins, n| {
            let _ = rule(a)?;
            infer(ins, n, states)
        },
        move |a, ins, n| eval(ins, n, states, &rule(a)?),
    );
}

pub fn register(r: &mut Registry) {
    add(r, "Momentum", 1, momentum);
    add(r, "Adagrad", 1, adagrad);
    add(r, "Adam", 2, adam);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_skip_the_gradient_group() {
        // n = 2, Adam: inputs R T X1 X2 G1 G2 V1 V2 H1 H2.
        assert_eq!(source(0, 2), 2);
        assert_eq!(source(1, 2), 3);
        assert_eq!(source(2, 2), 6);
        assert_eq!(source(5, 2), 9);
    }

    #[test]
    fn adagrad_step() {
        let a = Attrs::new();
        let step = adagrad(&a).unwrap();
        let (x, h) = step(0.1, 0.0, 1.0, 2.0, &[0.0]);
        assert!((h[0] - 4.0).abs() < 1e-12);
        assert!((x - (1.0 - 0.1 * 2.0 / (2.0 + 1e-6))).abs() < 1e-12);
    }
}
