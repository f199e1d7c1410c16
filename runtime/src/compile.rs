//! The compile pipeline: fusion plan, kernel selection, memory planning.
//!
//! `graph -> FusionPlan -> one kernel per group (builders, most specialised
//! first; the interpreter for single nodes nothing else takes; a fused group
//! nothing takes is split into its nodes) -> value locations (inputs and
//! constants in place, reshapes as views, intermediates in one planned arena)
//! -> Executable`.

use crate::executable::{Executable, Step};
use crate::fusion::{self, FusionPlan, Group, Pattern};
use crate::kernels::{build_group, Built};
use crate::placement;
use crate::report::{CompileReport, KernelReport};
use crate::storage::Slot;
use crate::tuning;
use crate::{CompileOptions, Result, RuntimeError};
use kiln_codegen::cpu::SpinPool;
use kiln_ir::{Graph, Source, ValueId};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Compiles `g` with the default fusion decisions.
pub fn compile(g: &Graph, opts: &CompileOptions) -> Result<Executable> {
    let plan = fusion::plan(g, opts);
    compile_with_plan(g, &plan, opts)
}

/// Compiles `g` with the given fusion decisions (see [`fusion::plan`]).
pub fn compile_with_plan(
    g: &Graph,
    plan: &FusionPlan,
    opts: &CompileOptions,
) -> Result<Executable> {
    let t0 = Instant::now();
    if opts.threads == 0 {
        return Err(RuntimeError::Options("threads must be at least 1".into()));
    }
    check_plan(g, plan)?;
    let mut report = CompileReport {
        threads: opts.threads,
        nodes: g.nodes().len(),
        ..Default::default()
    };
    let mut built: Vec<(Built, Vec<usize>)> = Vec::new();
    let mut threads = Vec::new();
    let mut alias_of: HashMap<ValueId, ValueId> = HashMap::new();
    for group in &plan.groups {
        if group.pattern == Pattern::Alias {
            let n = &g.nodes()[group.nodes[0]];
            alias_of.insert(n.outputs[0], n.inputs[0]);
            report.aliases += 1;
            continue;
        }
        for (family, b, nodes) in build_group(g, group, opts)? {
            let t = step_threads(g, &nodes, family, opts, &mut report);
            let b = match t == opts.threads {
                true => b,
                false => rebuild(g, group, &nodes, family, opts, t)?.unwrap_or(b),
            };
            record(g, &b, &nodes, &mut report);
            threads.push(t);
            built.push((b, nodes));
        }
    }
    if !opts.tuned.is_empty() {
        report.tuned_kernels += plan
            .choices
            .iter()
            .filter(|c| tuning::config(opts, g, &c.nodes, "fusion").is_some())
            .count();
    }
    let mut exe = place(g, built, threads, &alias_of, opts, report)?;
    exe.report.compile_ms = t0.elapsed().as_secs_f64() * 1e3;
    tracing::info!(
        kernels = exe.steps.len(),
        fallbacks = exe.report.fallback_count(),
        arena = exe.arena_bytes,
        ms = exe.report.compile_ms,
        "compiled"
    );
    Ok(exe)
}

/// Every node in exactly one group, reshape-like groups single, and each
/// group's inputs computed before it runs.
fn check_plan(g: &Graph, plan: &FusionPlan) -> Result<()> {
    let bad = |m: String| Err(RuntimeError::Options(format!("invalid fusion plan: {m}")));
    let mut seen = vec![false; g.nodes().len()];
    let mut ready: Vec<bool> = g
        .values()
        .iter()
        .map(|v| !matches!(v.source, Source::Node(..)))
        .collect();
    for group in &plan.groups {
        if group.nodes.is_empty() || (group.pattern == Pattern::Alias && group.nodes.len() != 1) {
            return bad("an empty group or a multi-node alias".into());
        }
        for &p in &group.nodes {
            if p >= seen.len() || std::mem::replace(&mut seen[p], true) {
                return bad(format!("node #{p} is missing or in two groups"));
            }
        }
        for &p in &group.nodes {
            let n = &g.nodes()[p];
            if let Some(v) = n.inputs.iter().find(|v| !ready[v.0 as usize]) {
                return bad(format!(
                    "`{}` reads `{}` before it is computed",
                    n.name,
                    g.value(*v).name
                ));
            }
            n.outputs.iter().for_each(|o| ready[o.0 as usize] = true);
        }
    }
    match seen.iter().position(|s| !s) {
        Some(p) => bad(format!("node `{}` is in no group", g.nodes()[p].name)),
        None => Ok(()),
    }
}

