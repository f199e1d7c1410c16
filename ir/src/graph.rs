//! The tensor graph: values with static types, nodes in topological order,
//! named inputs and outputs, and constant tensors (initializers).

use crate::{op_err, IrError, Op, Result, Tensor, TensorType};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Index of a value in its graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

/// Stable identity of a node: never reused within a graph, kept across edits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

/// Where a value comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// A named graph input, fed at run time.
    Input,
    /// A constant tensor (an initializer), shared and never copied.
    Const(Arc<Tensor>),
    /// Output number `.1` of node `.0`.
    Node(NodeId, usize),
}

/// A value: a named tensor with a static type.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub name: String,
    pub ty: TensorType,
    pub source: Source,
}

/// A node: an op applied to input values, producing output values.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub id: NodeId,
    pub name: String,
    pub op: Op,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
}

/// A graph of tensor ops. Nodes are kept in topological order: `add_node`
/// only accepts inputs that already exist, so the order of insertion is one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    pub name: String,
    values: Vec<Value>,
    nodes: Vec<Node>,
    inputs: Vec<ValueId>,
    outputs: Vec<ValueId>,
    next_node: u32,
    by_name: HashMap<String, ValueId>,
}

impl Graph {
    pub fn new(name: &str) -> Graph {
        Graph {
            name: name.to_string(),
            ..Graph::default()
        }
    }

    fn add_value(&mut self, name: &str, ty: TensorType, source: Source) -> Result<ValueId> {
        if self.by_name.contains_key(name) {
            return Err(IrError::Graph(format!(
                "value name `{name}` is defined twice"
            )));
        }
        let id = ValueId(self.values.len() as u32);
        self.values.push(Value {
            name: name.to_string(),
            ty,
            source,
        });
        self.by_name.insert(name.to_string(), id);
        Ok(id)
    }

    /// Declares a graph input.
    pub fn add_input(&mut self, name: &str, ty: TensorType) -> Result<ValueId> {
        let id = self.add_value(name, ty, Source::Input)?;
        self.inputs.push(id);
        Ok(id)
    }

    /// Adds a constant tensor (an initializer).
    pub fn add_const(&mut self, name: &str, t: impl Into<Arc<Tensor>>) -> Result<ValueId> {
        let t: Arc<Tensor> = t.into();
        self.add_value(name, t.ty(), Source::Const(t))
    }

    /// Adds a node; output types come from the op's type inference.
    /// Errors name the node and op.
    pub fn add_node(
        &mut self,
        name: &str,
        op: Op,
        inputs: &[ValueId],
        output_names: &[&str],
    ) -> Result<Vec<ValueId>> {
        let tys = self
            .infer_node(&op, inputs, output_names.len())
            .map_err(|e| e.at_node(name, &op.kind))?;
        let id = NodeId(self.next_node);
        self.next_node += 1;
        let mut outs = Vec::with_capacity(tys.len());
        for (k, (ty, out)) in tys.into_iter().zip(output_names).enumerate() {
            outs.push(
                self.add_value(out, ty, Source::Node(id, k))
                    .map_err(|e| e.at_node(name, &op.kind))?,
            );
        }
        self.nodes.push(Node {
            id,
            name: name.to_string(),
            op,
            inputs: inputs.to_vec(),
            outputs: outs.clone(),
        });
        Ok(outs)
    }

    fn infer_node(&self, op: &Op, inputs: &[ValueId], n_out: usize) -> Result<Vec<TensorType>> {
        for &i in inputs {
            if i.0 as usize >= self.values.len() {
                return Err(IrError::Graph(format!("input value {i:?} does not exist")));
            }
        }
        let tys: Vec<&TensorType> = inputs
            .iter()
            .map(|&i| &self.values[i.0 as usize].ty)
            .collect();
        let out = op.def()?.infer(&op.attrs, &tys, n_out)?;
        if out.len() != n_out {
            return Err(op_err!(
                "op produces {} outputs, node names {}",
                out.len(),
                n_out
            ));
        }
        Ok(out)
    }

