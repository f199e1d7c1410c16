//! `verify`: checks a graph's structure and types, reporting the first inconsistency.

use crate::graph::Source;
use crate::{Graph, IrError, Result, TensorType};
use std::collections::HashSet;

/// Checks that every node's inputs are defined before it, that each value has one
/// producer, that re-running type inference gives the stored types, and that the
/// graph outputs exist. The error names the first offending node.
pub fn verify(g: &Graph) -> Result<()> {
    let mut defined: HashSet<u32> = HashSet::new();
    for (i, v) in g.values().iter().enumerate() {
        if matches!(v.source, Source::Input | Source::Const(_)) {
            defined.insert(i as u32);
        }
        if let Source::Const(t) = &v.source {
            if t.ty() != v.ty {
                return Err(IrError::Graph(format!(
                    "constant `{}` is declared {} but holds {}",
                    v.name,
                    v.ty,
                    t.ty()
                )));
            }
        }
    }
    for n in g.nodes() {
        let at = |e: IrError| e.at_node(&n.name, &n.op.kind);
        for &i in &n.inputs {
            if i.0 as usize >= g.values().len() || !defined.contains(&i.0) {
                return Err(at(IrError::Graph(format!(
                    "input {:?} is used before it is defined",
                    i
                ))));
            }
        }
        let tys: Vec<&TensorType> = n.inputs.iter().map(|&i| &g.value(i).ty).collect();
        let want =
            n.op.def()
                .map_err(at)?
                .infer(&n.op.attrs, &tys, n.outputs.len())
                .map_err(at)?;
        for (k, (&o, w)) in n.outputs.iter().zip(&want).enumerate() {
            let v = g.value(o);
            if v.source != Source::Node(n.id, k) {
                return Err(at(IrError::Graph(format!(
                    "output `{}` does not name this node as its producer",
                    v.name
                ))));
            }
            if &v.ty != w {
                return Err(at(IrError::Graph(format!(
                    "output `{}` is typed {} but inference gives {}",
                    v.name, v.ty, w
                ))));
            }
            if !defined.insert(o.0) {
                return Err(at(IrError::Graph(format!(
                    "output `{}` is defined twice",
                    v.name
                ))));
            }
        }
        if want.len() != n.outputs.len() {
            return Err(at(IrError::Graph(format!(
                "op gives {} outputs, node has {}",
                want.len(),
                n.outputs.len()
            ))));
        }
    }
    for &o in g.outputs() {
        if !defined.contains(&o.0) {
            return Err(IrError::Graph(format!(
                "graph output `{}` is never computed",
                g.value(o).name
            )));
        }
    }
    Ok(())
}
