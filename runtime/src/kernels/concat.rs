//! `Concat` on plain dtypes: each input's block of every outer slice is
//! copied to its place in the output, split over threads when large.
//!
//! Zero copy: when nothing precedes the axis but size-1 dims, each input is
//! one contiguous block of the output ([`Kernel::parts`]); the placement then
//! tries to put the input's buffer at that block, so its producer writes
//! straight into the output. At run time a block whose source already sits at
//! its destination is skipped; a concat whose inputs all do costs nothing.

use super::Built;
use crate::fusion::Group;
use crate::kernel::{Kernel, StepIo};
use crate::storage::is_plain;
use crate::{CompileOptions, Result};
use kiln_codegen::cpu::split;
use kiln_ir::Graph;

/// Bytes below which a concat copies on one thread.
const PAR_MIN_BYTES: usize = 1 << 18;

struct Concat {
    /// Slices before the axis.
    outer: usize,
    /// Bytes of one outer slice of the output.
    row: usize,
    /// Bytes of each input's block of one outer slice.
    blocks: Vec<usize>,
    /// Where each input's block starts within an outer slice of the output.
    starts: Vec<usize>,
}

/// One contiguous copy: (source, destination, bytes).
type Job = (usize, usize, usize);

impl Concat {
    /// The copies still to do: blocks already in place are left out.
    fn jobs(&self, io: &StepIo<'_, '_>) -> Vec<Job> {
        let dst = io.out_ptr(0) as usize;
        let mut jobs = Vec::new();
        for (i, (&len, &start)) in self.blocks.iter().zip(&self.starts).enumerate() {
            let src = io.in_ptr(i) as usize;
            if len == 0 || (self.outer == 1 && src == dst + start) {
                continue;
            }
            jobs.extend((0..self.outer).map(|o| (src + o * len, dst + o * self.row + start, len)));
        }
        jobs
    }
}

impl Kernel for Concat {
    fn describe(&self) -> String {
        format!("concat[{}]", self.blocks.len())
    }

    fn parts(&self) -> Option<Vec<usize>> {
        (self.outer == 1).then(|| self.starts.clone())
    }

    fn run(&self, io: &mut StepIo<'_, '_>, threads: usize) -> Result<()> {
        let jobs = self.jobs(io);
        let total: usize = jobs.iter().map(|j| j.2).sum();
        let tasks = threads.min(total / PAR_MIN_BYTES).max(1);
        let copy = |&(src, dst, len): &Job| {
            // SAFETY: each job lies inside one input's buffer and inside the
            // output's buffer; a block not in place never overlaps its source
            // (distinct values occupy disjoint bytes), and jobs are disjoint.
            unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst as *mut u8, len) }
        };
        if tasks == 1 {
            jobs.iter().for_each(copy);
            return Ok(());
        }
        let chunk = total.div_ceil(tasks);
        split(tasks, tasks, |r| {
            let (lo, hi) = (r.start * chunk, (r.end * chunk).min(total));
            copy_range(&jobs, lo, hi, &copy);
        });
        Ok(())
    }
}

/// Copies the bytes `lo..hi` of the jobs laid end to end.
fn copy_range(jobs: &[Job], lo: usize, hi: usize, copy: &dyn Fn(&Job)) {
    let mut at = 0;
    for &(src, dst, len) in jobs {
        let (a, b) = (lo.max(at), hi.min(at + len));
        if a < b {
            copy(&(src + a - at, dst + a - at, b - a));
        }
        at += len;
    }
}

pub(crate) fn build(g: &Graph, group: &Group, opts: &CompileOptions) -> Result<Option<Built>> {
    let n = &g.nodes()[group.nodes[0]];
    if !opts.dense_kernels || n.op.kind != "Concat" || group.nodes.len() != 1 {
        return Ok(None);
    }
    let y = &g.value(n.outputs[0]).ty;
    if !is_plain(y.dtype) || y.rank() == 0 || n.inputs.is_empty() {
        return Ok(None);
    }
    let rank = y.rank() as i64;
    let axis = n.op.attrs.int("axis")?;
    let axis = if axis < 0 { axis + rank } else { axis };
    if !(0..rank).contains(&axis) {
        return Ok(None);
    }
    let axis = axis as usize;
    let inner = y.shape[axis + 1..].iter().product::<usize>() * y.dtype.size_of();
    let blocks: Vec<usize> = n
        .inputs
        .iter()
        .map(|&v| g.value(v).ty.shape[axis] * inner)
        .collect();
    let starts = blocks
        .iter()
        .scan(0, |at, &b| {
            *at += b;
            Some(*at - b)
        })
        .collect();
    let kernel = Concat {
        outer: y.shape[..axis].iter().product(),
        row: y.shape[axis] * inner,
        blocks,
        starts,
    };
    Ok(Some(Built {
        kernel: Box::new(kernel),
        inputs: n.inputs.clone(),
        outputs: n.outputs.clone(),
    }))
}
