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

/// `GatherElements` on plain dtypes: `out[i] = data[i with axis ← idx[i]]`
/// element by element (the index tensor has the output's shape).
struct GatherElements {
    /// Output (= indices) shape and the data's element strides.
    shape: Vec<usize>,
    data_strides: Vec<usize>,
    axis: usize,
    axis_len: usize,
    elem: usize,
    wide: bool,
    node: String,
}

impl Kernel for GatherElements {
    fn describe(&self) -> String {
        "gather_elements[copy]".into()
    }

    fn run(&self, io: &mut StepIo<'_, '_>, _threads: usize) -> Result<()> {
        let (src, ip, dst) = (io.in_ptr(0), io.in_ptr(1), io.out_ptr(0));
        let total: usize = self.shape.iter().product();
        let mut at = vec![0usize; self.shape.len()];
        let n = self.axis_len as i64;
        for e in 0..total {
            // SAFETY: input 1 holds `total` i64 (or i32) indices.
            let raw = unsafe {
                match self.wide {
                    true => *(ip as *const i64).add(e),
                    false => *(ip as *const i32).add(e) as i64,
                }
            };
            let j = if raw < 0 { raw + n } else { raw };
            if !(0..n).contains(&j) {
                return Err(RuntimeError::Input(format!(
                    "node `{}` (GatherElements): index {raw} is out of range for an axis of {n}",
                    self.node
                )));
            }
            let off: usize = at
                .iter()
                .enumerate()
                .map(|(d, &i)| if d == self.axis { j as usize } else { i } * self.data_strides[d])
                .sum();
            // SAFETY: every coordinate is inside the data (indices' extents
            // are at most the data's, checked at build) and `e` inside the output.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    src.add(off * self.elem),
                    dst.add(e * self.elem),
                    self.elem,
                )
            };
            next_index(&mut at, &self.shape);
        }
        Ok(())
    }
}

/// Advances a row-major multi-index.
fn next_index(at: &mut [usize], shape: &[usize]) {
    for d in (0..at.len()).rev() {
        at[d] += 1;
        if at[d] < shape[d] {
            return;
        }
        at[d] = 0;
    }
}

pub(crate) fn build_elements(
    g: &Graph,
    group: &Group,
    opts: &CompileOptions,
) -> Result<Option<Built>> {
    let n = &g.nodes()[group.nodes[0]];
    if !opts.dense_kernels
        || n.op.kind != "GatherElements"
        || group.nodes.len() != 1
        || n.inputs.len() != 2
    {
        return Ok(None);
    }
    let (data, idx) = (&g.value(n.inputs[0]).ty, &g.value(n.inputs[1]).ty);
    let wide = match idx.dtype {
        DType::I64 => true,
        DType::I32 => false,
        _ => return Ok(None),
    };
    let rank = data.rank();
    if !is_plain(data.dtype) || rank == 0 || idx.rank() != rank {
        return Ok(None);
    }
    let axis = n.op.attrs.int_or("axis", 0)?;
    let axis = if axis < 0 { axis + rank as i64 } else { axis } as usize;
    let fits = (0..rank).all(|d| d == axis || idx.shape[d] <= data.shape[d]);
    if axis >= rank || !fits {
        return Ok(None);
    }
    let kernel = GatherElements {
        shape: idx.shape.clone(),
        data_strides: kiln_ir::strides(&data.shape),
        axis,
        axis_len: data.shape[axis],
        elem: data.dtype.size_of(),
        wide,
        node: n.name.clone(),
    };
    Ok(Some(Built {
        kernel: Box::new(kernel),
        inputs: n.inputs.clone(),
        outputs: n.outputs.clone(),
    }))
}
