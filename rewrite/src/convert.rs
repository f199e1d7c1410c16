//! Graph <-> e-graph. A graph's values become e-classes (inputs by name,
//! constants through the analysis's table, one e-node per op output); back
//! from the e-graph, a chosen node per class is emitted as a graph that keeps
//! the input names and types, constants, and output names of the original.

use crate::analysis::{TGraph, TensorAnalysis};
use crate::lang::{OpNode, TNode};
use crate::{Result, RewriteError};
use egg::{Id, Symbol};
use kiln_ir::{Graph, Op, Source, ValueId};
use std::collections::HashMap;

/// A graph in an e-graph: the e-graph, the class of each graph output, and a
/// name for each class that held a named value.
pub struct Converted {
    pub egraph: TGraph,
    pub outputs: Vec<Id>,
    pub names: HashMap<Id, String>,
}

/// Adds every value of `g` to a new e-graph (constants fold up to `fold_limit` elements).
pub fn to_egraph(g: &Graph, fold_limit: usize) -> Converted {
    let mut analysis = TensorAnalysis::new(fold_limit);
    for &i in g.inputs() {
        let v = g.value(i);
        analysis
            .inputs
            .insert(Symbol::from(v.name.as_str()), v.ty.clone());
    }
    let mut eg = TGraph::new(analysis);
    let mut ids: HashMap<ValueId, Id> = HashMap::new();
    let mut names = HashMap::new();
    for (k, v) in g.values().iter().enumerate() {
        let vid = ValueId(k as u32);
        let id = match &v.source {
            Source::Input => eg.add(TNode::Input(Symbol::from(v.name.as_str()))),
            Source::Const(t) => {
                let c = eg.analysis.add_const(t.clone());
                eg.add(TNode::Const(c))
            }
            Source::Node(..) => continue,
        };
        ids.insert(vid, id);
        names.entry(id).or_insert_with(|| v.name.clone());
    }
    for n in g.nodes() {
        let attrs = eg.analysis.intern_attrs(&n.op.attrs);
        let args: Vec<Id> = n.inputs.iter().map(|v| ids[v]).collect();
        for (k, &o) in n.outputs.iter().enumerate() {
            let node = TNode::Op(OpNode {
                kind: Symbol::from(n.op.kind.as_str()),
                attrs,
                output: k as u8,
                outputs: n.outputs.len() as u8,
                args: args.clone(),
            });
            let id = eg.add(node);
            ids.insert(o, id);
            names.entry(id).or_insert_with(|| g.value(o).name.clone());
        }
    }
    eg.rebuild();
    let outputs = g.outputs().iter().map(|v| eg.find(ids[v])).collect();
    let names = names.into_iter().map(|(id, n)| (eg.find(id), n)).collect();
    Converted {
        egraph: eg,
        outputs,
        names,
    }
}

/// Emits the graph that computes `outputs` with `choose(class)` as each
/// class's node; inputs, constants and output names follow `original`.
pub fn from_egraph(
    eg: &TGraph,
    outputs: &[Id],
    names: &HashMap<Id, String>,
    original: &Graph,
    choose: &dyn Fn(Id) -> TNode,
) -> Result<Graph> {
    let mut e = Emitter {
        eg,
        names,
        choose,
        out: Graph::new(&original.name),
        done: HashMap::new(),
        fresh: 0,
    };
    for &i in original.inputs() {
        let v = original.value(i);
        let id = e.out.add_input(&v.name, v.ty.clone())?;
        let class = eg.lookup(TNode::Input(Symbol::from(v.name.as_str())));
        if let Some(c) = class {
            e.done.insert(eg.find(c), id);
        }
    }
    let mut outs = Vec::new();
    for (k, &o) in outputs.iter().enumerate() {
        let v = e.emit(eg.find(o))?;
        let want = &original.value(original.outputs()[k]).name;
        let v = if &e.out.value(v).name == want {
            v
        } else {
            let name = format!("{want}/identity");
            e.out
                .add_node(&name, Op::new("Identity"), &[v], &[want.as_str()])?[0]
        };
        outs.push(v);
    }
    e.out.set_outputs(outs);
    Ok(e.out)
}

struct Emitter<'a> {
    eg: &'a TGraph,
    names: &'a HashMap<Id, String>,
    choose: &'a dyn Fn(Id) -> TNode,
    out: Graph,
    done: HashMap<Id, ValueId>,
    fresh: usize,
}

impl Emitter<'_> {
    fn name_for(&mut self, class: Id) -> String {
        match self.names.get(&class) {
            Some(n) if self.out.find(n).is_none() => n.clone(),
            _ => loop {
                self.fresh += 1;
                let n = format!("rw{}", self.fresh);
                if self.out.find(&n).is_none() {
                    break n;
                }
            },
        }
    }

    fn emit(&mut self, class: Id) -> Result<ValueId> {
        if let Some(&v) = self.done.get(&class) {
            return Ok(v);
        }
        let node = (self.choose)(class);
        let v = match &node {
            TNode::Input(s) => self.out.find(s.as_str()).ok_or_else(|| {
                RewriteError::Graph(format!("input `{s}` is not an input of the graph"))
            })?,
            TNode::Const(c) => {
                let name = self.name_for(class);
                let t = self.eg.analysis.consts[*c as usize].clone();
                self.out.add_const(&name, t)?
            }
            TNode::Op(o) => self.emit_op(class, o)?,
        };
        self.done.insert(class, v);
        Ok(v)
    }

    /// Emits an op node with all its outputs; returns output `o.output`.
    fn emit_op(&mut self, class: Id, o: &OpNode) -> Result<ValueId> {
        let mut args = Vec::with_capacity(o.args.len());
        for &a in &o.args {
            args.push(self.emit(self.eg.find(a))?);
        }
        // Sibling outputs of a multi-output op are classes of their own.
        let siblings: Vec<Option<Id>> = (0..o.outputs)
            .map(|k| {
                let n = TNode::Op(OpNode {
                    output: k,
                    ..o.clone()
                });
                self.eg.lookup(n).map(|c| self.eg.find(c))
            })
            .collect();
        let names: Vec<String> = siblings
            .iter()
            .map(|s| self.name_for(s.unwrap_or(class)))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let op = self.eg.analysis.op_of(o);
        let node_name = format!("{}/{}", refs[o.output as usize], op.kind);
        let outs = self.out.add_node(&node_name, op, &args, &refs)?;
        for (k, s) in siblings.iter().enumerate() {
            if let Some(s) = s {
                self.done.insert(*s, outs[k]);
            }
        }
        Ok(outs[o.output as usize])
    }
}
