//! f32 `TopK` on any axis: per row along the axis, the `k` largest (or
//! smallest) values and their i64 indices, sorted, ties broken by the lower
//! index and NaN above every number (the interpreter's order). A row is
//! gathered once, partially selected (`select_nth_unstable_by`, O(n)) and
//! its first `k` sorted; rows are split over threads when there are many.

use super::Built;
use crate::fusion::Group;
use crate::kernel::{Kernel, StepIo};
use crate::{CompileOptions, Result};
use kiln_codegen::cpu::split;
use kiln_ir::{DType, Graph};
use std::cmp::Ordering;

/// Elements one extra task must have to be worth waking a thread.
const PAR_MIN_ELEMS: usize = 1 << 16;

struct TopK {
    outer: usize,
    n: usize,
    inner: usize,
    k: usize,
    largest: bool,
    /// Whether the indices output is wanted.
    indices: bool,
}

/// NaN above every number, then by value.
fn cmp(a: f32, b: f32) -> Ordering {
    a.partial_cmp(&b)
        .unwrap_or_else(|| a.is_nan().cmp(&b.is_nan()))
}

impl TopK {
    /// Row `r` (outer `r / inner`, inner `r % inner`) into `vals`/`idx`.
    fn row(&self, x: &[f32], r: usize, order: &mut Vec<(f32, u32)>, vals: *mut f32, idx: *mut i64) {
        let (o, i) = (r / self.inner, r % self.inner);
        let base = o * self.n * self.inner + i;
        order.clear();
        order.extend((0..self.n).map(|j| (x[base + j * self.inner], j as u32)));
        let by = |p: &(f32, u32), q: &(f32, u32)| {
            let c = cmp(p.0, q.0);
            (if self.largest { c.reverse() } else { c }).then(p.1.cmp(&q.1))
        };
        if self.k < self.n {
            order.select_nth_unstable_by(self.k, by);
        }
        order[..self.k].sort_unstable_by(by);
        let out = o * self.k * self.inner + i;
        for (j, &(v, p)) in order[..self.k].iter().enumerate() {
            // SAFETY: `out + j·inner` is inside the outputs (outer·k·inner elements).
            unsafe {
                *vals.add(out + j * self.inner) = v;
                if self.indices {
                    *idx.add(out + j * self.inner) = p as i64;
                }
            }
        }
    }
}

impl Kernel for TopK {
    fn describe(&self) -> String {
        format!(
            "topk[k{} {}]",
            self.k,
            if self.largest { "max" } else { "min" }
        )
    }

    fn run(&self, io: &mut StepIo<'_, '_>, threads: usize) -> Result<()> {
        let x = io.in_f32(0);
        // Addresses as integers: tasks write disjoint rows.
        let vals = io.out_f32(0).as_mut_ptr() as usize;
        let idx = match self.indices {
            true => io.out_ptr(1) as usize,
            false => 0,
        };
        let rows = self.outer * self.inner;
        let tasks = threads.min(rows * self.n / PAR_MIN_ELEMS).max(1);
        split(rows, tasks, |range| {
            let mut order = Vec::with_capacity(self.n);
            for r in range {
                self.row(x, r, &mut order, vals as *mut f32, idx as *mut i64);
            }
        });
        Ok(())
    }
}

pub(crate) fn build(g: &Graph, group: &Group, opts: &CompileOptions) -> Result<Option<Built>> {
    let n = &g.nodes()[group.nodes[0]];
    if !opts.dense_kernels || n.op.kind != "TopK" || group.nodes.len() != 1 || n.inputs.len() != 1 {
        return Ok(None);
    }
    let x = &g.value(n.inputs[0]).ty;
    if x.dtype != DType::F32 || x.rank() == 0 || n.outputs.is_empty() {
        return Ok(None);
    }
    let rank = x.rank() as i64;
    let axis = n.op.attrs.int_or("axis", -1)?;
    let axis = if axis < 0 { axis + rank } else { axis } as usize;
    let k = n.op.attrs.int("k")?;
    if axis >= x.rank() || k < 0 || k as usize > x.shape[axis] || x.shape[axis] > u32::MAX as usize
    {
        return Ok(None);
    }
    let kernel = TopK {
        outer: x.shape[..axis].iter().product(),
        n: x.shape[axis],
        inner: x.shape[axis + 1..].iter().product(),
        k: k as usize,
        largest: n.op.attrs.int_or("largest", 1)? != 0,
        indices: n.outputs.len() > 1,
    };
    Ok(Some(Built {
        kernel: Box::new(kernel),
        inputs: n.inputs.clone(),
        outputs: n.outputs.clone(),
    }))
}
