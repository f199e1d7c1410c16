//! Attention (opset 23) and RotaryEmbedding (a child of the misc family).
//! Both compute in f64 and follow the ONNX reference implementation.
//!
//! `Attention(Q, K, V[, attn_mask[, past_key, past_value[, nonpad_kv_seqlen]]])`: `Q` is
//! `[B, Hq, S, D]`, or `[B, S, Hq * D]` (3-D, needs `q_num_heads` and
//! `kv_num_heads`); likewise `K`, `V` with `Hkv` heads (GQA when `Hq` is a
//! multiple of `Hkv`). `attn_mask` is bool (false = masked) or additive,
//! broadcastable to `[B, Hq, S, T]` (`T` = past + new kv length); a last
//! dimension shorter than `T` is padded with masked entries. A rank-0 mask is
//! a plain additive bias. `nonpad_kv_seqlen` (`[B]`, integers) masks keys at
//! or past each batch entry's length. Attributes: `scale` (float, default `1/sqrt(D)`),
//! `is_causal` (int, 0), `q_num_heads`, `kv_num_heads` (int), `softcap`
//! (float, 0 = off), `qk_matmul_output_mode` (int 0..=3: raw / softcapped QK,
//! same, with bias, after softmax), `softmax_precision` (ignored: f64 is used).
//! Outputs: `Y`, `present_key`, `present_value` (`[B, Hkv, T, D]`),
//! `qk_matmul_output` (`[B, Hq, S, T]`).
//!
//! `RotaryEmbedding(X, cos_cache, sin_cache[, position_ids])`: `X` is
//! `[B, H, S, D]` or `[B, S, H * D]` (3-D needs `num_heads`). With
//! `position_ids` (`[B, S]`, integers) the caches are `[max_pos, R/2]`, else
//! `[B, S, R/2]`. Attributes: `interleaved` (int, 0), `rotary_embedding_dim`
//! (`R`, int, 0 = `D`), `num_heads` (int).

use crate::ops::util::{arity, broadcast_indices, broadcast_shapes};
use crate::{ensure, op_err, Attrs, DType, Registry, Result, Tensor, TensorType};

/// Shapes of one Attention call.
struct Dims {
    b: usize,
    hq: usize,
    hkv: usize,
    s: usize,
    past: usize,
    kvs: usize,
    d: usize,
    dv: usize,
    three_d: bool,
}

impl Dims {
    fn total(&self) -> usize {
        self.past + self.kvs
    }
}

/// Heads and head size of a 3-D or 4-D operand: (batch, heads, seq, head size).
fn split_heads(t: &TensorType, heads: Option<i64>, what: &str) -> Result<[usize; 4]> {
    match t.shape.as_slice() {
        &[b, h, s, d] => Ok([b, h, s, d]),
        &[b, s, hid] => {
            let h = heads.ok_or_else(|| op_err!("3-D {what} needs its num_heads attribute"))?;
            ensure!(
                h > 0 && hid % h as usize == 0,
                "{what} hidden size {hid} is not a multiple of {h} heads"
            );
            Ok([b, h as usize, s, hid / h as usize])
        }
        s => Err(op_err!("{what} must be 3-D or 4-D, got {s:?}")),
    }
}

fn dims(attrs: &Attrs, ins: &[&TensorType]) -> Result<Dims> {
    arity(ins, 3, 7)?;
    ensure!(ins.len() != 5, "past_key and past_value come together");
    let dt = ins[0].dtype;
    ensure!(dt.is_float(), "Attention needs float inputs, got {dt}");
    let (qh, kh) = (
        attrs.opt_int("q_num_heads")?,
        attrs.opt_int("kv_num_heads")?,
    );
    let q = split_heads(ins[0], qh, "Q")?;
    let k = split_heads(ins[1], kh, "K")?;
    let v = split_heads(ins[2], kh, "V")?;
    ensure!(
        ins[0].rank() == ins[1].rank() && ins[1].rank() == ins[2].rank(),
        "Q, K and V must have one rank"
    );
    ensure!(
        q[0] == k[0] && k[0] == v[0] && k[1] == v[1] && k[2] == v[2] && q[3] == k[3],
        "Q {:?}, K {:?}, V {:?} do not fit together",
        ins[0].shape,
        ins[1].shape,
        ins[2].shape
    );
    ensure!(
        k[1] > 0 && q[1] % k[1] == 0,
        "q heads ({}) must be a multiple of kv heads ({})",
        q[1],
        k[1]
    );
    let mut past = 0;
    if ins.len() >= 6 {
        let (pk, pv) = (&ins[4].shape, &ins[5].shape);
        ensure!(
            pk.len() == 4 && pv.len() == 4 && pk[2] == pv[2],
            "past_key {pk:?} / past_value {pv:?} must be 4-D with one length"
        );
        ensure!(
            pk[..2] == k[..2] && pk[3] == k[3] && pv[..2] == v[..2] && pv[3] == v[3],
            "past_key {pk:?} / past_value {pv:?} do not match K / V"
        );
        past = pk[2];
    }
    if let Some(p) = ins.get(6) {
        ensure!(
            p.dtype.is_int() && p.shape == [q[0]],
            "nonpad_kv_seqlen must be integers of shape [{}], got {p}",
            q[0]
        );
    }
    for (i, t) in ins.iter().enumerate().skip(1).take(5) {
        ensure!(
            t.dtype == dt || (i == 3 && t.dtype == DType::Bool),
            "Attention input {i} of type {} differs from Q's {dt}",
            t.dtype
        );
    }
    let d = Dims {
        b: q[0],
        hq: q[1],
        hkv: k[1],
        s: q[2],
        past,
        kvs: k[2],
        d: q[3],
        dv: v[3],
        three_d: ins[0].rank() == 3,
    };
    if let Some(m) = ins.get(3) {
        mask_shape(&m.shape, &d)?;
    }
    Ok(d)
}

