//! `Split` on plain dtypes: each output copies its block of every outer
//! slice (`data[.., start..start + len, ..]`), sizes fixed at compile time.

use super::Built;
use crate::fusion::Group;
use crate::kernel::{Kernel, StepIo};
use crate::storage::is_plain;
use crate::{CompileOptions, Result};
use kiln_ir::Graph;

struct Split {
    /// Slices before the split axis.
    outer: usize,
    /// Bytes of one outer slice of the input.
    row: usize,
    /// Bytes of each output's block of one outer slice.
    parts: Vec<usize>,
}

impl Kernel for Split {
    fn describe(&self) -> String {
        format!("split[{}]", self.parts.len())
    }

    fn run(&self, io: &mut StepIo<'_, '_>, _threads: usize) -> Result<()> {
        let src = io.in_ptr(0);
        let mut start = 0;
        for (i, &len) in self.parts.iter().enumerate() {
            let dst = io.out_ptr(i);
            for o in 0..self.outer {
                // SAFETY: start + len <= row, so the block lies in outer slice
                // o of the input; output i holds outer * len bytes; distinct buffers.
                unsafe {
                    let from = src.add(o * self.row + start);
                    std::ptr::copy_nonoverlapping(from, dst.add(o * len), len);
                }
            }
            start += len;
        }
        Ok(())
    }
}

pub(crate) fn build(g: &Graph, group: &Group, opts: &CompileOptions) -> Result<Option<Built>> {
    let n = &g.nodes()[group.nodes[0]];
    if !opts.dense_kernels || n.op.kind != "Split" || group.nodes.len() != 1 || n.inputs.len() != 1
    {
        return Ok(None);
    }
    let x = &g.value(n.inputs[0]).ty;
    if !is_plain(x.dtype) || x.rank() == 0 {
        return Ok(None);
    }
    let rank = x.rank() as i64;
    let axis = n.op.attrs.int_or("axis", 0)?;
    let axis = if axis < 0 { axis + rank } else { axis };
    if !(0..rank).contains(&axis) {
        return Ok(None);
    }
    let axis = axis as usize;
    let inner = x.shape[axis + 1..].iter().product::<usize>() * x.dtype.size_of();
    let parts: Vec<usize> = n
        .outputs
        .iter()
        .map(|&o| g.value(o).ty.shape[axis] * inner)
        .collect();
    let row = x.shape[axis] * inner;
    if parts.iter().sum::<usize>() > row {
        return Ok(None);
    }
    let kernel = Split {
        outer: x.shape[..axis].iter().product(),
        row,
        parts,
    };
    Ok(Some(Built {
        kernel: Box::new(kernel),
        inputs: n.inputs.clone(),
        outputs: n.outputs.clone(),
    }))
}
