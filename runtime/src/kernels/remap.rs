//! Separable data movement on plain dtypes: Slice, Pad (every mode),
//! CenterCropPad, Tile, and Expand/Transpose where the JIT does not take
//! them (integer dtypes), from [`kiln_ir::ops::shape::axis_map`].
//!
//! At build time every outer output axis gets a table of source byte
//! offsets, and the last axis becomes runs: contiguous copies, fills, or
//! single elements. A row's source is one sum of table entries; rows are
//! split over threads when the output is large.

use super::Built;
use crate::fusion::Group;
use crate::kernel::{Kernel, StepIo};
use crate::storage::{is_plain, tensor_ptr};
use crate::{CompileOptions, Result};
use kiln_codegen::cpu::split;
use kiln_ir::ops::shape::axis_map::{axis_maps, AxisMaps};
use kiln_ir::{Graph, Tensor};

/// Output bytes below which the copy stays on one thread.
const PAR_MIN_BYTES: usize = 1 << 18;

/// A source offset standing for "the fill value".
const FILL: i64 = -1;

/// A stretch of an output row.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Run {
    /// `len` elements from the source at byte offset `src` (plus the row's base).
    Copy { src: i64, len: usize },
    /// `len` fill elements.
    Fill { len: usize },
}

struct Remap {
    esize: usize,
    /// Rows: every output axis but the last, outermost first.
    outer: Vec<usize>,
    /// Per outer axis: source byte offset of each coordinate, or [`FILL`].
    tables: Vec<Vec<i64>>,
    runs: Vec<Run>,
    /// Bytes of one output row.
    row_bytes: usize,
    /// One fill element's bytes.
    fill: Vec<u8>,
    label: String,
}

impl Remap {
    /// Writes rows `lo..hi` of the output.
    ///
    /// # Safety
    /// `src` and `dst` hold the input and the output the kernel was built for.
    unsafe fn rows(&self, src: *const u8, dst: *mut u8, lo: usize, hi: usize) {
        let mut idx = unravel(lo, &self.outer);
        for r in lo..hi {
            let mut base = 0i64;
            for (t, &i) in self.tables.iter().zip(&idx) {
                base = if base == FILL || t[i] == FILL {
                    FILL
                } else {
                    base + t[i]
                };
            }
            let out = dst.add(r * self.row_bytes);
            if base == FILL {
                self.fill_bytes(out, self.row_bytes / self.esize);
            } else {
                self.row(src.offset(base as isize), out);
            }
            next(&mut idx, &self.outer);
        }
    }

    unsafe fn row(&self, src: *const u8, mut out: *mut u8) {
        for run in &self.runs {
            match *run {
                Run::Copy { src: s, len } => {
                    let n = len * self.esize;
                    std::ptr::copy_nonoverlapping(src.offset(s as isize), out, n);
                    out = out.add(n);
                }
                Run::Fill { len } => {
                    self.fill_bytes(out, len);
                    out = out.add(len * self.esize);
                }
            }
        }
    }

    unsafe fn fill_bytes(&self, out: *mut u8, len: usize) {
        if self.fill.iter().all(|&b| b == 0) {
            std::ptr::write_bytes(out, 0, len * self.esize);
            return;
        }
        for k in 0..len {
            std::ptr::copy_nonoverlapping(self.fill.as_ptr(), out.add(k * self.esize), self.esize);
        }
    }
}

/// The multi-index of flat position `flat` in `shape`.
fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = flat % shape[d].max(1);
        flat /= shape[d].max(1);
    }
    idx
}

/// Advances a row-major multi-index by one.
fn next(idx: &mut [usize], shape: &[usize]) {
    for d in (0..idx.len()).rev() {
        idx[d] += 1;
        if idx[d] < shape[d] {
            return;
        }
        idx[d] = 0;
    }
}

impl Kernel for Remap {
    fn describe(&self) -> String {
        self.label.clone()
    }

