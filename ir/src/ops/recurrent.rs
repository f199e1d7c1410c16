//! Recurrent layers: RNN, GRU, LSTM (ONNX semantics, computed in f64).
//!
//! Inputs (trailing ones may be omitted; omitted means zeros):
//! - `RNN(X, W, R[, B[, initial_h]])`
//! - `GRU(X, W, R[, B[, initial_h]])`
//! - `LSTM(X, W, R[, B[, initial_h[, initial_c[, P]]]])`
//!
//! `X` is `[seq, batch, input]` (`layout` 0) or `[batch, seq, input]`
//! (`layout` 1). Outputs `Y` (`[seq, dirs, batch, hidden]`, or `[batch, seq,
//! dirs, hidden]`), `Y_h` and (LSTM) `Y_c` (`[dirs, batch, hidden]`, or
//! `[batch, dirs, hidden]`); a node may ask for fewer outputs.
//!
//! Attributes: `hidden_size` (int; checked against `R`), `direction`
//! (`forward` | `reverse` | `bidirectional`), `layout` (int, 0),
//! `activations` (strings; defaults Tanh for RNN, Sigmoid,Tanh for GRU,
//! Sigmoid,Tanh,Tanh for LSTM, per direction), `activation_alpha`,
//! `activation_beta` (floats, consumed in order by the activations that take
//! parameters), `clip` (float, optional: gate pre-activations clipped to
//! `[-clip, clip]`), `sequence_lens` (ints, optional, one per batch entry:
//! steps past a sequence's length give zeros in `Y` and leave the state),
//! `linear_before_reset` (GRU, int 0), `input_forget` (LSTM, int 0).

use super::util::arity;
use crate::{ensure, op_err, Attrs, Registry, Result, Tensor, TensorType};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Rnn,
    Gru,
    Lstm,
}

impl Kind {
    fn gates(self) -> usize {
        match self {
            Kind::Rnn => 1,
            Kind::Gru => 3,
            Kind::Lstm => 4,
        }
    }
    fn max_inputs(self) -> usize {
        if self == Kind::Lstm {
            7
        } else {
            5
        }
    }
    fn outputs(self) -> usize {
        if self == Kind::Lstm {
            3
        } else {
            2
        }
    }
    fn default_acts(self) -> &'static [&'static str] {
        match self {
            Kind::Rnn => &["Tanh"],
            Kind::Gru => &["Sigmoid", "Tanh"],
            Kind::Lstm => &["Sigmoid", "Tanh", "Tanh"],
        }
    }
}

/// An activation function with its parameters.
#[derive(Clone, Debug)]
struct Act {
    name: String,
    alpha: f64,
    beta: f64,
}

impl Act {
    fn apply(&self, x: f64) -> f64 {
        let (a, b) = (self.alpha, self.beta);
        match self.name.to_ascii_lowercase().as_str() {
            "relu" => x.max(0.0),
            "tanh" => x.tanh(),
            "sigmoid" => 1.0 / (1.0 + (-x).exp()),
            "affine" => a * x + b,
            "leakyrelu" => {
                if x >= 0.0 {
                    x
                } else {
                    a * x
                }
            }
            "thresholdedrelu" => {
                if x > a {
                    x
                } else {
                    0.0
                }
            }
            "scaledtanh" => a * (b * x).tanh(),
            "hardsigmoid" => (a * x + b).clamp(0.0, 1.0),
            "elu" => {
                if x >= 0.0 {
                    x
                } else {
                    a * (x.exp() - 1.0)
                }
            }
            "softsign" => x / (1.0 + x.abs()),
            _ => (1.0 + x.exp()).ln(), // softplus (names are checked in `acts`)
        }
    }
}

