//! The reference interpreter: evaluates a graph node by node on the host.
//!
//! It is the oracle every faster path is checked against, so it favours
//! clarity over speed. Intermediate values are dropped after their last use.

use crate::graph::Source;
use crate::{Graph, IrError, Result, Tensor, ValueId};
use std::collections::HashMap;
use std::sync::Arc;

/// Checks named inputs against the graph: every input given once, with the right dtype and shape.
pub fn check_inputs(g: &Graph, inputs: &HashMap<String, Tensor>) -> Result<()> {
    let expected = || {
        g.inputs()
            .iter()
            .map(|&i| format!("{}: {}", g.value(i).name, g.value(i).ty))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for &i in g.inputs() {
        let v = g.value(i);
        match inputs.get(&v.name) {
            None => {
                return Err(IrError::Input(format!(
                    "missing input `{}`; the model expects {}",
                    v.name,
                    expected()
                )))
            }
            Some(t) if t.ty() != v.ty => {
                return Err(IrError::Input(format!(
                    "input `{}` must be {}, got {}",
                    v.name,
                    v.ty,
                    t.ty()
                )))
            }
            Some(_) => {}
        }
    }
    for name in inputs.keys() {
        if !g.inputs().iter().any(|&i| &g.value(i).name == name) {
            return Err(IrError::Input(format!(
                "unknown input `{name}`; the model expects {}",
                expected()
            )));
        }
    }
    Ok(())
}

/// Runs the graph on named inputs and returns the graph outputs in order.
pub fn run(g: &Graph, inputs: &HashMap<String, Tensor>) -> Result<Vec<Tensor>> {
    check_inputs(g, inputs)?;
    let mut uses: HashMap<ValueId, usize> = HashMap::new();
    for n in g.nodes() {
        for &i in &n.inputs {
            *uses.entry(i).or_default() += 1;
        }
    }
    for &o in g.outputs() {
        *uses.entry(o).or_default() += 1;
    }
    let mut env: HashMap<ValueId, Arc<Tensor>> = HashMap::new();
    for (i, v) in g.values().iter().enumerate() {
        let id = ValueId(i as u32);
        match &v.source {
            Source::Input => {
                env.insert(id, Arc::new(inputs[&v.name].clone()));
            }
            Source::Const(t) => {
                env.insert(id, t.clone());
            }
            Source::Node(..) => {}
        }
    }
    for n in g.nodes() {
        let at = |e: IrError| e.at_node(&n.name, &n.op.kind);
        let args: Vec<Arc<Tensor>> = n.inputs.iter().map(|i| env[i].clone()).collect();
        let refs: Vec<&Tensor> = args.iter().map(|a| a.as_ref()).collect();
        let outs =
            n.op.def()
                .map_err(at)?
                .eval(&n.op.attrs, &refs, n.outputs.len())
                .map_err(at)?;
        drop(refs);
        drop(args);
        for (o, t) in n.outputs.iter().zip(outs) {
            let want = &g.value(*o).ty;
            if &t.ty() != want {
                return Err(at(IrError::Op(format!(
                    "evaluation gave {} for `{}`, inference said {}",
                    t.ty(),
                    g.value(*o).name,
                    want
                ))));
            }
            env.insert(*o, Arc::new(t));
        }
        for &i in &n.inputs {
            if let Some(c) = uses.get_mut(&i) {
                *c -= 1;
                if *c == 0 && !matches!(g.value(i).source, Source::Const(_)) {
                    env.remove(&i);
                }
            }
        }
    }
    Ok(g.outputs()
        .iter()
        .map(|o| Arc::unwrap_or_clone(env[o].clone()))
        .collect())
}
