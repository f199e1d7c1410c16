//! Contractions routed by derivation: a group whose expression is a sum of
//! products (an Einsum, a MatMul or Gemm the matmul builder does not take, a
//! fused chain ending in one) is handed to the OLLIE-style search of
//! `kiln_rewrite::derive`. The first chains that end in a GEMM or batched
//! GEMM are ranked (fewest memory-bound stages, then the fewest batches) and
//! the best is compiled as it reads: stages that read only constants are
//! computed now, the GEMM stage runs on the packed GEMM (constant `B`) or
//! the batched one, and the memory-bound remainder (transposes, im2col,
//! split-off epilogues) on the JIT. Intermediates live in the step's scratch.
//!
//! Searches are deterministic, so their results are cached per program for
//! the process: a transformer's dozen identical einsums search once.

use super::expr::{expression, run_split, ExprKnobs, Work};
use super::{kernel_err, Built};
use crate::fusion::Group;
use crate::kernel::{Kernel, StepIo};
use crate::tuning::{flag_knob, KnobDef};
use crate::{CompileOptions, Result};
use kiln_codegen::cpu::kernels::{matmul_f32, Activation, Epilogue, MatmulDesc, PackedMatmul};
use kiln_codegen::cpu::{default_schedule, ExprKernel, JitOptions};
use kiln_ir::expr::{eval, ReduceKind, TensorExpr};
use kiln_ir::{DType, Graph, Tensor, ValueId};
use kiln_rewrite::derive::{
    constants, search, unit_iter, view, Chain, Kernel as Known, Program, SearchLimits,
};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

/// Programs searched per contraction (the search's own default is larger;
/// every route of the shipped models is found well within this).
const MAX_PROGRAMS: usize = 600;

/// Where a stage reads or writes: an input of the step, a constant of the
/// kernel, an f32 offset into the scratch, or the step's output.
#[derive(Clone, Copy, Debug)]
enum Place {
    Input(usize),
    Const(usize),
    Temp(usize),
    Output,
}

/// A place and its element count.
#[derive(Clone, Copy, Debug)]
struct Buf {
    place: Place,
    len: usize,
}

enum Stage {
    Jit {
        kernel: Box<ExprKernel>,
        ins: Vec<Buf>,
        out: Buf,
        points: usize,
    },
    Batched {
        desc: MatmulDesc,
        bias: Option<Vec<f32>>,
        a: Buf,
        b: Buf,
        out: Buf,
    },
    Packed {
        w: PackedMatmul,
        rows: usize,
        a: Buf,
        out: Buf,
    },
}

impl Stage {
    /// True when the stage writes the step's output, all `numel` of it.
    fn writes_output(&self, numel: usize) -> bool {
        let out = match self {
            Stage::Jit { out, .. } | Stage::Batched { out, .. } | Stage::Packed { out, .. } => out,
        };
        matches!(out.place, Place::Output) && out.len == numel
    }
}

struct Derived {
    stages: Vec<Stage>,
    consts: Vec<Vec<f32>>,
    /// Scratch f32 elements for the intermediates.
    temps: usize,
    label: String,
    node: String,
}

impl Derived {
    fn ptr(&self, io: &StepIo<'_, '_>, b: Buf) -> *mut f32 {
        match b.place {
            Place::Input(i) => io.in_ptr(i) as *mut f32,
            Place::Const(c) => self.consts[c].as_ptr() as *mut f32,
            // SAFETY: offsets and lengths were laid out within `temps`.
            Place::Temp(o) => unsafe { (io.scratch as *mut f32).add(o) },
            Place::Output => io.out_ptr(0) as *mut f32,
        }
    }

    fn slice<'a>(&self, io: &StepIo<'_, '_>, b: Buf) -> &'a [f32] {
        // SAFETY: every place holds `len` f32 values for the run.
        unsafe { std::slice::from_raw_parts(self.ptr(io, b), b.len) }
    }

    #[allow(clippy::mut_from_ref)]
    fn slice_mut<'a>(&self, io: &StepIo<'_, '_>, b: Buf) -> &'a mut [f32] {
        // SAFETY: a stage's output place is written by that stage alone and
        // never overlaps its inputs (distinct temps, inputs or the output).
        unsafe { std::slice::from_raw_parts_mut(self.ptr(io, b), b.len) }
    }
}

impl Kernel for Derived {
    fn describe(&self) -> String {
        self.label.clone()
    }

    fn scratch_bytes(&self) -> usize {
        self.temps * 4
    }