/// Default (alpha, beta) of an activation and how many of them it takes.
fn act_params(name: &str) -> Result<(f64, f64, usize)> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "relu" | "tanh" | "sigmoid" | "softsign" | "softplus" => (0.0, 0.0, 0),
        "affine" => (1.0, 0.0, 2),
        "leakyrelu" => (0.01, 0.0, 1),
        "thresholdedrelu" => (1.0, 0.0, 1),
        "scaledtanh" => (1.0, 1.0, 2),
        "hardsigmoid" => (0.2, 0.5, 2),
        "elu" => (1.0, 0.0, 1),
        _ => return Err(op_err!("unknown recurrent activation `{name}`")),
    })
}

/// The activations of every direction (`per_dir` functions each).
fn acts(attrs: &Attrs, kind: Kind, dirs: usize) -> Result<Vec<Act>> {
    let names: Vec<String> = match attrs.get("activations") {
        Some(crate::Attr::Strs(v)) => v.clone(),
        Some(a) => {
            return Err(op_err!(
                "attribute `activations` must be strings, got {a:?}"
            ))
        }
        None => (0..dirs)
            .flat_map(|_| kind.default_acts().iter().map(|s| s.to_string()))
            .collect(),
    };
    let per = kind.default_acts().len();
    ensure!(
        names.len() == per * dirs,
        "expected {} activations, got {}",
        per * dirs,
        names.len()
    );
    let alphas = attrs.opt_floats("activation_alpha")?.unwrap_or_default();
    let betas = attrs.opt_floats("activation_beta")?.unwrap_or_default();
    let (mut ia, mut ib) = (0, 0);
    let mut out = Vec::new();
    for n in names {
        let (mut alpha, mut beta, k) = act_params(&n)?;
        if k >= 1 {
            if let Some(&v) = alphas.get(ia) {
                alpha = v;
            }
            ia += 1;
        }
        if k >= 2 {
            if let Some(&v) = betas.get(ib) {
                beta = v;
            }
            ib += 1;
        }
        out.push(Act {
            name: n,
            alpha,
            beta,
        });
    }
    Ok(out)
}

/// Static configuration read from the attributes and input shapes.
struct Cfg {
    kind: Kind,
    seq: usize,
    batch: usize,
    input: usize,
    hidden: usize,
    dirs: usize,
    reverse_only: bool,
    layout: usize,
}

fn cfg(kind: Kind, attrs: &Attrs, ins: &[&TensorType]) -> Result<Cfg> {
    arity(ins, 3, kind.max_inputs())?;
    let dt = ins[0].dtype;
    ensure!(dt.is_float(), "recurrent ops need float inputs, got {dt}");
    for t in ins {
        ensure!(
            t.dtype == dt,
            "inputs must share one dtype ({dt}), got {}",
            t.dtype
        );
    }
    let layout = attrs.int_or("layout", 0)?;
    ensure!(
        layout == 0 || layout == 1,
        "layout must be 0 or 1, got {layout}"
    );
    let (x, w, r) = (&ins[0].shape, &ins[1].shape, &ins[2].shape);
    ensure!(x.len() == 3, "X must be 3-D, got {:?}", x);
    let (seq, batch) = if layout == 0 {
        (x[0], x[1])
    } else {
        (x[1], x[0])
    };
    let (dirs, reverse_only) = match attrs.str_or("direction", "forward")? {
        "forward" => (1, false),
        "reverse" => (1, true),
        "bidirectional" => (2, false),
        d => return Err(op_err!("unknown direction `{d}`")),
    };
    ensure!(r.len() == 3, "R must be 3-D, got {r:?}");
    let hidden = r[2];
    if let Some(h) = attrs.opt_int("hidden_size")? {
        ensure!(
            h as usize == hidden,
            "hidden_size {h} does not match R {r:?}"
        );
    }
    let g = kind.gates();
    ensure!(
        *w == [dirs, g * hidden, x[2]] && *r == [dirs, g * hidden, hidden],
        "W {w:?} / R {r:?} do not match X {x:?}, {dirs} direction(s), hidden {hidden}"
    );
    let state = if layout == 0 {
        vec![dirs, batch, hidden]
    } else {
        vec![batch, dirs, hidden]
    };
    let want: [Vec<usize>; 4] = [
        vec![dirs, 2 * g * hidden],
        state.clone(),
        state,
        vec![dirs, 3 * hidden],
    ];
    for (k, t) in ins.iter().enumerate().skip(3) {
        ensure!(
            t.shape == want[k - 3],
            "input {k} has shape {:?}, expected {:?}",
            t.shape,
            want[k - 3]
        );
    }
    if let Some(l) = attrs.opt_ints("sequence_lens")? {
        ensure!(
            l.len() == batch && l.iter().all(|&v| v >= 0 && v as usize <= seq),
            "sequence_lens {l:?} must hold {batch} lengths in 0..={seq}"
        );
    }
    Ok(Cfg {
        kind,
        seq,
        batch,
        input: x[2],
        hidden,
        dirs,
        reverse_only,
        layout: layout as usize,
    })
}

