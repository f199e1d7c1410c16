//! Generated kernels: a group's fused tensor expression, scheduled by the
//! default schedule and compiled with Cranelift ([`ExprKernel`]). The
//! outermost loop is split across the pool's threads when the work is large
//! enough to pay for it. Inputs that are one-element constants of the
//! graph are folded into the body as literals first (so `Pow(x, 3)` reaches
//! the generator as `x ^ 3.0` and becomes multiplications).

use super::Built;
use crate::fusion::{group_expression, Group, Pattern};
use crate::kernel::{Kernel, StepIo};
use crate::tuning::{flag_knob, int_knob, Config, KnobDef};
use crate::{CompileOptions, Result};
use kiln_codegen::cpu::jit::strided_map;
use kiln_codegen::cpu::{schedule_with, split, ExprKernel, JitOptions, ScheduleKnobs};
use kiln_ir::expr::inline::map_reads;
use kiln_ir::expr::{lower, Access, AffineExpr, BinaryOp, ScalarExpr, TensorExpr, UnaryOp};
use kiln_ir::Graph;

/// Machine-dependent choices of generated kernels (defaults measured on a
/// 2-core Xeon with AVX-512).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExprKnobs {
    /// Element-operations below which a kernel stays on one thread (more
    /// work: one task per `par_min_points`, up to the pool's threads).
    pub par_min_points: usize,
    /// Element-operations one math function (exp, log, tanh, erf, pow,
    /// sin, cos) counts for when weighing a kernel's work.
    pub math_fn_points: usize,
    /// Code generation options (AVX-512 chunk helpers, chunk size...).
    pub jit: JitOptions,
    /// The loop schedule's choices (fusion, tiling, unrolling).
    pub schedule: ScheduleKnobs,
}

impl Default for ExprKnobs {
    fn default() -> Self {
        ExprKnobs {
            par_min_points: 1 << 15,
            math_fn_points: 8,
            jit: JitOptions::default(),
            schedule: ScheduleKnobs::default(),
        }
    }
}

struct Generated {
    kernel: ExprKernel,
    /// Constant subexpressions computed at build time ([`super::hoist`]),
    /// passed after the graph inputs.
    hoisted: Vec<Vec<f32>>,
    in_place: Option<usize>,
    /// Output points times reduction points, weighted by the body's math
    /// functions: the work per run.
    points: usize,
    /// Work below which the kernel stays on one thread.
    par_min_points: usize,
    label: String,
}

impl Kernel for Generated {
    fn describe(&self) -> String {
        self.label.clone()
    }

    fn in_place_input(&self) -> Option<usize> {
        self.in_place
    }

    fn run(&self, io: &mut StepIo<'_, '_>, threads: usize) -> Result<()> {
        let hoisted = self.hoisted.iter().map(|t| t.as_ptr() as usize);
        let ins: Vec<usize> = (0..io.inputs.len())
            .map(|i| io.in_ptr(i) as usize)
            .chain(hoisted)
            .collect();
        let work = Work {
            points: self.points,
            par_min_points: self.par_min_points,
        };
        // SAFETY: the plan gives each input and the output a buffer of the
        // expression's types.
        unsafe { run_split(&self.kernel, &ins, io.out_ptr(0), work, threads) };
        Ok(())
    }
}

/// A generated kernel's work per run and the work below which it stays on
/// one thread.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Work {
    pub points: usize,
    pub par_min_points: usize,
}

/// Runs `kernel` over its outer iterations, split into tasks by `work`.
///
/// # Safety
/// `ins` (addresses) and `out` must be buffers of the expression's input and
/// output types, `out` overlapping none of them.
pub(crate) unsafe fn run_split(
    kernel: &ExprKernel,
    ins: &[usize],
    out: *mut u8,
    work: Work,
    threads: usize,
) {
    let out = out as usize;
    let n = kernel.parallel_extent();
    let tasks = threads
        .min(n)
        .min(work.points / work.par_min_points.max(1))
        .max(1);
    let run = |lo: usize, hi: usize| {
        let p: Vec<*const u8> = ins.iter().map(|&a| a as *const u8).collect();
        // SAFETY: the caller's contract; tasks write disjoint outer iterations.
        unsafe { kernel.run_range(&p, out as *mut u8, lo, hi) };
    };
    split(n, tasks, |r| run(r.start, r.end));
}

