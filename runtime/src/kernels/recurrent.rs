//! f32 `RNN`, `GRU` and `LSTM` nodes on [`Recurrent`] (every ONNX attribute:
//! directions, activations with alpha/beta, clip, `linear_before_reset`,
//! `input_forget`, peepholes, `sequence_lens`, initial states, both layouts,
//! any outputs).
//!
//! Constant weights (`W`, `R`, `B`, `P`) are packed once here; when any of
//! them is computed, the layer is rebuilt from the run's values each run
//! (plain, unpacked weights). Initial states may be computed either way.

use super::{const_f32, Built};
use crate::fusion::Group;
use crate::kernel::{Kernel, StepIo};
use crate::tuning::{int_knob, Config, KnobDef};
use crate::uses::Uses;
use crate::{CompileOptions, Result};
use kiln_codegen::cpu::kernels::{
    Recurrent, RecurrentAct, RecurrentCell, RecurrentDesc, RecurrentIo, RecurrentKnobs,
    RecurrentWeights,
};
use kiln_ir::{Attr, Attrs, DType, Graph, Node};

/// Where the weights come from.
enum Layer {
    /// Packed at build time.
    Packed(Recurrent),
    /// Rebuilt each run from inputs 1..=3 (and 6).
    Dynamic(RecurrentDesc),
}

struct RecurrentKernel {
    layer: Layer,
    knobs: RecurrentKnobs,
    /// Node inputs present (3..=7): B at 3, initial_h at 4, initial_c at 5, P at 6.
    n_inputs: usize,
    /// Which node outputs (`Y`, `Y_h`, `Y_c`) exist and are read.
    wanted: [bool; 3],
    label: String,
    node: String,
}

impl RecurrentKernel {
    fn desc(&self) -> &RecurrentDesc {
        match &self.layer {
            Layer::Packed(r) => r.desc(),
            Layer::Dynamic(d) => d,
        }
    }
}

impl Kernel for RecurrentKernel {
    fn describe(&self) -> String {
        self.label.clone()
    }
    fn scratch_bytes(&self) -> usize {
        4 * self.desc().scratch_len()
    }
    fn run(&self, io: &mut StepIo<'_, '_>, threads: usize) -> Result<()> {
        let err = super::kernel_err(&self.node);
        let opt = |k: usize| (self.n_inputs > k).then(|| io.in_f32(k));
        let is_lstm = matches!(self.desc().cell, RecurrentCell::Lstm { .. });
        let rio = RecurrentIo {
            x: io.in_f32(0),
            h0: opt(4),
            c0: opt(5),
            y: self.wanted[0].then(|| io.out_f32(0)),
            y_h: self.wanted[1].then(|| io.out_f32(1)),
            y_c: self.wanted[2].then(|| io.out_f32(2)),
        };
        let scratch = io.scratch_f32(self.desc().scratch_len());
        match &self.layer {
            Layer::Packed(r) => r.run(rio, scratch, threads).map_err(err),
            Layer::Dynamic(d) => {
                let wt = RecurrentWeights {
                    w: io.in_f32(1),
                    r: io.in_f32(2),
                    b: opt(3),
                    p: if is_lstm { opt(6) } else { None },
                };
                let knobs = RecurrentKnobs {
                    prepack: false,
                    ..self.knobs
                };
                let r = Recurrent::new(d.clone(), &wt, knobs).map_err(&err)?;
                r.run(rio, scratch, threads).map_err(err)
            }
        }
    }
}

/// The `recurrent` family's knobs: from how many per-step multiply-adds a
/// step's `H·R^T` is split over threads (0: always, huge: never), and in
/// how many column blocks.
pub(crate) fn knobs(_: &Graph, _: &[usize]) -> Vec<KnobDef> {
    let d = RecurrentKnobs::default();
    vec![
        KnobDef::ints(
            "step_par_min_macs",
            &[0, d.step_par_min_macs as i64, NEVER],
            d.step_par_min_macs as i64,
        ),
        KnobDef::ints("step_parts", &[2, 4, 8], d.step_parts as i64),
    ]
}