fn infer(kind: Kind, attrs: &Attrs, ins: &[&TensorType], n: usize) -> Result<Vec<TensorType>> {
    let c = cfg(kind, attrs, ins)?;
    ensure!(
        n <= kind.outputs(),
        "{kind:?} has at most {} outputs, {n} requested",
        kind.outputs()
    );
    let (y, state) = if c.layout == 0 {
        (
            vec![c.seq, c.dirs, c.batch, c.hidden],
            vec![c.dirs, c.batch, c.hidden],
        )
    } else {
        (
            vec![c.batch, c.seq, c.dirs, c.hidden],
            vec![c.batch, c.dirs, c.hidden],
        )
    };
    let d = ins[0].dtype;
    let all = [
        TensorType::new(d, y),
        TensorType::new(d, state.clone()),
        TensorType::new(d, state),
    ];
    Ok(all[..n.max(1)].to_vec())
}

/// `out[i] += sum_j m[(row0 + i) * cols + j] * v[j]` for `rows` rows.
fn matvec(m: &[f64], row0: usize, rows: usize, cols: usize, v: &[f64], out: &mut [f64]) {
    for i in 0..rows {
        let r = &m[(row0 + i) * cols..(row0 + i + 1) * cols];
        out[i] += r.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
    }
}

/// Per-direction parameters, as f64.
struct Params<'a> {
    w: &'a [f64],
    r: &'a [f64],
    b: &'a [f64],
    p: &'a [f64],
    acts: &'a [Act],
    clip: Option<f64>,
    lbr: bool,
    input_forget: bool,
}