/// The mask's shape after padding its last dimension to the total kv length.
fn mask_shape(m: &[usize], d: &Dims) -> Result<Vec<usize>> {
    let mut s = m.to_vec();
    if let Some(l) = s.last_mut() {
        ensure!(
            *l <= d.total(),
            "attn_mask {m:?} is longer than the kv sequence"
        );
        *l = d.total();
    }
    let full = [d.b, d.hq, d.s, d.total()];
    let bs = broadcast_shapes(&[&s, &full])?;
    ensure!(bs == full, "attn_mask {m:?} does not broadcast to {full:?}");
    Ok(s)
}

fn infer(attrs: &Attrs, ins: &[&TensorType], n: usize) -> Result<Vec<TensorType>> {
    let d = dims(attrs, ins)?;
    ensure!(n <= 4, "Attention has 4 outputs, {n} requested");
    let dt = ins[0].dtype;
    let y = if d.three_d {
        vec![d.b, d.s, d.hq * d.dv]
    } else {
        vec![d.b, d.hq, d.s, d.dv]
    };
    let all = [
        TensorType::new(dt, y),
        TensorType::new(dt, vec![d.b, d.hkv, d.total(), d.d]),
        TensorType::new(dt, vec![d.b, d.hkv, d.total(), d.dv]),
        TensorType::new(dt, vec![d.b, d.hq, d.s, d.total()]),
    ];
    Ok(all[..n.max(1)].to_vec())
}

/// An operand as `[B, H, S, D]` f64 data (3-D inputs split into heads).
fn as_4d(t: &Tensor, h: usize) -> Vec<f64> {
    let v = t.to_f64_vec();
    if t.rank() == 4 {
        return v;
    }
    let (b, s, hid) = (t.shape()[0], t.shape()[1], t.shape()[2]);
    let dh = hid / h;
    let mut out = vec![0.0; v.len()];
    for bi in 0..b {
        for si in 0..s {
            for hi in 0..h {
                for di in 0..dh {
                    out[((bi * h + hi) * s + si) * dh + di] = v[(bi * s + si) * hid + hi * dh + di];
                }
            }
        }
    }
    out
}

/// Concatenates past and new along the sequence axis: `[B, H, P + S, D]`.
fn concat_seq(
    past: Option<&[f64]>,
    new: &[f64],
    bh: usize,
    p: usize,
    s: usize,
    dh: usize,
) -> Vec<f64> {
    let mut out = Vec::with_capacity(bh * (p + s) * dh);
    for i in 0..bh {
        if let Some(pv) = past {
            out.extend_from_slice(&pv[i * p * dh..(i + 1) * p * dh]);
        }
        out.extend_from_slice(&new[i * s * dh..(i + 1) * s * dh]);
    }
    out
}