    /// Sets the graph outputs.
    pub fn set_outputs(&mut self, outputs: Vec<ValueId>) {
        self.outputs = outputs;
    }

    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id.0 as usize]
    }
    /// Mutable access to a value, for passes that retype or rename; run [`crate::verify()`] after.
    pub fn value_mut(&mut self, id: ValueId) -> &mut Value {
        &mut self.values[id.0 as usize]
    }
    /// Mutable access to the nodes, for passes; run [`crate::verify()`] after.
    pub fn nodes_mut(&mut self) -> &mut [Node] {
        &mut self.nodes
    }
    pub fn values(&self) -> &[Value] {
        &self.values
    }
    /// Nodes in topological order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }
    pub fn inputs(&self) -> &[ValueId] {
        &self.inputs
    }
    pub fn outputs(&self) -> &[ValueId] {
        &self.outputs
    }
    /// Looks a value up by name.
    pub fn find(&self, name: &str) -> Option<ValueId> {
        self.by_name.get(name).copied()
    }
    /// The constant tensor of a value, if it is one.
    pub fn const_value(&self, id: ValueId) -> Option<&Arc<Tensor>> {
        match &self.value(id).source {
            Source::Const(t) => Some(t),
            _ => None,
        }
    }
    /// All constants (initializers) with their value ids.
    pub fn consts(&self) -> impl Iterator<Item = (ValueId, &Arc<Tensor>)> {
        self.values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| match &v.source {
                Source::Const(t) => Some((ValueId(i as u32), t)),
                _ => None,
            })
    }

    /// Turns a graph input into a constant (specialising the graph to that value).
    pub fn bind_input(&mut self, id: ValueId, t: Tensor) -> Result<()> {
        let v = &mut self.values[id.0 as usize];
        if v.source != Source::Input {
            return Err(IrError::Graph(format!("`{}` is not a graph input", v.name)));
        }
        if t.ty() != v.ty {
            return Err(IrError::Input(format!(
                "`{}` expects {}, got {}",
                v.name,
                v.ty,
                t.ty()
            )));
        }
        v.source = Source::Const(Arc::new(t));
        self.inputs.retain(|&i| i != id);
        Ok(())
    }

    /// Removes nodes whose outputs no graph output needs. Values stay (unused ones are harmless).
    pub fn remove_dead_nodes(&mut self) -> usize {
        let mut live: HashSet<ValueId> = self.outputs.iter().copied().collect();
        let mut keep = vec![false; self.nodes.len()];
        for (k, n) in self.nodes.iter().enumerate().rev() {
            if n.outputs.iter().any(|o| live.contains(o)) {
                keep[k] = true;
                live.extend(n.inputs.iter().copied());
            }
        }
        let before = self.nodes.len();
        let mut it = keep.into_iter();
        self.nodes.retain(|_| it.next().unwrap_or(true));
        before - self.nodes.len()
    }

    /// A copy holding only the values still used by nodes, inputs or outputs
    /// (ids are renumbered; names, node ids and order are kept).
    pub fn compacted(&self) -> Graph {
        let mut used: HashSet<ValueId> = self.inputs.iter().chain(&self.outputs).copied().collect();
        for n in &self.nodes {
            used.extend(n.inputs.iter().chain(&n.outputs).copied());
        }
        let mut map = HashMap::new();
        let mut g = Graph {
            name: self.name.clone(),
            next_node: self.next_node,
            ..Graph::default()
        };
        for (i, v) in self.values.iter().enumerate() {
            let id = ValueId(i as u32);
            if used.contains(&id) {
                map.insert(id, ValueId(g.values.len() as u32));
                g.by_name
                    .insert(v.name.clone(), ValueId(g.values.len() as u32));
                g.values.push(v.clone());
            }
        }
        let m = |v: &ValueId| map[v];
        g.inputs = self.inputs.iter().map(m).collect();
        g.outputs = self.outputs.iter().map(m).collect();
        g.nodes = self
            .nodes
            .iter()
            .map(|n| Node {
                inputs: n.inputs.iter().map(m).collect(),
                outputs: n.outputs.iter().map(m).collect(),
                ..n.clone()
            })
            .collect();
        g
    }

    /// Number of parameters (elements of all constants) and their bytes.
    pub fn param_stats(&self) -> (usize, usize) {
        self.consts()
            .fold((0, 0), |(n, b), (_, t)| (n + t.len(), b + t.ty().bytes()))
    }
}
