//! `Trilu`: the upper or lower triangle (diagonal offset `k`) of the last two
//! axes of a tensor of any dtype, everything else zero. Per matrix row the
//! kept columns are one contiguous range, so a row is a zero fill, a copy
//! and a zero fill (no per-element test).

use super::Built;
use crate::fusion::Group;
use crate::kernel::{Kernel, StepIo};
use crate::{CompileOptions, Result};
use kiln_ir::Graph;

struct Trilu {
    /// Matrices, their rows and columns, and bytes per element.
    batch: usize,
    rows: usize,
    cols: usize,
    elem: usize,
    upper: bool,
    k: i64,
}

impl Trilu {
    /// The kept columns `lo..hi` of matrix row `i`.
    fn kept(&self, i: usize) -> (usize, usize) {
        let cols = self.cols as i64;
        if self.upper {
            (
                (i as i64).saturating_add(self.k).clamp(0, cols) as usize,
                self.cols,
            )
        } else {
            let hi = (i as i64).saturating_add(self.k).saturating_add(1);
            (0, hi.clamp(0, cols) as usize)
        }
    }
}

impl Kernel for Trilu {
    fn describe(&self) -> String {
        format!("trilu[{}]", if self.upper { "upper" } else { "lower" })
    }

    fn run(&self, io: &mut StepIo<'_, '_>, _threads: usize) -> Result<()> {
        let (x, y, e) = (io.in_ptr(0), io.out_ptr(0), self.elem);
        for m in 0..self.batch {
            for i in 0..self.rows {
                let (lo, hi) = self.kept(i);
                let row = (m * self.rows + i) * self.cols * e;
                // SAFETY: row `i` of matrix `m` lies inside both tensors (same
                // type, checked at build time); zero bytes are zero of every dtype.
                unsafe {
                    std::ptr::write_bytes(y.add(row), 0, lo * e);
                    std::ptr::copy(x.add(row + lo * e), y.add(row + lo * e), (hi - lo) * e);
                    std::ptr::write_bytes(y.add(row + hi * e), 0, (self.cols - hi) * e);
                }
            }
        }
        Ok(())
    }
}

/// A `Trilu` node (`k` an attribute after import) of any dtype and rank ≥ 2.
pub(crate) fn build(g: &Graph, group: &Group, _: &CompileOptions) -> Result<Option<Built>> {
    let n = &g.nodes()[group.nodes[0]];
    if group.nodes.len() != 1 || n.op.kind != "Trilu" || n.inputs.len() != 1 {
        return Ok(None);
    }
    let x = &g.value(n.inputs[0]).ty;
    if x.rank() < 2 || g.value(n.outputs[0]).ty != *x {
        return Ok(None);
    }
    let r = x.rank();
    let (rows, cols) = (x.shape[r - 2], x.shape[r - 1]);
    Ok(Some(Built {
        kernel: Box::new(Trilu {
            batch: x.shape[..r - 2].iter().product(),
            rows,
            cols,
            elem: x.dtype.size_of(),
            upper: n.op.attrs.int_or("upper", 1)? != 0,
            k: n.op.attrs.int_or("k", 0)?,
        }),
        inputs: n.inputs.clone(),
        outputs: n.outputs.clone(),
    }))
}
