//! Generated kernels: a group's fused tensor expression, scheduled by the
//! default schedule and compiled with Cranelift ([`ExprKernel`]). The
//! outermost loop is split across the pool's threads when the work is large
//! enough to pay for it.

use super::Built;
use crate::fusion::{group_expression, Group, Pattern};
use crate::kernel::{Kernel, StepIo};
use crate::{CompileOptions, Result};
use kiln_codegen::cpu::{default_schedule, split, ExprKernel, JitOptions};
use kiln_ir::expr::{lower, AffineExpr, TensorExpr};
use kiln_ir::Graph;

/// Element-operations below which a kernel stays on one thread.
const PAR_MIN_POINTS: usize = 1 << 15;

struct Generated {
    kernel: ExprKernel,
    in_place: Option<usize>,
    /// Output points times reduction points: the work per run.
    points: usize,
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
        let ins: Vec<usize> = (0..io.inputs.len())
            .map(|i| io.in_ptr(i) as usize)
            .collect();
        let out = io.out_ptr(0) as usize;
        let n = self.kernel.parallel_extent();
        let tasks = threads.min(n).min(self.points / PAR_MIN_POINTS).max(1);
        let run = |lo: usize, hi: usize| {
            let p: Vec<*const u8> = ins.iter().map(|&a| a as *const u8).collect();
            // SAFETY: the plan gives each input and the output a buffer of the
            // expression's types; tasks write disjoint outer iterations.
            unsafe { self.kernel.run_range(&p, out as *mut u8, lo, hi) };
        };
        split(n, tasks, |r| run(r.start, r.end));
        Ok(())
    }
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
fn expression(g: &Graph, group: &Group) -> Option<TensorExpr> {
    match (group.pattern, group.nodes.as_slice()) {
        (Pattern::Expression, _) => group_expression(g, group),
        (Pattern::Single, [p]) => lower(g, &g.nodes()[*p]).ok()?,
        _ => None,
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
    let kernel = match ExprKernel::compile(&e, &default_schedule(&e), &JitOptions::default()) {
        Ok(k) => k,
        Err(err) => {
            tracing::debug!(node = %last.name, error = %err, "JIT refused; interpreter fallback");
            return Ok(None);
        }
    };
    let red: usize = e
        .reduce
        .iter()
        .flat_map(|r| &r.iters)
        .map(|i| i.extent)
        .product();
    Ok(Some(Built {
        kernel: Box::new(Generated {
            kernel,
            in_place: in_place_candidate(&e),
            points: e.output.numel() * red,
            label: format!("jit[{}]", if e.reduce.is_some() { "reduce" } else { "map" }),
        }),
        inputs,
        outputs: last.outputs.clone(),
    }))
}