    fn run(&self, io: &mut StepIo<'_, '_>, threads: usize) -> Result<()> {
        let err = kernel_err(&self.node);
        for s in &self.stages {
            match s {
                Stage::Jit {
                    kernel,
                    ins,
                    out,
                    points,
                } => {
                    let ins: Vec<usize> = ins.iter().map(|&b| self.ptr(io, b) as usize).collect();
                    let work = Work {
                        points: *points,
                        par_min_points: ExprKnobs::default().par_min_points,
                    };
                    // SAFETY: each place holds its operand's elements; the
                    // output place overlaps no input place.
                    unsafe {
                        run_split(kernel, &ins, self.ptr(io, *out) as *mut u8, work, threads)
                    };
                }
                Stage::Batched {
                    desc,
                    bias,
                    a,
                    b,
                    out,
                } => {
                    let epi = Epilogue {
                        bias: bias.as_deref(),
                        residual: None,
                        activation: Activation::None,
                    };
                    let (a, b) = (self.slice(io, *a), self.slice(io, *b));
                    matmul_f32(desc, a, b, self.slice_mut(io, *out), &epi, threads)
                        .map_err(&err)?;
                }
                Stage::Packed { w, rows, a, out } => {
                    let a = self.slice(io, *a);
                    w.run(a, *rows, None, self.slice_mut(io, *out), threads)
                        .map_err(&err)?;
                }
            }
        }
        Ok(())
    }
}

/// The chain to compile: a GEMM match with the fewest memory-bound stages,
/// then the fewest batches; `None` when no chain ends in a GEMM.
fn best(chains: &[Chain]) -> Option<&Chain> {
    chains
        .iter()
        .filter(|c| matches!(c.matched.kernel, Known::Gemm(_)))
        .min_by_key(|c| match &c.matched.kernel {
            Known::Gemm(g) => (c.matched.remainder.len(), g.batch),
            Known::Conv(_) => (usize::MAX, usize::MAX),
        })
}

/// `p` with every unit iterator dropped (always a step toward a kernel; the
/// search would spend its depth on them), and how many were dropped.
fn without_unit_iters(mut p: Program) -> (Program, usize) {
    let mut n = 0;
    while let Some(d) = unit_iter::apply(&p).into_iter().next() {
        p = d.program;
        n += 1;
    }
    (p, n)
}

/// The best chain of `p`, searched once per process.
fn route(p: &Program) -> Option<Arc<Chain>> {
    static CACHE: LazyLock<Mutex<HashMap<String, Option<Arc<Chain>>>>> =
        LazyLock::new(Mutex::default);
    let key = format!("{p}\n{:?}", p.constants);
    if let Some(hit) = CACHE.lock().ok()?.get(&key) {
        return hit.clone();
    }
    let limits = SearchLimits {
        max_nodes: MAX_PROGRAMS,
        ..SearchLimits::default()
    };
    let found = best(&search(p, &limits).chains).cloned().map(Arc::new);
    if let Ok(mut c) = CACHE.lock() {
        c.insert(key, found.clone());
    }
    found
}

/// A sum of products over f32 operands, worth a search.
fn contraction(e: &TensorExpr) -> bool {
    let f32s = e.output.dtype == DType::F32 && e.inputs.iter().all(|o| o.ty.dtype == DType::F32);
    let sum = e.reduce.as_ref().is_some_and(|r| r.kind == ReduceKind::Sum);
    f32s && sum && e.inputs.len() >= 2
}

/// The family's knob: `derive` (on: the derived route; off: the whole
/// contraction on generated code, for the tuner to compare).
pub(crate) fn knobs() -> Vec<KnobDef> {
    vec![KnobDef::flag("derive", true)]
}

pub(crate) fn build(g: &Graph, group: &Group, opts: &CompileOptions) -> Result<Option<Built>> {
    if !opts.dense_kernels || !opts.jit {
        return Ok(None);
    }
    let tuned = crate::tuning::config(opts, g, &group.nodes, "derived");
    if flag_knob(tuned, "derive") == Some(false) {
        return Ok(None);
    }
    let last = &g.nodes()[*group.nodes.last().expect("group")];
    let Some(e) = expression(g, group).filter(contraction) else {
        return Ok(None);
    };
    if last.outputs.len() != 1 || g.find(&e.name) != Some(last.outputs[0]) {
        return Ok(None);
    }
    let (program, units) = without_unit_iters(constants(g, Program::single(e)));
    let Some(chain) = route(&program) else {
        return Ok(None);
    };
    let numel = g.value(last.outputs[0]).ty.numel();
    let built = Assembly::new(g)
        .assemble(&chain)
        .filter(|(s, _)| s.iter().any(|s| s.writes_output(numel)));
    Ok(built.map(|(stages, a)| {
        let mut rules = vec!["drop-unit-iter"; units];
        rules.extend(chain.rules());
        let rules = match rules.is_empty() {
            true => "direct".to_string(),
            false => rules.join(" > "),
        };
        let label = format!("derived[{rules} => {}]", chain.matched.kernel.kind());
        Built {
            kernel: Box::new(Derived {
                stages,
                consts: a.consts,
                temps: a.temps,
                label,
                node: last.name.clone(),
            }),
            inputs: a.inputs,
            outputs: last.outputs.clone(),
        }
    }))
}

/// The state of turning a matched program into stages.
struct Assembly<'g> {
    g: &'g Graph,
    places: HashMap<String, Buf>,
    inputs: Vec<ValueId>,
    consts: Vec<Vec<f32>>,
    /// Constant values by name, for folding.
    known: HashMap<String, Tensor>,
    temps: usize,
}

