//! A small multi-layer perceptron on ndarray: a shared trunk of dense ReLU
//! layers and one linear head (a score) per target, trained with Adam.
//!
//! Initialisation is He-uniform from a `ChaCha8Rng` seed, so a seed gives
//! the same model on every machine. Gradients are computed by hand (the
//! model is two matrix products and a ReLU per layer); [`Mlp::step`] takes
//! the gradient of the loss with respect to the scores and updates the
//! trunk and the heads at their own learning rates. [`MlpState`] is the
//! serde form (weights only: a loaded model restarts Adam's moments).

use ndarray::{Array1, Array2, Axis, Zip};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Adam's settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Adam {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Decoupled weight decay (AdamW), per step, relative to the rate.
    pub weight_decay: f32,
}

impl Default for Adam {
    fn default() -> Self {
        Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-4,
        }
    }
}

/// A weight matrix with its Adam moments.
#[derive(Clone, Debug)]
struct Param {
    value: Array2<f32>,
    m: Array2<f32>,
    v: Array2<f32>,
    t: i32,
}

impl Param {
    fn new(value: Array2<f32>) -> Param {
        let z = Array2::zeros(value.raw_dim());
        Param {
            m: z.clone(),
            v: z,
            value,
            t: 0,
        }
    }

    fn step(&mut self, g: &Array2<f32>, lr: f32, a: &Adam) {
        if lr == 0.0 {
            return;
        }
        self.t += 1;
        let c1 = 1.0 - a.beta1.powi(self.t);
        let c2 = 1.0 - a.beta2.powi(self.t);
        Zip::from(&mut self.value)
            .and(&mut self.m)
            .and(&mut self.v)
            .and(g)
            .for_each(|w, m, v, &g| {
                *m = a.beta1 * *m + (1.0 - a.beta1) * g;
                *v = a.beta2 * *v + (1.0 - a.beta2) * g * g;
                let upd = (*m / c1) / ((*v / c2).sqrt() + a.eps);
                *w -= lr * (upd + a.weight_decay * *w);
            });
    }
}

/// A dense layer `x W + b` (`W`: inputs x outputs, `b`: 1 x outputs).
#[derive(Clone, Debug)]
struct Dense {
    w: Param,
    b: Param,
}

impl Dense {
    fn new(inputs: usize, outputs: usize, rng: &mut ChaCha8Rng) -> Dense {
        let lim = (6.0 / inputs.max(1) as f32).sqrt();
        let w = Array2::from_shape_fn((inputs, outputs), |_| rng.random_range(-lim..lim));
        Dense {
            w: Param::new(w),
            b: Param::new(Array2::zeros((1, outputs))),
        }
    }

    fn forward(&self, x: &Array2<f32>) -> Array2<f32> {
        x.dot(&self.w.value) + &self.b.value
    }
}

/// Gives the loss and its gradient with respect to the scores.
pub type LossGrad<'a> = dyn FnMut(&Array1<f32>) -> (f32, Array1<f32>) + 'a;

/// The trunk and the heads.
#[derive(Clone, Debug)]
pub struct Mlp {
    trunk: Vec<Dense>,
    head_names: Vec<String>,
    heads: Vec<Dense>,
    pub adam: Adam,
}

/// Learning rates of one step.
#[derive(Clone, Copy, Debug)]
pub struct Rates {
    pub trunk: f32,
    pub head: f32,
}

impl Mlp {
    /// A model taking `inputs` values through hidden layers of `hidden`
    /// widths, with no heads yet.
    pub fn new(inputs: usize, hidden: &[usize], seed: u64) -> Mlp {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut trunk = vec![];
        let mut prev = inputs;
        for &h in hidden {
            trunk.push(Dense::new(prev, h, &mut rng));
            prev = h;
        }
        Mlp {
            trunk,
            head_names: vec![],
            heads: vec![],
            adam: Adam::default(),
        }
    }

