//! Recurrent-state sequence ops of ONNX opset 27 (Gated DeltaNet / Mamba
//! building blocks). Arithmetic is in f64; outputs take the input dtypes.
//!
//! - `LinearAttention`: inputs `query [B, T, Hq*dk]`, `key [B, T, Hkv*dk]`,
//!   `value [B, T, Hkv*dv]`, `past_state [B, Hkv, dk, dv]` (always present: the
//!   mapping passes zeros when ONNX omits it), then `decay` (`[B, T, Hkv]` or
//!   `[B, T, Hkv*dk]`, log-space) when `update_rule` is `gated`/`gated_delta`,
//!   then `beta` (`[B, T, Hkv]` or `[B, T, 1]`) when it is `delta`/`gated_delta`.
//!   Attributes `q_num_heads`, `kv_num_heads` (ints, required; Hq a multiple of
//!   Hkv), `update_rule` (`linear`, `gated`, `delta`, `gated_delta` default),
//!   `scale` (float, 0 = `1/sqrt(dk)`). Outputs `output [B, T, Hq*dv]` (query
//!   dtype) and `present_state` (past_state dtype). Per token: `S *= exp(g)`
//!   (gated); `v -= S^T k; v *= beta` (delta); `S += k ⊗ v`; `o = scale q^T S`.
//! - `CausalConvWithState`: inputs `input [B, C, L]`, `weight [C, 1, K]`,
//!   `bias [C]`, `past_state [B, C, K-1]` (all present: the mapping passes
//!   zeros for omitted ones); attribute `activation` (`none` default, `silu`,
//!   `swish`). Depthwise causal conv over `concat(past_state, input)`; outputs
//!   `output [B, C, L]` and `present_state` (the last K-1 positions).

use super::util::arity;
use crate::{ensure, op_err, Attrs, Registry, Result, Tensor, TensorType};

/// Shapes and options of a `LinearAttention` node.
struct La {
    b: usize,
    t: usize,
    hq: usize,
    hkv: usize,
    dk: usize,
    dv: usize,
    gating: bool,
    delta: bool,
    scale: f64,
    /// Decay per key dim (`[B, T, Hkv*dk]`) rather than per head.
    decay_per_dim: bool,
    /// Beta per head (`[B, T, Hkv]`) rather than shared (`[B, T, 1]`).
    beta_per_head: bool,
}

fn heads(a: &Attrs, name: &str) -> Result<usize> {
    let h = a.int(name)?;
    ensure!(h > 0, "{name} must be positive, got {h}");
    Ok(h as usize)
}

fn la_shape(a: &Attrs, ins: &[&TensorType]) -> Result<La> {
    let (hq, hkv) = (heads(a, "q_num_heads")?, heads(a, "kv_num_heads")?);
    ensure!(
        hq % hkv == 0,
        "q_num_heads {hq} is not a multiple of kv_num_heads {hkv}"
    );
    let (gating, delta) = match a.str_or("update_rule", "gated_delta")? {
        "linear" => (false, false),
        "gated" => (true, false),
        "delta" => (false, true),
        "gated_delta" => (true, true),
        u => return Err(op_err!("unknown update_rule {u}")),
    };
    arity(
        ins,
        4 + gating as usize + delta as usize,
        4 + gating as usize + delta as usize,
    )?;
    for (k, t) in ins.iter().enumerate() {
        ensure!(
            t.dtype.is_float(),
            "input {k} must be float, got {}",
            t.dtype
        );
    }
    let (q, k, v, s) = (ins[0], ins[1], ins[2], ins[3]);
    for (n, x) in [("query", q), ("key", k), ("value", v)] {
        ensure!(x.rank() == 3, "{n} must be [B, T, H*D], got {:?}", x.shape);
    }
    let (b, t) = (q.shape[0], q.shape[1]);
    ensure!(
        k.shape[..2] == [b, t] && v.shape[..2] == [b, t],
        "query, key and value must share [B, T]"
    );
    ensure!(
        q.shape[2] % hq == 0,
        "query last dim not divisible by q_num_heads"
    );
    ensure!(
        v.shape[2] % hkv == 0,
        "value last dim not divisible by kv_num_heads"
    );
    let (dk, dv) = (q.shape[2] / hq, v.shape[2] / hkv);
    ensure!(
        k.shape[2] == hkv * dk,
        "key last dim must be kv_num_heads*dk = {}",
        hkv * dk
    );
    ensure!(
        s.shape == [b, hkv, dk, dv],
        "past_state must be {:?}, got {:?}",
        [b, hkv, dk, dv],
        s.shape
    );
    let mut la = La {
        b,
        t,
        hq,
        hkv,
        dk,
        dv,
        gating,
        delta,
        scale: 0.0,
        decay_per_dim: false,
        beta_per_head: false,
    };
    let s = a.float_or("scale", 0.0)?;
    la.scale = if s == 0.0 {
        1.0 / (dk as f64).sqrt()
    } else {
        s
    };
    let mut next = 4;
    if gating {
        let g = ins[next];
        next += 1;
        ensure!(
            g.rank() == 3
                && g.shape[..2] == [b, t]
                && (g.shape[2] == hkv || g.shape[2] == hkv * dk),
            "decay must be [B, T, kv_num_heads] or [B, T, kv_num_heads*dk], got {:?}",
            g.shape
        );
        la.decay_per_dim = g.shape[2] == hkv * dk && hkv * dk != hkv;
    }
    if delta {
        let be = ins[next];
        ensure!(
            be.rank() == 3 && be.shape[..2] == [b, t] && (be.shape[2] == hkv || be.shape[2] == 1),
            "beta must be [B, T, kv_num_heads] or [B, T, 1], got {:?}",
            be.shape
        );
        la.beta_per_head = be.shape[2] == hkv;
    }
    Ok(la)
}