    fn run(&self, io: &mut StepIo<'_, '_>, threads: usize) -> Result<()> {
        let rows: usize = self.outer.iter().product();
        let (src, dst) = (io.in_ptr(0) as usize, io.out_ptr(0) as usize);
        let tasks = threads.min(rows * self.row_bytes / PAR_MIN_BYTES).max(1);
        // SAFETY: the plan gives the input and output buffers of the built
        // types; tasks write disjoint rows.
        split(rows, tasks, |r| unsafe {
            self.rows(src as *const u8, dst as *mut u8, r.start, r.end)
        });
        Ok(())
    }
}

/// The last axis's runs from its per-coordinate source offsets.
fn runs(offsets: &[i64], esize: i64) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    for &o in offsets {
        match (out.last_mut(), o) {
            (Some(Run::Fill { len }), FILL) => *len += 1,
            (Some(Run::Copy { src, len }), o) if o != FILL && o == *src + *len as i64 * esize => {
                *len += 1
            }
            (_, FILL) => out.push(Run::Fill { len: 1 }),
            (_, o) => out.push(Run::Copy { src: o, len: 1 }),
        }
    }
    out
}

/// Per output axis: the byte offset of each coordinate (or [`FILL`]).
fn byte_tables(m: &AxisMaps, in_shape: &[usize], esize: usize) -> Vec<Vec<i64>> {
    let st = kiln_ir::strides(in_shape);
    m.coords
        .iter()
        .zip(&m.axis)
        .map(|(c, ax)| {
            let stride = ax.map_or(0, |a| (st[a] * esize) as i64);
            c.iter()
                .map(|x| x.map_or(FILL, |x| x as i64 * stride))
                .collect()
        })
        .collect()
}

pub(crate) fn build(g: &Graph, group: &Group, opts: &CompileOptions) -> Result<Option<Built>> {
    let n = &g.nodes()[group.nodes[0]];
    if !opts.dense_kernels || group.nodes.len() != 1 || n.outputs.len() != 1 || n.inputs.len() != 1
    {
        return Ok(None);
    }
    let (x, y) = (&g.value(n.inputs[0]).ty, &g.value(n.outputs[0]).ty);
    if !is_plain(x.dtype) || y.rank() == 0 || y.numel() == 0 {
        return Ok(None);
    }
    let Some(m) = axis_maps(&n.op.kind, &n.op.attrs, &x.shape)? else {
        return Ok(None);
    };
    if m.shape() != y.shape || (x.numel() == 0 && m.coords.iter().flatten().any(Option::is_some)) {
        return Ok(None);
    }
    let esize = x.dtype.size_of();
    let mut tables = byte_tables(&m, &x.shape, esize);
    let last = tables.pop().expect("rank >= 1");
    let fill = Tensor::from_vec(vec![1], vec![m.fill])?.cast(x.dtype);
    let Some(p) = tensor_ptr(&fill) else {
        return Ok(None);
    };
    // SAFETY: a one-element plain tensor holds `esize` bytes at `p`.
    let fill = unsafe { std::slice::from_raw_parts(p, esize) }.to_vec();
    let kernel = Remap {
        esize,
        outer: y.shape[..y.rank() - 1].to_vec(),
        tables,
        runs: runs(&last, esize as i64),
        row_bytes: y.shape[y.rank() - 1] * esize,
        fill,
        label: format!("copy[{}]", n.op.kind.to_lowercase()),
    };
    Ok(Some(Built {
        kernel: Box::new(kernel),
        inputs: n.inputs.clone(),
        outputs: n.outputs.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_contiguous_copies_and_fills() {
        let r = runs(&[FILL, FILL, 8, 12, 16, 4, FILL], 4);
        assert_eq!(
            r,
            vec![
                Run::Fill { len: 2 },
                Run::Copy { src: 8, len: 3 },
                Run::Copy { src: 4, len: 1 },
                Run::Fill { len: 1 }
            ]
        );
    }

    #[test]
    fn unravel_and_next_agree() {
        let shape = [2, 3, 4];
        let mut idx = unravel(0, &shape);
        for flat in 0..24 {
            assert_eq!(idx, unravel(flat, &shape));
            next(&mut idx, &shape);
        }
    }
}