/// An input a map reads only at the output's own index, with the output's
/// shape and element size: the output may overwrite it.
fn in_place_candidate(e: &TensorExpr) -> Option<usize> {
    if e.reduce.is_some() {
        return None;
    }
    let rank = e.output.rank();
    let identity = |i: usize| {
        let mut ok = true;
        e.body.visit_accesses(&mut |a| {
            if a.input == i {
                ok &= a.index.len() == rank
                    && a.index
                        .iter()
                        .enumerate()
                        .all(|(k, x)| *x == AffineExpr::iter(k));
            }
        });
        ok
    };
    (0..e.inputs.len()).find(|&i| {
        let ty = &e.inputs[i].ty;
        ty.shape == e.output.shape && ty.dtype.size_of() == e.output.dtype.size_of() && identity(i)
    })
}

/// The expression of a group: the fused chain, or a single node's lowering.
pub(crate) fn expression(g: &Graph, group: &Group) -> Option<TensorExpr> {
    match (group.pattern, group.nodes.as_slice()) {
        (Pattern::Expression, _) => group_expression(g, group),
        (Pattern::Single, [p]) => lower(g, &g.nodes()[*p]).ok()?,
        _ => None,
    }
}

/// The value of input `i` of `e` when it is a one-element constant of `g`.
fn scalar_const(g: &Graph, e: &TensorExpr, i: usize) -> Option<f64> {
    let t = g.const_value(g.find(&e.inputs[i].name)?)?;
    if t.len() != 1 {
        return None;
    }
    t.to_f64_vec().first().copied()
}

/// `e` with every read of a one-element constant input replaced by its
/// value and those inputs dropped (inputs read by a bounds guard stay; at
/// least one input stays).
fn fold_scalar_consts(g: &Graph, e: TensorExpr) -> TensorExpr {
    let mut guarded = vec![false; e.inputs.len()];
    for s in [&e.body].into_iter().chain(e.epilogue.as_ref()) {
        let mut note = |s: &ScalarExpr| {
            if let ScalarExpr::InBounds(a) = s {
                guarded[a.input] = true;
            }
        };
        visit(s, &mut note);
    }
    let vals: Vec<Option<f64>> = (0..e.inputs.len())
        .map(|i| scalar_const(g, &e, i).filter(|_| !guarded[i]))
        .collect();
    if vals.iter().all(Option::is_none) || vals.iter().all(Option::is_some) {
        return e;
    }
    let mut to = vec![0; vals.len()];
    let mut n = 0;
    for (i, v) in vals.iter().enumerate() {
        to[i] = n;
        n += v.is_none() as usize;
    }
    let f = |a: &Access, guard: bool| match (vals[a.input], guard) {
        (Some(c), false) => ScalarExpr::Const(c),
        _ => {
            let a = Access {
                input: to[a.input],
                index: a.index.clone(),
            };
            if guard {
                ScalarExpr::InBounds(a)
            } else {
                ScalarExpr::Access(a)
            }
        }
    };
    let mut out = e.clone();
    out.body = map_reads(&e.body, &f);
    out.epilogue = e.epilogue.as_ref().map(|s| map_reads(s, &f));
    out.inputs = (e.inputs.into_iter().zip(&vals))
        .filter(|(_, v)| v.is_none())
        .map(|(o, _)| o)
        .collect();
    out
}

/// Element-operations per point: 1, plus `math_fn_points` per math
/// function in the body and epilogue.
fn work_per_point(e: &TensorExpr, math_fn_points: usize) -> usize {
    let mut fns = 0;
    for s in [&e.body].into_iter().chain(e.epilogue.as_ref()) {
        visit(s, &mut |x| {
            let math = match x {
                ScalarExpr::Unary(op, _) => matches!(
                    op,
                    UnaryOp::Exp
                        | UnaryOp::Log
                        | UnaryOp::Tanh
                        | UnaryOp::Erf
                        | UnaryOp::Sin
                        | UnaryOp::Cos
                ),
                ScalarExpr::Binary(op, _, b) => {
                    *op == BinaryOp::Pow && !matches!(**b, ScalarExpr::Const(_))
                }
                _ => false,
            };
            fns += math as usize;
        });
    }
    1 + math_fn_points * fns
}