/// The additive bias `[B, Hq, S, T]` from the mask and causality.
fn bias(attrs: &Attrs, mask: Option<&Tensor>, d: &Dims) -> Result<Vec<f64>> {
    let t = d.total();
    let full = [d.b, d.hq, d.s, t];
    let n = full.iter().product();
    let mut out = vec![0.0; n];
    if let Some(m) = mask {
        let ms = mask_shape(m.shape(), d)?;
        let ml = m.shape().last().copied().unwrap_or(1);
        let is_bool = m.dtype() == DType::Bool;
        let v = m.to_f64_vec();
        let idx = broadcast_indices(&ms, &full);
        let last = ms.last().copied().unwrap_or(1);
        for (o, &i) in out.iter_mut().zip(&idx) {
            // Map the padded index back to the original mask.
            let (row, col) = (i / last.max(1), i % last.max(1));
            *o = if m.rank() > 0 && col >= ml {
                f64::NEG_INFINITY
            } else {
                let x = v[row * ml + col];
                match (is_bool, x != 0.0) {
                    (true, true) => 0.0,
                    (true, false) => f64::NEG_INFINITY,
                    (false, _) => x,
                }
            };
        }
    }
    if attrs.int_or("is_causal", 0)? != 0 {
        for (k, o) in out.iter_mut().enumerate() {
            let (i, j) = ((k / t) % d.s, k % t);
            if j > d.past + i {
                *o = f64::NEG_INFINITY;
            }
        }
    }
    Ok(out)
}

fn softmax_row(r: &mut [f64]) {
    let m = r.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    r.iter_mut().for_each(|x| *x = (*x - m).exp());
    let s: f64 = r.iter().sum();
    r.iter_mut().for_each(|x| *x /= s);
}

fn eval(attrs: &Attrs, ins: &[&Tensor], n: usize) -> Result<Vec<Tensor>> {
    let tys: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
    let out_tys = infer(attrs, &tys.iter().collect::<Vec<_>>(), n)?;
    let d = dims(attrs, &tys.iter().collect::<Vec<_>>())?;
    let (q, k, v) = (
        as_4d(ins[0], d.hq),
        as_4d(ins[1], d.hkv),
        as_4d(ins[2], d.hkv),
    );
    let bh = d.b * d.hkv;
    let past = |i: usize| ins.get(i).map(|t| t.to_f64_vec());
    let (pk, pv) = (past(4), past(5));
    let kk = concat_seq(pk.as_deref(), &k, bh, d.past, d.kvs, d.d);
    let vv = concat_seq(pv.as_deref(), &v, bh, d.past, d.kvs, d.dv);
    let t = d.total();
    let scale = attrs
        .opt_float("scale")?
        .unwrap_or(1.0 / (d.d as f64).sqrt());
    let softcap = attrs.float_or("softcap", 0.0)?;
    let mode = attrs.int_or("qk_matmul_output_mode", 0)?;
    ensure!(
        (0..=3).contains(&mode),
        "qk_matmul_output_mode must be 0..=3, got {mode}"
    );
    let mut bias = bias(attrs, ins.get(3).copied(), &d)?;
    if let Some(p) = ins.get(6) {
        // Keys at or past a batch entry's valid length are masked.
        let lens = p.to_i64_vec()?;
        for (k, o) in bias.iter_mut().enumerate() {
            let (b, j) = (k / (d.hq * d.s * t), k % t);
            if j as i64 >= lens[b] {
                *o = f64::NEG_INFINITY;
            }
        }
    }
    let group = d.hq / d.hkv;
    let mut y = vec![0.0; d.b * d.hq * d.s * d.dv];
    let mut qk_out = vec![0.0; d.b * d.hq * d.s * t];
    for b in 0..d.b {
        for h in 0..d.hq {
            let kvh = b * d.hkv + h / group;
            for i in 0..d.s {
                let qo = ((b * d.hq + h) * d.s + i) * d.d;
                let ro = ((b * d.hq + h) * d.s + i) * t;
                let mut row: Vec<f64> = (0..t)
                    .map(|j| {
                        let ko = (kvh * t + j) * d.d;
                        let dot: f64 = (0..d.d).map(|x| q[qo + x] * kk[ko + x]).sum();
                        let s = dot * scale;
                        if softcap > 0.0 {
                            softcap * (s / softcap).tanh()
                        } else {
                            s
                        }
                    })
                    .collect();
                if mode <= 1 {
                    qk_out[ro..ro + t].copy_from_slice(&row);
                }
                row.iter_mut()
                    .zip(&bias[ro..ro + t])
                    .for_each(|(x, b)| *x += b);
                if mode == 2 {
                    qk_out[ro..ro + t].copy_from_slice(&row);
                }
                softmax_row(&mut row);
                if mode == 3 {
                    qk_out[ro..ro + t].copy_from_slice(&row);
                }
                for x in 0..d.dv {
                    let acc: f64 = (0..t).map(|j| row[j] * vv[(kvh * t + j) * d.dv + x]).sum();
                    let yo = if d.three_d {
                        ((b * d.s + i) * d.hq + h) * d.dv + x
                    } else {
                        ((b * d.hq + h) * d.s + i) * d.dv + x
                    };
                    y[yo] = acc;
                }
            }
        }
    }
    let mut outs = Vec::new();
    for (i, data) in [y, kk, vv, qk_out]
        .into_iter()
        .enumerate()
        .take(out_tys.len())
    {
        let ty = &out_tys[i];
        outs.push(Tensor::from_vec(ty.shape.clone(), data)?.cast(ty.dtype));
    }
    Ok(outs)
}