impl Params<'_> {
    fn clip(&self, v: f64) -> f64 {
        match self.clip {
            Some(c) => v.clamp(-c, c),
            None => v,
        }
    }
    /// Pre-activation of gate `g`: `W_g x + R_g h + Wb_g + Rb_g`.
    fn gate(&self, c: &Cfg, g: usize, x: &[f64], h: &[f64]) -> Vec<f64> {
        let (hs, ng) = (c.hidden, c.kind.gates());
        let mut o: Vec<f64> = (0..hs)
            .map(|i| self.b[g * hs + i] + self.b[(ng + g) * hs + i])
            .collect();
        matvec(self.w, g * hs, hs, c.input, x, &mut o);
        matvec(self.r, g * hs, hs, hs, h, &mut o);
        o
    }
    /// One step for one batch entry: updates `h` (and `cell` for LSTM).
    fn step(&self, c: &Cfg, x: &[f64], h: &mut [f64], cell: &mut [f64]) {
        let hs = c.hidden;
        match c.kind {
            Kind::Rnn => {
                let a = self.gate(c, 0, x, h);
                for i in 0..hs {
                    h[i] = self.acts[0].apply(self.clip(a[i]));
                }
            }
            Kind::Gru => {
                let (f, g) = (&self.acts[0], &self.acts[1]);
                let z: Vec<f64> = self
                    .gate(c, 0, x, h)
                    .iter()
                    .map(|&v| f.apply(self.clip(v)))
                    .collect();
                let r: Vec<f64> = self
                    .gate(c, 1, x, h)
                    .iter()
                    .map(|&v| f.apply(self.clip(v)))
                    .collect();
                let mut a: Vec<f64> = (0..hs).map(|i| self.b[2 * hs + i]).collect();
                matvec(self.w, 2 * hs, hs, c.input, x, &mut a);
                let rb = &self.b[5 * hs..6 * hs];
                if self.lbr {
                    let mut rh = rb.to_vec();
                    matvec(self.r, 2 * hs, hs, hs, h, &mut rh);
                    (0..hs).for_each(|i| a[i] += r[i] * rh[i]);
                } else {
                    let rh: Vec<f64> = (0..hs).map(|i| r[i] * h[i]).collect();
                    matvec(self.r, 2 * hs, hs, hs, &rh, &mut a);
                    (0..hs).for_each(|i| a[i] += rb[i]);
                }
                for i in 0..hs {
                    let ht = g.apply(self.clip(a[i]));
                    h[i] = (1.0 - z[i]) * ht + z[i] * h[i];
                }
            }
            Kind::Lstm => {
                let (f, g, hh) = (&self.acts[0], &self.acts[1], &self.acts[2]);
                let (gi, go, gf, gc) = (
                    self.gate(c, 0, x, h),
                    self.gate(c, 1, x, h),
                    self.gate(c, 2, x, h),
                    self.gate(c, 3, x, h),
                );
                let p = self.p;
                for k in 0..hs {
                    let i = f.apply(self.clip(gi[k] + p[k] * cell[k]));
                    let fg = if self.input_forget {
                        1.0 - i
                    } else {
                        f.apply(self.clip(gf[k] + p[2 * hs + k] * cell[k]))
                    };
                    let ct = g.apply(self.clip(gc[k]));
                    cell[k] = fg * cell[k] + i * ct;
                    let o = f.apply(self.clip(go[k] + p[hs + k] * cell[k]));
                    h[k] = o * hh.apply(cell[k]);
                }
            }
        }
    }
}

/// Reads an optional input as f64, zeros when absent.
fn opt_f64(ins: &[&Tensor], k: usize, n: usize) -> Vec<f64> {
    ins.get(k).map_or_else(|| vec![0.0; n], |t| t.to_f64_vec())
}

