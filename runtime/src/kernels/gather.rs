//! `Gather` on plain dtypes: copies whole inner blocks (`data[.., idx, ..]`)
//! chosen by an i32/i64 index tensor. Negative indices count from the end;
//! an index out of range is a run-time error naming the node.

use super::Built;
use crate::fusion::Group;
use crate::kernel::{Kernel, StepIo};
use crate::storage::is_plain;
use crate::{CompileOptions, Result, RuntimeError};
use kiln_ir::{DType, Graph};

struct Gather {
    /// Blocks before the gathered axis.
    outer: usize,
    /// Length of the gathered axis.
    axis_len: usize,
    /// Bytes of one block after the axis.
    block: usize,
    indices: usize,
    wide: bool,
    node: String,
}

impl Gather {
    fn index(&self, io: &StepIo<'_, '_>, j: usize) -> Result<usize> {
        let p = io.in_ptr(1);
        // SAFETY: input 1 holds `indices` i64 (or i32) values and j < indices.
        let raw = unsafe {
            if self.wide {
                *(p as *const i64).add(j)
            } else {
                *(p as *const i32).add(j) as i64
            }
        };
        let n = self.axis_len as i64;
        let i = if raw < 0 { raw + n } else { raw };
        if !(0..n).contains(&i) {
            return Err(RuntimeError::Input(format!(
                "node `{}` (Gather): index {raw} is out of range for an axis of {n}",
                self.node
            )));
        }
        Ok(i as usize)
    }
}

impl Kernel for Gather {
    fn describe(&self) -> String {
        "gather[copy]".into()
    }

    fn run(&self, io: &mut StepIo<'_, '_>, _threads: usize) -> Result<()> {
        let idx = (0..self.indices)
            .map(|j| self.index(io, j))
            .collect::<Result<Vec<_>>>()?;
        let (src, dst) = (io.in_ptr(0), io.out_ptr(0));
        for o in 0..self.outer {
            for (j, &i) in idx.iter().enumerate() {
                // SAFETY: i < axis_len and o < outer address a block inside the
                // data; (o, j) addresses a block inside the output; the two
                // buffers are distinct.
                unsafe {
                    let from = src.add((o * self.axis_len + i) * self.block);
                    let to = dst.add((o * self.indices + j) * self.block);
                    std::ptr::copy_nonoverlapping(from, to, self.block);
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn build(g: &Graph, group: &Group, opts: &CompileOptions) -> Result<Option<Built>> {
    let n = &g.nodes()[group.nodes[0]];
    if !opts.dense_kernels || n.op.kind != "Gather" || group.nodes.len() != 1 || n.inputs.len() != 2
    {
        return Ok(None);
    }
    let (data, idx) = (&g.value(n.inputs[0]).ty, &g.value(n.inputs[1]).ty);
    let wide = match idx.dtype {
        DType::I64 => true,
        DType::I32 => false,
        _ => return Ok(None),
    };
    if !is_plain(data.dtype) || data.rank() == 0 {
        return Ok(None);
    }
    let rank = data.rank() as i64;
    let axis = n.op.attrs.int_or("axis", 0)?;
    let axis = if axis < 0 { axis + rank } else { axis };
    if !(0..rank).contains(&axis) {
        return Ok(None);
    }
    let axis = axis as usize;
    let kernel = Gather {
        outer: data.shape[..axis].iter().product(),
        axis_len: data.shape[axis],
        block: data.shape[axis + 1..].iter().product::<usize>() * data.dtype.size_of(),
        indices: idx.numel(),
        wide,
        node: n.name.clone(),
    };
    Ok(Some(Built {
        kernel: Box::new(kernel),
        inputs: n.inputs.clone(),
        outputs: n.outputs.clone(),
    }))
}