fn la_infer(a: &Attrs, ins: &[&TensorType], n: usize) -> Result<Vec<TensorType>> {
    let la = la_shape(a, ins)?;
    ensure!(
        (1..=2).contains(&n),
        "LinearAttention has 1 or 2 outputs, got {n}"
    );
    let out = TensorType::new(ins[0].dtype, vec![la.b, la.t, la.hq * la.dv]);
    Ok([out, ins[3].clone()].into_iter().take(n).collect())
}

/// Runs the recurrence of one batch element and kv head, writing `out`.
fn la_head(la: &La, x: &[Vec<f64>], bi: usize, h: usize, state: &mut [f64], out: &mut [f64]) {
    let (t_n, dk, dv, hkv) = (la.t, la.dk, la.dv, la.hkv);
    let group = la.hq / hkv;
    let (qd, kd, vd) = (la.hq * dk, hkv * dk, hkv * dv);
    for t in 0..t_n {
        let k = &x[1][(bi * t_n + t) * kd + h * dk..][..dk];
        let mut v: Vec<f64> = x[2][(bi * t_n + t) * vd + h * dv..][..dv].to_vec();
        let mut next = 4;
        if la.gating {
            let g = &x[next][(bi * t_n + t) * if la.decay_per_dim { kd } else { hkv }..];
            next += 1;
            for i in 0..dk {
                let e = if la.decay_per_dim {
                    g[h * dk + i]
                } else {
                    g[h]
                }
                .exp();
                state[i * dv..(i + 1) * dv].iter_mut().for_each(|s| *s *= e);
            }
        }
        if la.delta {
            let w = if la.beta_per_head { hkv } else { 1 };
            let beta = x[next][(bi * t_n + t) * w + if la.beta_per_head { h } else { 0 }];
            for (m, vm) in v.iter_mut().enumerate() {
                let r: f64 = (0..dk).map(|i| state[i * dv + m] * k[i]).sum();
                *vm = beta * (*vm - r);
            }
        }
        for i in 0..dk {
            for m in 0..dv {
                state[i * dv + m] += k[i] * v[m];
            }
        }
        for hq in h * group..(h + 1) * group {
            let q = &x[0][(bi * t_n + t) * qd + hq * dk..][..dk];
            let o = &mut out[(bi * t_n + t) * la.hq * dv + hq * dv..][..dv];
            for (m, om) in o.iter_mut().enumerate() {
                *om = la.scale * (0..dk).map(|i| q[i] * state[i * dv + m]).sum::<f64>();
            }
        }
    }
}

fn la_eval(a: &Attrs, ins: &[&Tensor], n: usize) -> Result<Vec<Tensor>> {
    let tys: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
    let refs: Vec<&TensorType> = tys.iter().collect();
    let out_tys = la_infer(a, &refs, n)?;
    let la = la_shape(a, &refs)?;
    let x: Vec<Vec<f64>> = ins.iter().map(|t| t.to_f64_vec()).collect();
    let mut state = x[3].clone();
    let mut out = vec![0.0; la.b * la.t * la.hq * la.dv];
    let sz = la.dk * la.dv;
    for bi in 0..la.b {
        for h in 0..la.hkv {
            let off = (bi * la.hkv + h) * sz;
            la_head(&la, &x, bi, h, &mut state[off..off + sz], &mut out);
        }
    }
    let outs = [out, state];
    out_tys
        .iter()
        .zip(outs)
        .map(|(ty, v)| Ok(Tensor::from_vec(ty.shape.clone(), v)?.cast(ty.dtype)))
        .collect()
}

fn silu_of(a: &Attrs) -> Result<bool> {
    match a.str_or("activation", "none")? {
        "none" => Ok(false),
        "silu" | "swish" => Ok(true),
        s => Err(op_err!("unknown activation {s}")),
    }
}