/// Calls `f` on every node of `s`, depth first.
pub(crate) fn visit(s: &ScalarExpr, f: &mut dyn FnMut(&ScalarExpr)) {
    f(s);
    match s {
        ScalarExpr::Unary(_, x) | ScalarExpr::Cast(_, x) => visit(x, f),
        ScalarExpr::Binary(_, a, b) | ScalarExpr::Cmp(_, a, b) => {
            visit(a, f);
            visit(b, f);
        }
        ScalarExpr::Select(c, t, x) => {
            visit(c, f);
            visit(t, f);
            visit(x, f);
        }
        _ => {}
    }
}

/// The `jit` family's knobs: the parallel threshold, the schedule's
/// choices (loop fusion; the unroll factor with a reduction; the tile edge
/// of a strided copy), small function-free maps on the tape, and for
/// expressions with math functions the AVX-512 chunked paths (on/off,
/// chunk size, tape or helpers).
pub(crate) fn knobs(g: &Graph, nodes: &[usize]) -> Vec<KnobDef> {
    let d = ExprKnobs::default();
    let group = Group {
        nodes: nodes.to_vec(),
        pattern: crate::fusion::Pattern::Expression,
    };
    let p = d.par_min_points as i64;
    let mut k = vec![KnobDef::ints(
        "par_min_points",
        &[p >> 3, p >> 1, p, p << 2, p << 5],
        p,
    )];
    let e = expression(g, &group);
    let fns = e.as_ref().is_some_and(|e| work_per_point(e, 1) > 1);
    let map = e.as_ref().is_some_and(|e| e.reduce.is_none());
    let ds = d.schedule;
    k.push(KnobDef::flag("fuse_loops", ds.fuse));
    if !map {
        k.push(KnobDef::ints("unroll", &[1, 2, 4, 8], ds.unroll as i64));
    }
    if e.as_ref().is_some_and(strided_map) {
        k.push(KnobDef::ints("tile", &[0, 8, 16, 32], ds.tile as i64));
    }
    if map && !fns {
        k.push(KnobDef::ints(
            "tape_plain_ops",
            &[0, 1, 2, 4, 1 << 30],
            d.jit.tape_plain_ops as i64,
        ));
    }
    if fns {
        let j = &d.jit;
        k.push(KnobDef::flag("avx512", j.avx512));
        k.push(KnobDef::ints(
            "chunk",
            &[128, 256, 512, 1024, 2048],
            j.chunk as i64,
        ));
        k.push(KnobDef::ints(
            "tape_ops_per_fn",
            &[0, 4, 1 << 30],
            j.tape_ops_per_fn as i64,
        ));
    }
    k
}

fn tuned_knobs(c: Option<&Config>) -> ExprKnobs {
    let d = ExprKnobs::default();
    let get = |name, v: usize| int_knob(c, name).map_or(v, |k| k.max(1) as usize);
    ExprKnobs {
        par_min_points: get("par_min_points", d.par_min_points),
        math_fn_points: d.math_fn_points,
        jit: JitOptions {
            avx512: flag_knob(c, "avx512").unwrap_or(d.jit.avx512),
            chunk: get("chunk", d.jit.chunk),
            tape_ops_per_fn: int_knob(c, "tape_ops_per_fn")
                .map_or(d.jit.tape_ops_per_fn, |k| k.max(0) as usize),
            tape_plain_ops: int_knob(c, "tape_plain_ops")
                .map_or(d.jit.tape_plain_ops, |k| k.max(0) as usize),
            ..d.jit
        },
        schedule: ScheduleKnobs {
            fuse: flag_knob(c, "fuse_loops").unwrap_or(d.schedule.fuse),
            tile: int_knob(c, "tile").map_or(d.schedule.tile, |k| k.max(0) as usize),
            unroll: get("unroll", d.schedule.unroll),
        },
    }
}