/// RotaryEmbedding shapes: (batch, heads, seq, head size, rotary dim).
fn rope_dims(attrs: &Attrs, ins: &[&TensorType]) -> Result<[usize; 5]> {
    arity(ins, 3, 4)?;
    let x = ins[0];
    ensure!(
        x.dtype.is_float(),
        "RotaryEmbedding needs a float input, got {}",
        x.dtype
    );
    let [b, h, s, d] = match x.shape.as_slice() {
        &[b, h, s, d] => [b, h, s, d],
        &[b, s, hid] => {
            let nh = attrs.int_or("num_heads", 0)?;
            ensure!(
                nh > 0 && hid % nh as usize == 0,
                "3-D RotaryEmbedding input needs num_heads dividing {hid}, got {nh}"
            );
            [b, nh as usize, s, hid / nh as usize]
        }
        sh => {
            return Err(op_err!(
                "RotaryEmbedding input must be 3-D or 4-D, got {sh:?}"
            ))
        }
    };
    let rd = match attrs.int_or("rotary_embedding_dim", 0)? {
        0 => d,
        r => r as usize,
    };
    ensure!(
        rd % 2 == 0 && rd <= d,
        "rotary_embedding_dim {rd} must be even and <= {d}"
    );
    for c in &ins[1..3] {
        ensure!(
            c.dtype == x.dtype,
            "cos/sin caches must have the input's dtype"
        );
        let ok = if ins.len() == 4 {
            c.rank() == 2 && c.shape[1] == rd / 2
        } else {
            c.shape == [b, s, rd / 2]
        };
        ensure!(ok, "cos/sin cache of shape {:?} does not fit", c.shape);
    }
    if let Some(p) = ins.get(3) {
        ensure!(
            p.dtype.is_int() && p.shape == [b, s],
            "position_ids must be integers of shape [{b}, {s}], got {}",
            p
        );
    }
    Ok([b, h, s, d, rd])
}

fn rope(attrs: &Attrs, ins: &[&Tensor]) -> Result<Tensor> {
    let tys: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
    let [b, h, s, d, rd] = rope_dims(attrs, &tys.iter().collect::<Vec<_>>())?;
    let x = ins[0].to_f64_vec();
    let (cos, sin) = (ins[1].to_f64_vec(), ins[2].to_f64_vec());
    let pos = match ins.get(3) {
        Some(p) => Some(p.to_i64_vec()?),
        None => None,
    };
    let max_pos = ins[1].shape()[0];
    let inter = attrs.int_or("interleaved", 0)? != 0;
    let half = rd / 2;
    let four = ins[0].rank() == 4;
    let at = |bi: usize, hi: usize, si: usize, di: usize| {
        if four {
            ((bi * h + hi) * s + si) * d + di
        } else {
            ((bi * s + si) * h + hi) * d + di
        }
    };
    let mut y = x.clone();
    for bi in 0..b {
        for si in 0..s {
            let row = match &pos {
                Some(p) => {
                    let v = p[bi * s + si];
                    ensure!(
                        v >= 0 && (v as usize) < max_pos,
                        "position id {v} is out of range 0..{max_pos}"
                    );
                    v as usize
                }
                None => bi * s + si,
            };
            for hi in 0..h {
                for k in 0..half {
                    let (c, sn) = (cos[row * half + k], sin[row * half + k]);
                    let (i1, i2) = if inter {
                        (2 * k, 2 * k + 1)
                    } else {
                        (k, k + half)
                    };
                    let (x1, x2) = (x[at(bi, hi, si, i1)], x[at(bi, hi, si, i2)]);
                    y[at(bi, hi, si, i1)] = c * x1 - sn * x2;
                    y[at(bi, hi, si, i2)] = sn * x1 + c * x2;
                }
            }
        }
    }
    Ok(Tensor::from_vec(ins[0].shape().to_vec(), y)?.cast(ins[0].dtype()))
}

pub fn register(r: &mut Registry) {
    r.add("Attention", infer, eval);
    r.add(
        "RotaryEmbedding",
        |a, ins, _| {
            rope_dims(a, ins)?;
            Ok(vec![ins[0].clone()])
        },
        |a, ins, _| Ok(vec![rope(a, ins)?]),
    );
}