/// The kernel of `nodes` (all of `group`, or one node of it) built again
/// for `threads` threads, so that its scratch and work split fit the
/// `threads` knob; `None` if the same builder does not take it then.
fn rebuild(
    g: &Graph,
    group: &Group,
    nodes: &[usize],
    family: &str,
    opts: &CompileOptions,
    threads: usize,
) -> Result<Option<Built>> {
    let part = Group {
        nodes: nodes.to_vec(),
        pattern: match nodes == group.nodes.as_slice() {
            true => group.pattern,
            false => Pattern::Single,
        },
    };
    let fewer = opts.clone().with_threads(threads);
    Ok(build_group(g, &part, &fewer)?
        .into_iter()
        .find(|(f, _, n)| *f == family && n == nodes)
        .map(|(_, b, _)| b))
}

/// The step's `threads` knob (the pool's size unless tuned), counting tuned steps.
fn step_threads(
    g: &Graph,
    nodes: &[usize],
    family: &str,
    opts: &CompileOptions,
    report: &mut CompileReport,
) -> usize {
    if opts.tuned.is_empty() {
        return opts.threads;
    }
    let c = tuning::config(opts, g, nodes, family);
    if c.is_some() {
        report.tuned_kernels += 1;
    }
    tuning::int_knob(c, "threads").map_or(opts.threads, |t| (t.max(1) as usize).min(opts.threads))
}

fn record(g: &Graph, b: &Built, nodes: &[usize], report: &mut CompileReport) {
    let ops: Vec<String> = nodes
        .iter()
        .map(|&p| g.nodes()[p].op.kind.clone())
        .collect();
    let kernel = b.kernel.describe();
    if kernel.starts_with("interpreter[") {
        *report.fallbacks.entry(ops[0].clone()).or_default() += 1;
    }
    if nodes.len() > 1 {
        report.fused_groups += 1;
    }
    report.kernels.push(KernelReport {
        node: g.nodes()[*nodes.last().expect("group")].name.clone(),
        kernel,
        ops,
        nodes: nodes.iter().map(|&p| g.nodes()[p].name.clone()).collect(),
    });
}

fn place(
    g: &Graph,
    built: Vec<(Built, Vec<usize>)>,
    threads: Vec<usize>,
    views: &HashMap<ValueId, ValueId>,
    opts: &CompileOptions,
    mut report: CompileReport,
) -> Result<Executable> {
    let p = placement::place(g, &built, views);
    let slot = |v: ValueId| -> Result<Slot> {
        let loc = p.loc(v).ok_or_else(|| {
            RuntimeError::Options(format!(
                "internal: value `{}` has no location",
                g.value(v).name
            ))
        })?;
        Ok(Slot {
            loc,
            ty: g.value(v).ty.clone(),
        })
    };
    let mut steps = Vec::with_capacity(built.len());
    for (s, ((b, nodes), threads)) in built.into_iter().zip(threads).enumerate() {
        steps.push(Step {
            threads,
            inputs: b.inputs.iter().map(|&v| slot(v)).collect::<Result<_>>()?,
            outputs: b.outputs.iter().map(|&v| slot(v)).collect::<Result<_>>()?,
            scratch_offset: p.scratch[s],
            node: g.nodes()[*nodes.last().expect("group")].name.clone(),
            kernel: b.kernel,
        });
    }
    let outputs = g
        .outputs()
        .iter()
        .map(|&v| Ok((g.value(v).name.clone(), slot(v)?)))
        .collect::<Result<_>>()?;
    report.arena_bytes = p.memory.arena_bytes;
    report.unshared_bytes = p.memory.total_bytes;
    report.boxed_values = p.boxed;
    report.in_place = p.in_place;
    report.concat_parts = p.parts.len();
    let pool = if opts.threads > 1 {
        let spin = std::time::Duration::from_micros(opts.spin_us);
        Some(
            SpinPool::new(opts.threads, spin).map_err(|e| RuntimeError::ThreadPool {
                threads: opts.threads,
                reason: e.to_string(),
            })?,
        )
    } else {
        None
    };
    Ok(Executable {
        steps,
        consts: p.consts,
        inputs: g
            .inputs()
            .iter()
            .map(|&v| (g.value(v).name.clone(), g.value(v).ty.clone()))
            .collect(),
        outputs,
        arena_bytes: p.memory.arena_bytes,
        boxed_slots: p.boxed,
        pool,
        frames: Mutex::new(Vec::new()),
        report,
    })
}
