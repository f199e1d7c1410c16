//! Who reads each value: consumers per value and graph-output membership.

use kiln_ir::{Graph, ValueId};

/// Use counts and consumers of every value of a graph.
pub(crate) struct Uses {
    /// For each value, the nodes (by position) that read it, once per read.
    readers: Vec<Vec<usize>>,
    is_output: Vec<bool>,
}

impl Uses {
    pub fn new(g: &Graph) -> Uses {
        let mut readers = vec![Vec::new(); g.values().len()];
        for (pos, n) in g.nodes().iter().enumerate() {
            for v in &n.inputs {
                readers[v.0 as usize].push(pos);
            }
        }
        let mut is_output = vec![false; g.values().len()];
        for o in g.outputs() {
            is_output[o.0 as usize] = true;
        }
        Uses { readers, is_output }
    }

    /// The single node reading `v` exactly once, if `v` is not a graph output
    /// and has no other reader.
    pub fn sole_reader(&self, v: ValueId) -> Option<usize> {
        match self.readers[v.0 as usize].as_slice() {
            [only] if !self.is_output[v.0 as usize] => Some(*only),
            _ => None,
        }
    }

    /// The nodes (by position) reading `v`, once per read.
    pub fn readers(&self, v: ValueId) -> &[usize] {
        &self.readers[v.0 as usize]
    }

    pub fn is_output(&self, v: ValueId) -> bool {
        self.is_output[v.0 as usize]
    }
}