/// A split threshold no workload reaches.
const NEVER: i64 = 1 << 62;

fn tuned_knobs(c: Option<&Config>) -> RecurrentKnobs {
    let d = RecurrentKnobs::default();
    let get = |name, v: usize| int_knob(c, name).map_or(v, |k| k.max(1) as usize);
    RecurrentKnobs {
        step_par_min_macs: int_knob(c, "step_par_min_macs")
            .map_or(d.step_par_min_macs, |k| k.max(0) as usize),
        step_parts: get("step_parts", d.step_parts),
        ..d
    }
}

pub(crate) fn build(g: &Graph, group: &Group, opts: &CompileOptions) -> Result<Option<Built>> {
    let n = &g.nodes()[group.nodes[0]];
    let kind = n.op.kind.as_str();
    if !opts.dense_kernels || group.nodes.len() != 1 || !matches!(kind, "RNN" | "GRU" | "LSTM") {
        return Ok(None);
    }
    let f32_only = n
        .inputs
        .iter()
        .chain(&n.outputs)
        .all(|&v| g.value(v).ty.dtype == DType::F32);
    if !f32_only || n.inputs.len() < 3 || n.outputs.is_empty() {
        return Ok(None);
    }
    let Some(desc) = describe(g, n)? else {
        return Ok(None);
    };
    let knobs = tuned_knobs(crate::tuning::config(opts, g, &group.nodes, "recurrent"));
    let weight = |k: usize| n.inputs.get(k).map(|&v| const_f32(g, v));
    let (w, r) = (weight(1).flatten(), weight(2).flatten());
    let (b, p) = (weight(3), if kind == "LSTM" { weight(6) } else { None });
    let layer = match (w, r, b, p) {
        (Some(w), Some(r), b, p)
            if b.as_ref().is_none_or(Option::is_some) && p.as_ref().is_none_or(Option::is_some) =>
        {
            let (b, p) = (b.flatten(), p.flatten());
            let wt = RecurrentWeights {
                w: &w,
                r: &r,
                b: b.as_deref(),
                p: p.as_deref(),
            };
            match Recurrent::new(desc, &wt, knobs) {
                Ok(l) => Layer::Packed(l),
                Err(_) => return Ok(None),
            }
        }
        _ if desc.check().is_ok() => Layer::Dynamic(desc),
        _ => return Ok(None),
    };
    let label = format!(
        "recurrent[{}{}]",
        kind.to_ascii_lowercase(),
        if matches!(layer, Layer::Packed(_)) {
            " packed"
        } else {
            ""
        }
    );
    Ok(Some(Built {
        kernel: Box::new(RecurrentKernel {
            layer,
            knobs,
            n_inputs: n.inputs.len(),
            wanted: wanted(g, n),
            label,
            node: n.name.clone(),
        }),
        inputs: n.inputs.clone(),
        outputs: n.outputs.clone(),
    }))
}

/// Outputs the node has that a node or the graph reads (others are left unwritten).
fn wanted(g: &Graph, n: &Node) -> [bool; 3] {
    let uses = Uses::new(g);
    let mut w = [false; 3];
    for (k, &v) in n.outputs.iter().enumerate().take(3) {
        w[k] = uses.is_output(v) || !uses.readers(v).is_empty();
    }
    w
}

