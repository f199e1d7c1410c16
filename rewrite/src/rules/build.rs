//! A small graph builder for verification cases: inputs, constants and nodes
//! with generated names, so a case reads like the exporter's node list.

use super::f32s;
use kiln_ir::{Graph, Op, Tensor, ValueId};

pub(crate) struct Case {
    pub g: Graph,
    n: usize,
}

impl Case {
    pub fn new() -> Case {
        Case {
            g: Graph::new("case"),
            n: 0,
        }
    }

    fn fresh(&mut self, p: &str) -> String {
        self.n += 1;
        format!("{p}{}", self.n)
    }

    /// An f32 graph input.
    pub fn input(&mut self, shape: Vec<usize>) -> ValueId {
        let name = self.fresh("x");
        self.g.add_input(&name, f32s(shape)).expect("case input")
    }

    /// An f32 constant of one element, written as the exporter writes scalars.
    pub fn scalar(&mut self, v: f32) -> ValueId {
        let name = self.fresh("c");
        self.g
            .add_const(&name, Tensor::scalar(v))
            .expect("case const")
    }

    /// An f32 constant with deterministic non-zero values from `seed`.
    pub fn weights(&mut self, shape: Vec<usize>, seed: u64) -> ValueId {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|i| ((i as f32 + seed as f32 * 7.3) * 0.37).sin() * 0.5 + 0.1)
            .collect();
        let name = self.fresh("w");
        let t = Tensor::from_vec(shape, v).expect("case weights");
        self.g.add_const(&name, t).expect("case const")
    }

    /// A single-output node.
    pub fn op(&mut self, op: Op, args: &[ValueId]) -> ValueId {
        let name = self.fresh("v");
        let node = format!("n_{name}");
        self.g
            .add_node(&node, op, args, &[name.as_str()])
            .expect("case node")[0]
    }

    /// A single-output node without attributes.
    pub fn op0(&mut self, kind: &str, args: &[ValueId]) -> ValueId {
        self.op(Op::new(kind), args)
    }

    /// The graph with `out` as its output.
    pub fn finish(mut self, out: ValueId) -> Graph {
        self.g.set_outputs(vec![out]);
        self.g
    }
}