fn eval(kind: Kind, attrs: &Attrs, ins: &[&Tensor], n: usize) -> Result<Vec<Tensor>> {
    let tys: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
    let out_tys = infer(kind, attrs, &tys.iter().collect::<Vec<_>>(), n)?;
    let c = cfg(kind, attrs, &tys.iter().collect::<Vec<_>>())?;
    let (s, bt, hs, nd, ni) = (c.seq, c.batch, c.hidden, c.dirs, c.input);
    let g = kind.gates();
    let acts = acts(attrs, kind, nd)?;
    let per = kind.default_acts().len();
    let lens: Vec<usize> = match attrs.opt_ints("sequence_lens")? {
        Some(l) => l.iter().map(|&v| v as usize).collect(),
        None => vec![s; bt],
    };
    let x = ins[0].to_f64_vec();
    let (w, r) = (ins[1].to_f64_vec(), ins[2].to_f64_vec());
    let b = opt_f64(ins, 3, nd * 2 * g * hs);
    let h0 = opt_f64(ins, 4, nd * bt * hs);
    let c0 = opt_f64(ins, 5, nd * bt * hs);
    let p = opt_f64(ins, 6, nd * 3 * hs);
    // Index helpers for the two layouts.
    let xi = |t: usize, bi: usize| {
        if c.layout == 0 {
            (t * bt + bi) * ni
        } else {
            (bi * s + t) * ni
        }
    };
    let si = |d: usize, bi: usize| {
        if c.layout == 0 {
            (d * bt + bi) * hs
        } else {
            (bi * nd + d) * hs
        }
    };
    let yi = |t: usize, d: usize, bi: usize| {
        if c.layout == 0 {
            ((t * nd + d) * bt + bi) * hs
        } else {
            ((bi * s + t) * nd + d) * hs
        }
    };
    let mut y = vec![0.0; s * nd * bt * hs];
    let mut yh = vec![0.0; nd * bt * hs];
    let mut yc = vec![0.0; nd * bt * hs];
    for d in 0..nd {
        let prm = Params {
            w: &w[d * g * hs * ni..(d + 1) * g * hs * ni],
            r: &r[d * g * hs * hs..(d + 1) * g * hs * hs],
            b: &b[d * 2 * g * hs..(d + 1) * 2 * g * hs],
            p: &p[d * 3 * hs..(d + 1) * 3 * hs],
            acts: &acts[d * per..(d + 1) * per],
            clip: attrs.opt_float("clip")?,
            lbr: attrs.int_or("linear_before_reset", 0)? != 0,
            input_forget: attrs.int_or("input_forget", 0)? != 0,
        };
        let reverse = d == 1 || c.reverse_only;
        for (bi, &len) in lens.iter().enumerate() {
            let o = si(d, bi);
            let mut h = h0[o..o + hs].to_vec();
            let mut cell = c0[o..o + hs].to_vec();
            for step in 0..len {
                let t = if reverse { len - 1 - step } else { step };
                prm.step(&c, &x[xi(t, bi)..xi(t, bi) + ni], &mut h, &mut cell);
                let yo = yi(t, d, bi);
                y[yo..yo + hs].copy_from_slice(&h);
            }
            yh[o..o + hs].copy_from_slice(&h);
            yc[o..o + hs].copy_from_slice(&cell);
        }
    }
    let mut outs = Vec::new();
    for (k, v) in [y, yh, yc].into_iter().enumerate().take(out_tys.len()) {
        let t = &out_tys[k];
        outs.push(Tensor::from_vec(t.shape.clone(), v)?.cast(t.dtype));
    }
    Ok(outs)
}

pub fn register(r: &mut Registry) {
    for (name, kind) in [("RNN", Kind::Rnn), ("GRU", Kind::Gru), ("LSTM", Kind::Lstm)] {
        r.add(
            name,
            move |a, ins, n| infer(kind, a, ins, n),
            move |a, ins, n| eval(kind, a, ins, n),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-unit RNN with W = R = 1 and no bias: h_t = tanh(x_t + h_{t-1}).
    #[test]
    fn rnn_reverse_and_sequence_lens() {
        let x = Tensor::from_vec(vec![3, 2, 1], vec![1f32, 1., 2., 2., 3., 3.]).unwrap();
        let w = Tensor::from_vec(vec![1, 1, 1], vec![1f32]).unwrap();
        let attrs = Attrs::new()
            .with("direction", crate::Attr::Str("reverse".into()))
            .with("sequence_lens", crate::Attr::Ints(vec![3, 1]));
        let out = eval(Kind::Rnn, &attrs, &[&x, &w, &w], 2).unwrap();
        let y = out[0].as_slice::<f32>().unwrap();
        let h3 = 3f64.tanh();
        let h2 = (2.0 + h3).tanh();
        let h1 = (1.0 + h2).tanh();
        // Batch 0 runs t = 2, 1, 0; batch 1 runs only t = 0.
        assert!((y[0] as f64 - h1).abs() < 1e-6);
        assert!((y[4] as f64 - h3).abs() < 1e-6);
        assert!((y[1] as f64 - 1f64.tanh()).abs() < 1e-6);
        assert_eq!(y[3], 0.0); // batch 1, t = 1 is past its length
        assert_eq!(out[1].as_slice::<f32>().unwrap()[1], y[1]);
    }
}