impl<'g> Assembly<'g> {
    fn new(g: &'g Graph) -> Self {
        Assembly {
            g,
            places: HashMap::new(),
            inputs: Vec::new(),
            consts: Vec::new(),
            known: HashMap::new(),
            temps: 0,
        }
    }

    fn constant(&mut self, name: &str, t: Tensor) -> Option<Buf> {
        let data = t.as_slice::<f32>().ok()?.to_vec();
        let b = Buf {
            place: Place::Const(self.consts.len()),
            len: data.len(),
        };
        self.consts.push(data);
        self.known.insert(name.to_string(), t);
        self.places.insert(name.to_string(), b);
        Some(b)
    }

    /// Places the program's inputs: graph constants as kernel constants,
    /// the rest as step inputs.
    fn place_inputs(&mut self, p: &Program) -> Option<()> {
        for o in &p.inputs {
            let v = self.g.find(&o.name)?;
            match self.g.const_value(v) {
                Some(t) => {
                    self.constant(&o.name, (**t).clone())?;
                }
                None => {
                    let b = Buf {
                        place: Place::Input(self.inputs.len()),
                        len: o.ty.numel(),
                    };
                    self.inputs.push(v);
                    self.places.insert(o.name.clone(), b);
                }
            }
        }
        Some(())
    }

    /// Computes a stage that reads only constants.
    fn fold(&mut self, s: &TensorExpr) -> Option<()> {
        let ins: Vec<Tensor> = s
            .inputs
            .iter()
            .map(|o| view(self.known.get(&o.name)?, &o.ty.shape).ok())
            .collect::<Option<_>>()?;
        let t = eval(s, &ins.iter().collect::<Vec<_>>()).ok()?;
        self.constant(&s.name, t).map(|_| ())
    }

    /// The place of a stage's result: the step's output, or a new temp.
    fn result(&mut self, s: &TensorExpr, p: &Program) -> Buf {
        let len = s.output.numel();
        let place = if p.outputs.iter().any(|o| o.name == s.name) {
            Place::Output
        } else {
            let at = self.temps;
            self.temps += len.div_ceil(16) * 16;
            Place::Temp(at)
        };
        let b = Buf { place, len };
        self.places.insert(s.name.clone(), b);
        b
    }

    fn assemble(mut self, chain: &Chain) -> Option<(Vec<Stage>, Self)> {
        let m = &chain.matched;
        let p = &m.program;
        if p.outputs.len() != 1 {
            return None;
        }
        self.place_inputs(p)?;
        let mut stages = Vec::new();
        for (k, s) in p.stages.iter().enumerate() {
            if m.folded.contains(&k) {
                self.fold(s)?;
                continue;
            }
            let ins: Vec<Buf> = s
                .inputs
                .iter()
                .map(|o| self.places.get(&o.name).copied())
                .collect::<Option<_>>()?;
            let out = self.result(s, p);
            stages.push(match k == m.stage {
                true => self.gemm(&m.kernel, out)?,
                false => jit(s, ins, out)?,
            });
        }
        Some((stages, self))
    }

    fn gemm(&self, kernel: &Known, out: Buf) -> Option<Stage> {
        let Known::Gemm(gm) = kernel else {
            return None;
        };
        let a = *self.places.get(&gm.a)?;
        let b = *self.places.get(&gm.b)?;
        let bias = match &gm.bias {
            Some(name) => Some(self.known.get(name)?.as_slice::<f32>().ok()?.to_vec()),
            None => None,
        };
        let dense_a = gm.batch == 1 || gm.a_batch_stride == gm.m * gm.k;
        if let (Place::Const(c), true) = (b.place, dense_a && gm.b_batch_stride == 0) {
            let w = PackedMatmul::new(
                gm.k,
                gm.n,
                &self.consts[c],
                gm.b_transposed,
                bias.as_deref(),
                Activation::None,
            )
            .ok()?;
            let rows = gm.batch * gm.m;
            return Some(Stage::Packed { w, rows, a, out });
        }
        let desc = MatmulDesc {
            batch: gm.batch,
            m: gm.m,
            n: gm.n,
            k: gm.k,
            a_batch_stride: gm.a_batch_stride,
            b_batch_stride: gm.b_batch_stride,
            b_transposed: gm.b_transposed,
        };
        Some(Stage::Batched {
            desc,
            bias,
            a,
            b,
            out,
        })
    }
}

/// A memory-bound stage on the JIT.
fn jit(s: &TensorExpr, ins: Vec<Buf>, out: Buf) -> Option<Stage> {
    let kernel = ExprKernel::compile(s, &default_schedule(s), &JitOptions::default()).ok()?;
    let red = s.reduce_points();
    Some(Stage::Jit {
        kernel: Box::new(kernel),
        ins,
        out,
        points: s.output.numel() * red,
    })
}
