//! The interpreter fallback: runs one node with its reference `eval`.
//!
//! This is the explicit, counted path for ops (or dtypes, or shapes) that no
//! compiled kernel covers yet; `compile` reports every use per op kind.

use crate::kernel::{Kernel, StepIo};
use crate::Result;
use kiln_ir::{Graph, Node, Op};

/// A node evaluated by the reference interpreter.
pub(crate) struct Fallback {
    op: Op,
    node: String,
    n_outputs: usize,
}

impl Fallback {
    pub fn new(_g: &Graph, n: &Node) -> Fallback {
        Fallback {
            op: n.op.clone(),
            node: n.name.clone(),
            n_outputs: n.outputs.len(),
        }
    }
}

impl Kernel for Fallback {
    fn describe(&self) -> String {
        format!("interpreter[{}]", self.op.kind)
    }

    fn run(&self, io: &mut StepIo<'_, '_>, _threads: usize) -> Result<()> {
        let at = |e: kiln_ir::IrError| e.at_node(&self.node, &self.op.kind);
        let outs = {
            let args = (0..io.inputs.len())
                .map(|i| io.in_tensor(i))
                .collect::<Result<Vec<_>>>()?;
            let refs: Vec<&kiln_ir::Tensor> = args.iter().map(|c| c.as_ref()).collect();
            let def = self.op.def().map_err(at)?;
            def.eval(&self.op.attrs, &refs, self.n_outputs)
                .map_err(at)?
        };
        for (i, t) in outs.into_iter().enumerate() {
            io.set_output(i, t)?;
        }
        Ok(())
    }
}