    /// Inputs the model takes.
    pub fn inputs(&self) -> usize {
        self.trunk.first().map_or(0, |d| d.w.value.nrows())
    }

    fn width(&self) -> usize {
        self.trunk
            .last()
            .map_or(self.inputs(), |d| d.w.value.ncols())
    }

    /// The index of `name`'s head.
    pub fn head(&self, name: &str) -> Option<usize> {
        self.head_names.iter().position(|n| n == name)
    }

    /// Head names, in creation order.
    pub fn head_names(&self) -> &[String] {
        &self.head_names
    }

    /// Adds a head (or returns the existing one) initialised from `seed`.
    pub fn add_head(&mut self, name: &str, seed: u64) -> usize {
        if let Some(k) = self.head(name) {
            return k;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut d = Dense::new(self.width(), 1, &mut rng);
        d.w.value.mapv_inplace(|x| x * 0.5);
        self.head_names.push(name.to_string());
        self.heads.push(d);
        self.heads.len() - 1
    }

    /// Adds (or replaces) head `name` as the weighted mean of existing
    /// heads (`weights` per head index; they are normalised).
    pub fn add_head_from(&mut self, name: &str, weights: &[f32]) -> usize {
        let width = self.width();
        let mut w = Array2::zeros((width, 1));
        let mut b = Array2::zeros((1, 1));
        let total: f32 = weights.iter().sum();
        for (h, &x) in self.heads.iter().zip(weights) {
            let x = if total > 0.0 { x / total } else { 0.0 };
            w.scaled_add(x, &h.w.value);
            b.scaled_add(x, &h.b.value);
        }
        let d = Dense {
            w: Param::new(w),
            b: Param::new(b),
        };
        match self.head(name) {
            Some(k) => {
                self.heads[k] = d;
                k
            }
            None => {
                self.head_names.push(name.to_string());
                self.heads.push(d);
                self.heads.len() - 1
            }
        }
    }

    /// The activations of every trunk layer (`acts[0]` is `x`).
    fn trunk_forward(&self, x: Array2<f32>) -> Vec<Array2<f32>> {
        let mut acts = vec![x];
        for d in &self.trunk {
            let z = d.forward(acts.last().expect("input is pushed first"));
            acts.push(z.mapv(|v| v.max(0.0)));
        }
        acts
    }

    /// Scores of the rows of `x`, each by the head `heads[row]`
    /// (indices from [`Mlp::head`]).
    pub fn predict(&self, x: Array2<f32>, heads: &[usize]) -> Array1<f32> {
        let acts = self.trunk_forward(x);
        self.scores(acts.last().expect("input is pushed first"), heads)
    }

    fn scores(&self, h: &Array2<f32>, heads: &[usize]) -> Array1<f32> {
        Array1::from_iter(h.outer_iter().zip(heads).map(|(row, &k)| {
            let d = &self.heads[k];
            row.dot(&d.w.value.column(0)) + d.b.value[[0, 0]]
        }))
    }

    /// One training step: scores the rows of `x`, asks `loss_grad` for
    /// the gradient of the loss with respect to them, and updates the
    /// weights. Returns the loss `loss_grad` reported.
    pub fn step(
        &mut self,
        x: Array2<f32>,
        heads: &[usize],
        rates: Rates,
        loss_grad: &mut LossGrad,
    ) -> f32 {
        let acts = self.trunk_forward(x);
        let h = acts.last().expect("input is pushed first");
        let s = self.scores(h, heads);
        let (loss, g) = loss_grad(&s);
        // Heads: dW = sum g_i h_i over the rows of each head; dH_i = g_i w.
        let mut dh = Array2::zeros(h.raw_dim());
        let mut gw = vec![Array2::<f32>::zeros((h.ncols(), 1)); self.heads.len()];
        let mut gb = vec![0.0f32; self.heads.len()];
        for (i, &k) in heads.iter().enumerate() {
            let gi = g[i];
            if gi == 0.0 {
                continue;
            }
            gw[k].column_mut(0).scaled_add(gi, &h.row(i));
            gb[k] += gi;
            dh.row_mut(i)
                .scaled_add(gi, &self.heads[k].w.value.column(0));
        }
        let adam = self.adam;
        for (k, d) in self.heads.iter_mut().enumerate() {
            if heads.contains(&k) {
                d.w.step(&gw[k], rates.head, &adam);
                d.b.step(&Array2::from_elem((1, 1), gb[k]), rates.head, &adam);
            }
        }
        // Trunk, last layer first: dZ = dA * [A > 0].
        for l in (0..self.trunk.len()).rev() {
            let mut dz = dh;
            Zip::from(&mut dz)
                .and(&acts[l + 1])
                .for_each(|d, &a| *d = if a > 0.0 { *d } else { 0.0 });
            let gw = acts[l].t().dot(&dz);
            let gb = dz.sum_axis(Axis(0)).insert_axis(Axis(0));
            dh = dz.dot(&self.trunk[l].w.value.t());
            self.trunk[l].w.step(&gw, rates.trunk, &adam);
            self.trunk[l].b.step(&gb, rates.trunk, &adam);
        }
        loss
    }

    /// The serde form.
    pub fn state(&self) -> MlpState {
        let dense = |d: &Dense| DenseState {
            inputs: d.w.value.nrows(),
            outputs: d.w.value.ncols(),
            w: d.w.value.iter().copied().collect(),
            b: d.b.value.iter().copied().collect(),
        };
        MlpState {
            trunk: self.trunk.iter().map(dense).collect(),
            heads: self
                .head_names
                .iter()
                .cloned()
                .zip(self.heads.iter().map(dense))
                .collect(),
            adam: self.adam,
        }
    }

    /// The model of a serde form; errors describe a shape mismatch.
    pub fn from_state(s: &MlpState) -> Result<Mlp, String> {
        let mut trunk = vec![];
        let mut prev: Option<usize> = None;
        for (k, d) in s.trunk.iter().enumerate() {
            if prev.is_some_and(|p| p != d.inputs) {
                return Err(format!("trunk layer {k} takes {} inputs", d.inputs));
            }
            trunk.push(d.dense().map_err(|e| format!("trunk layer {k}: {e}"))?);
            prev = Some(d.outputs);
        }
        let width = prev.ok_or("the trunk has no layers")?;
        let mut head_names = vec![];
        let mut heads = vec![];
        for (name, d) in &s.heads {
            if d.inputs != width || d.outputs != 1 {
                return Err(format!("head `{name}` is {}x{}", d.inputs, d.outputs));
            }
            heads.push(d.dense().map_err(|e| format!("head `{name}`: {e}"))?);
            head_names.push(name.clone());
        }
        Ok(Mlp {
            trunk,
            head_names,
            heads,
            adam: s.adam,
        })
    }
}

/// Serde form of a dense layer (row-major weights).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DenseState {
    pub inputs: usize,
    pub outputs: usize,
    pub w: Vec<f32>,
    pub b: Vec<f32>,
}

impl DenseState {
    fn dense(&self) -> Result<Dense, String> {
        let w = Array2::from_shape_vec((self.inputs, self.outputs), self.w.clone())
            .map_err(|e| format!("weights: {e}"))?;
        let b = Array2::from_shape_vec((1, self.outputs), self.b.clone())
            .map_err(|e| format!("biases: {e}"))?;
        if w.iter().chain(b.iter()).any(|x| !x.is_finite()) {
            return Err("non-finite weight".into());
        }
        Ok(Dense {
            w: Param::new(w),
            b: Param::new(b),
        })
    }
}

/// Serde form of an [`Mlp`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpState {
    pub trunk: Vec<DenseState>,
    pub heads: Vec<(String, DenseState)>,
    pub adam: Adam,
}