fn cc_infer(a: &Attrs, ins: &[&TensorType], n: usize) -> Result<Vec<TensorType>> {
    arity(ins, 4, 4)?;
    silu_of(a)?;
    let (x, w, bias, past) = (ins[0], ins[1], ins[2], ins[3]);
    ensure!(x.dtype.is_float(), "input must be float, got {}", x.dtype);
    ensure!(x.rank() == 3, "input must be [B, C, L], got {:?}", x.shape);
    let (b, c) = (x.shape[0], x.shape[1]);
    ensure!(
        w.rank() == 3 && w.shape[0] == c && w.shape[1] == 1 && w.shape[2] >= 1,
        "weight must be [C, 1, K], got {:?}",
        w.shape
    );
    let k = w.shape[2];
    ensure!(bias.shape == [c], "bias must be [C], got {:?}", bias.shape);
    ensure!(
        past.shape == [b, c, k - 1],
        "past_state must be {:?}, got {:?}",
        [b, c, k - 1],
        past.shape
    );
    for t in [w, bias, past] {
        ensure!(
            t.dtype == x.dtype,
            "inputs must share the input dtype {}",
            x.dtype
        );
    }
    ensure!(
        (1..=2).contains(&n),
        "CausalConvWithState has 1 or 2 outputs, got {n}"
    );
    Ok([x.clone(), past.clone()].into_iter().take(n).collect())
}

fn cc_eval(a: &Attrs, ins: &[&Tensor], n: usize) -> Result<Vec<Tensor>> {
    let tys: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
    let refs: Vec<&TensorType> = tys.iter().collect();
    let out_tys = cc_infer(a, &refs, n)?;
    let silu = silu_of(a)?;
    let (b, c, l) = (tys[0].shape[0], tys[0].shape[1], tys[0].shape[2]);
    let k = tys[1].shape[2];
    let (x, w, bias, past) = (
        ins[0].to_f64_vec(),
        ins[1].to_f64_vec(),
        ins[2].to_f64_vec(),
        ins[3].to_f64_vec(),
    );
    let p = k - 1 + l;
    let mut out = Vec::with_capacity(b * c * l);
    let mut present = Vec::with_capacity(b * c * (k - 1));
    for bc in 0..b * c {
        let ch = bc % c;
        let mut padded = past[bc * (k - 1)..(bc + 1) * (k - 1)].to_vec();
        padded.extend_from_slice(&x[bc * l..(bc + 1) * l]);
        for t in 0..l {
            let s: f64 = (0..k).map(|j| padded[t + j] * w[ch * k + j]).sum();
            out.push(s + bias[ch]);
        }
        present.extend_from_slice(&padded[p - (k - 1)..]);
    }
    let dt = tys[0].dtype;
    let mut y = Tensor::from_vec(vec![b, c, l], out)?.cast(dt);
    if silu {
        let v: Vec<f64> = y
            .to_f64_vec()
            .iter()
            .map(|&z| z / (1.0 + (-z).exp()))
            .collect();
        y = Tensor::from_vec(vec![b, c, l], v)?.cast(dt);
    }
    let st = Tensor::from_vec(vec![b, c, k - 1], present)?.cast(dt);
    Ok([y, st].into_iter().take(out_tys.len()).collect())
}

pub fn register(r: &mut Registry) {
    r.add("LinearAttention", la_infer, la_eval);
    r.add("CausalConvWithState", cc_infer, cc_eval);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causal_conv_carries_state() {
        let x = Tensor::from_vec(vec![1, 1, 3], vec![1.0f32, 2.0, 3.0]).unwrap();
        let w = Tensor::from_vec(vec![1, 1, 2], vec![10.0f32, 1.0]).unwrap();
        let b = Tensor::from_vec(vec![1], vec![0.5f32]).unwrap();
        let p = Tensor::from_vec(vec![1, 1, 1], vec![7.0f32]).unwrap();
        let r = cc_eval(&Attrs::new(), &[&x, &w, &b, &p], 2).unwrap();
        assert_eq!(r[0].to_f64_vec(), vec![71.5, 12.5, 23.5]);
        assert_eq!(r[1].to_f64_vec(), vec![3.0]);
    }

    #[test]
    fn linear_attention_single_step() {
        // One head, dk = dv = 1, linear rule: S = s0 + k v, o = q S / sqrt(1).
        let t = |v: f32| Tensor::from_vec(vec![1, 1, 1], vec![v]).unwrap();
        let s0 = Tensor::from_vec(vec![1, 1, 1, 1], vec![1.0f32]).unwrap();
        let a = Attrs::new()
            .with("q_num_heads", crate::Attr::Int(1))
            .with("kv_num_heads", crate::Attr::Int(1))
            .with("update_rule", crate::Attr::Str("linear".into()));
        let r = la_eval(&a, &[&t(2.0), &t(3.0), &t(4.0), &s0], 2).unwrap();
        assert_eq!(r[1].to_f64_vec(), vec![13.0]);
        assert_eq!(r[0].to_f64_vec(), vec![26.0]);
    }
}
