//! `ScatterND`: the output is the data with the update slices written (or
//! combined with `add`/`mul`/`max`/`min`, f32 only) at the positions the
//! index tuples name, in index order (a later duplicate wins with `none`).
//! Negative indices count from the end; an index out of range is a
//! run-time error naming the node. Plain dtypes copy slices as bytes.

use super::Built;
use crate::fusion::Group;
use crate::kernel::{Kernel, StepIo};
use crate::storage::is_plain;
use crate::{CompileOptions, Result, RuntimeError};
use kiln_ir::{DType, Graph};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Reduce {
    None,
    Add,
    Mul,
    Max,
    Min,
}

struct ScatterNd {
    /// The data's extents over the first `k` axes and their element strides.
    dims: Vec<usize>,
    strides: Vec<usize>,
    /// Index tuples and elements per update slice.
    tuples: usize,
    slice: usize,
    total: usize,
    elem: usize,
    reduce: Reduce,
    node: String,
}

impl ScatterNd {
    /// Element offset of tuple `t` in the data.
    fn base(&self, idx: *const i64, t: usize) -> Result<usize> {
        let k = self.dims.len();
        let mut base = 0;
        for (j, (&d, &s)) in self.dims.iter().zip(&self.strides).enumerate() {
            // SAFETY: the indices hold `tuples · k` i64 values.
            let raw = unsafe { *idx.add(t * k + j) };
            let i = if raw < 0 { raw + d as i64 } else { raw };
            if !(0..d as i64).contains(&i) {
                return Err(RuntimeError::Input(format!(
                    "node `{}` (ScatterND): index {raw} is out of range for an axis of {d}",
                    self.node
                )));
            }
            base += i as usize * s;
        }
        Ok(base)
    }
}

impl Kernel for ScatterNd {
    fn describe(&self) -> String {
        format!("scatter_nd[{:?}]", self.reduce).to_lowercase()
    }

    fn run(&self, io: &mut StepIo<'_, '_>, _threads: usize) -> Result<()> {
        let (data, idx, upd, out) = (
            io.in_ptr(0),
            io.in_ptr(1) as *const i64,
            io.in_ptr(2),
            io.out_ptr(0),
        );
        // SAFETY: data and output hold `total` elements and do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(data, out, self.total * self.elem) };
        let bytes = self.slice * self.elem;
        for t in 0..self.tuples {
            let base = self.base(idx, t)?;
            // SAFETY: `base` addresses a whole slice inside the output (every
            // index was checked) and slice `t` is inside the updates.
            unsafe {
                let (src, dst) = (upd.add(t * bytes), out.add(base * self.elem));
                match self.reduce {
                    Reduce::None => std::ptr::copy_nonoverlapping(src, dst, bytes),
                    r => combine(r, src as *const f32, dst as *mut f32, self.slice),
                }
            }
        }
        Ok(())
    }
}

/// `dst[i] = r(dst[i], src[i])` over `n` f32 values (the interpreter's order: max/min keep `dst` unless `src` compares greater/less).
unsafe fn combine(r: Reduce, src: *const f32, dst: *mut f32, n: usize) {
    let (s, d) = (
        std::slice::from_raw_parts(src, n),
        std::slice::from_raw_parts_mut(dst, n),
    );
    for (a, &b) in d.iter_mut().zip(s) {
        *a = match r {
            Reduce::Add => *a + b,
            Reduce::Mul => *a * b,
            Reduce::Max if b > *a => b,
            Reduce::Min if b < *a => b,
            _ => *a,
        };
    }
}

pub(crate) fn build(g: &Graph, group: &Group, opts: &CompileOptions) -> Result<Option<Built>> {
    let n = &g.nodes()[group.nodes[0]];
    if !opts.dense_kernels
        || n.op.kind != "ScatterND"
        || group.nodes.len() != 1
        || n.inputs.len() != 3
    {
        return Ok(None);
    }
    let (data, idx) = (&g.value(n.inputs[0]).ty, &g.value(n.inputs[1]).ty);
    let reduce = match n.op.attrs.str_or("reduction", "none")? {
        "none" => Reduce::None,
        "add" => Reduce::Add,
        "mul" => Reduce::Mul,
        "max" => Reduce::Max,
        "min" => Reduce::Min,
        _ => return Ok(None),
    };
    let plain = is_plain(data.dtype) && (reduce == Reduce::None || data.dtype == DType::F32);
    if !plain || idx.dtype != DType::I64 || idx.rank() == 0 {
        return Ok(None);
    }
    let k = idx.shape[idx.rank() - 1];
    if k > data.rank() {
        return Ok(None);
    }
    let strides = kiln_ir::strides(&data.shape);
    let kernel = ScatterNd {
        dims: data.shape[..k].to_vec(),
        strides: strides[..k].to_vec(),
        tuples: idx.shape[..idx.rank() - 1].iter().product(),
        slice: data.shape[k..].iter().product(),
        total: data.numel(),
        elem: data.dtype.size_of(),
        reduce,
        node: n.name.clone(),
    };
    Ok(Some(Built {
        kernel: Box::new(kernel),
        inputs: n.inputs.clone(),
        outputs: n.outputs.clone(),
    }))
}