pub(crate) fn build(g: &Graph, group: &Group, opts: &CompileOptions) -> Result<Option<Built>> {
    if !opts.jit {
        return Ok(None);
    }
    let last = &g.nodes()[*group.nodes.last().expect("group")];
    let Some(e) = expression(g, group) else {
        return Ok(None);
    };
    let e = fold_scalar_consts(g, e);
    if last.outputs.len() != 1 {
        return Ok(None);
    }
    let inputs = e
        .inputs
        .iter()
        .map(|o| g.find(&o.name))
        .collect::<Option<Vec<_>>>();
    let Some(inputs) = inputs else {
        return Ok(None);
    };
    // Hoisted values are f32 by construction; kept as plain vectors so a run
    // only takes their addresses.
    let (h, extra) = super::hoist::hoist(g, e.clone());
    let values: std::result::Result<Vec<Vec<f32>>, _> = extra
        .iter()
        .map(|t| t.as_slice::<f32>().map(<[f32]>::to_vec))
        .collect();
    let (e, hoisted) = match values {
        Ok(v) => (h, v),
        Err(_) => (e, Vec::new()),
    };
    let knobs = tuned_knobs(crate::tuning::config(opts, g, &group.nodes, "jit"));
    let kernel = match ExprKernel::compile(&e, &schedule_with(&e, &knobs.schedule), &knobs.jit) {
        Ok(k) => k,
        Err(err) => {
            tracing::debug!(node = %last.name, error = %err, "JIT refused; interpreter fallback");
            return Ok(None);
        }
    };
    let red = e.reduce_points();
    Ok(Some(Built {
        kernel: Box::new(Generated {
            kernel,
            hoisted,
            in_place: in_place_candidate(&e),
            points: e.output.numel() * red * work_per_point(&e, knobs.math_fn_points),
            par_min_points: knobs.par_min_points,
            label: format!("jit[{}]", if e.reduce.is_some() { "reduce" } else { "map" }),
        }),
        inputs,
        outputs: last.outputs.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::fold_scalar_consts;
    use crate::{compile, CompileOptions};
    use kiln_ir::expr::{lower, ScalarExpr};
    use kiln_ir::{DType, Graph, Op, Tensor, TensorType};
    use std::collections::HashMap;

    /// `y = Pow(x, c)` with `c` a one-element constant; `x` of 3x37 values
    /// in ±[0.1, 2.1] (vector body and scalar tails).
    fn pow_graph(c: f32) -> (Graph, HashMap<String, Tensor>) {
        let mut g = Graph::new("p");
        let x = g
            .add_input("x", TensorType::new(DType::F32, vec![3, 37]))
            .unwrap();
        let k = Tensor::from_vec(vec![1], vec![c]).unwrap();
        let k = g.add_const("c", k).unwrap();
        let y = g.add_node("pow", Op::new("Pow"), &[x, k], &["y"]).unwrap();
        g.set_outputs(y);
        let v: Vec<f32> = (0..111)
            .map(|i| (0.1 + (i % 11) as f32 * 0.2) * if i % 3 == 0 { -1.0 } else { 1.0 })
            .collect();
        let feeds = HashMap::from([("x".to_string(), Tensor::from_vec(vec![3, 37], v).unwrap())]);
        (g, feeds)
    }

    #[test]
    fn scalar_constants_fold_into_the_body() {
        let (g, _) = pow_graph(3.0);
        let e = lower(&g, &g.nodes()[0]).unwrap().unwrap();
        assert_eq!(e.inputs.len(), 2);
        let f = fold_scalar_consts(&g, e);
        assert_eq!(f.inputs.len(), 1);
        let ScalarExpr::Binary(_, _, b) = &f.body else {
            panic!("{f}");
        };
        assert_eq!(**b, ScalarExpr::Const(3.0), "{f}");
    }

    #[test]
    fn pow_by_constants_matches_the_interpreter() {
        for c in [0.0, 0.5, -1.0, 1.0, 2.0, 3.0, 4.0, 1.7, -2.5, 5.0] {
            let (g, feeds) = pow_graph(c);
            for threads in [1, 2, 3] {
                let opts = CompileOptions {
                    threads,
                    ..CompileOptions::default()
                };
                let exe = compile(&g, &opts).unwrap();
                assert_eq!(exe.report().fallback_count(), 0, "pow {c}");
                let got = exe.run(&feeds).unwrap().remove(0).to_f64_vec();
                let want = kiln_ir::interp::run(&g, &feeds).unwrap().remove(0);
                for (i, (a, b)) in got.iter().zip(want.to_f64_vec()).enumerate() {
                    let ok = (a - b).abs() <= 2e-6 * b.abs() || (a.is_nan() && b.is_nan());
                    assert!(ok, "pow {c} element {i}: {a} vs {b}");
                }
            }
        }
    }
}