/// The layer's description from the node's attributes and types (`None`
/// when something is off; the fallback then reports it).
fn describe(g: &Graph, n: &Node) -> Result<Option<RecurrentDesc>> {
    let a = &n.op.attrs;
    let cell = match n.op.kind.as_str() {
        "RNN" => RecurrentCell::Rnn,
        "GRU" => RecurrentCell::Gru {
            linear_before_reset: a.int_or("linear_before_reset", 0)? != 0,
        },
        _ => RecurrentCell::Lstm {
            input_forget: a.int_or("input_forget", 0)? != 0,
        },
    };
    let (x, r) = (
        &g.value(n.inputs[0]).ty.shape,
        &g.value(n.inputs[2]).ty.shape,
    );
    if x.len() != 3 || r.len() != 3 {
        return Ok(None);
    }
    let batch_major = a.int_or("layout", 0)? == 1;
    let (seq, batch) = if batch_major {
        (x[1], x[0])
    } else {
        (x[0], x[1])
    };
    let (dirs, reverse) = match a.str_or("direction", "forward")? {
        "forward" => (1, false),
        "reverse" => (1, true),
        "bidirectional" => (2, false),
        _ => return Ok(None),
    };
    let Some(acts) = activations(a, cell, dirs)? else {
        return Ok(None);
    };
    let seq_lens = a
        .opt_ints("sequence_lens")?
        .map(|l| l.iter().map(|&v| v.max(0) as usize).collect());
    Ok(Some(RecurrentDesc {
        cell,
        seq,
        batch,
        input: x[2],
        hidden: r[2],
        dirs,
        reverse,
        batch_major,
        clip: a.opt_float("clip")?.map(|c| c as f32),
        acts,
        seq_lens,
    }))
}

/// The activations of every direction, with alpha/beta consumed in order by
/// the activations that take them (as the reference does).
fn activations(a: &Attrs, cell: RecurrentCell, dirs: usize) -> Result<Option<Vec<RecurrentAct>>> {
    let defaults: &[&str] = match cell {
        RecurrentCell::Rnn => &["Tanh"],
        RecurrentCell::Gru { .. } => &["Sigmoid", "Tanh"],
        RecurrentCell::Lstm { .. } => &["Sigmoid", "Tanh", "Tanh"],
    };
    let names: Vec<String> = match a.get("activations") {
        Some(Attr::Strs(v)) => v.clone(),
        Some(_) => return Ok(None),
        None => (0..dirs)
            .flat_map(|_| defaults.iter().map(|s| s.to_string()))
            .collect(),
    };
    let alphas = a.opt_floats("activation_alpha")?.unwrap_or_default();
    let betas = a.opt_floats("activation_beta")?.unwrap_or_default();
    let (mut ia, mut ib) = (0, 0);
    let take = |v: &[f64], i: &mut usize, default: f32| {
        let x = v.get(*i).map_or(default, |&x| x as f32);
        *i += 1;
        x
    };
    let mut out = Vec::with_capacity(names.len());
    for name in &names {
        let act = match name.to_ascii_lowercase().as_str() {
            "relu" => RecurrentAct::Relu,
            "tanh" => RecurrentAct::Tanh,
            "sigmoid" => RecurrentAct::Sigmoid,
            "softsign" => RecurrentAct::Softsign,
            "softplus" => RecurrentAct::Softplus,
            "affine" => RecurrentAct::Affine {
                alpha: take(&alphas, &mut ia, 1.0),
                beta: take(&betas, &mut ib, 0.0),
            },
            "leakyrelu" => RecurrentAct::LeakyRelu {
                alpha: take(&alphas, &mut ia, 0.01),
            },
            "thresholdedrelu" => RecurrentAct::ThresholdedRelu {
                alpha: take(&alphas, &mut ia, 1.0),
            },
            "scaledtanh" => RecurrentAct::ScaledTanh {
                alpha: take(&alphas, &mut ia, 1.0),
                beta: take(&betas, &mut ib, 1.0),
            },
            "hardsigmoid" => RecurrentAct::HardSigmoid {
                alpha: take(&alphas, &mut ia, 0.2),
                beta: take(&betas, &mut ib, 0.5),
            },
            "elu" => RecurrentAct::Elu {
                alpha: take(&alphas, &mut ia, 1.0),
            },
            _ => return Ok(None),
        };
        out.push(act);
    }
    Ok((out.len() == dirs * cell.acts()).then_some(out))
}
