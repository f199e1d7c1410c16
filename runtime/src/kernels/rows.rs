//! Row kernels: `Softmax` and `LayerNormalization` (f32), each one fused
//! kernel (max, exp, sum and scale; mean, variance, scale and shift), and
//! `GlobalAveragePool` as row means over each channel's plane. Softmax over
//! the last axis takes the row kernel; `LogSoftmax`, and `Softmax` over any
//! other axis (or over trailing axes, opsets 1-12), the axis kernel.
//! LayerNormalization normalises over every axis from `axis` on as rows;
//! ArgMax/ArgMin scan any axis ([`build_arg`]); CumSum runs along any axis
//! ([`build_cumsum`]).

use super::Built;
use crate::fusion::Group;
use crate::kernel::{Kernel, StepIo};
use crate::{CompileOptions, Result};
use kiln_codegen::cpu::kernels::{
    arg_reduce_f32, cumsum, layer_norm_rows_f32, mean_rows_f32, softmax_axis_f32, softmax_rows_f32,
    ArgSpec, AxisShape, CumElem, CumSpec, SoftmaxKind,
};
use kiln_ir::{DType, Graph, Node};

struct Softmax {
    rows: usize,
    cols: usize,
    node: String,
}

struct LayerNorm {
    rows: usize,
    cols: usize,
    eps: f32,
    beta: bool,
    node: String,
}

struct MeanRows {
    rows: usize,
    cols: usize,
    node: String,
}

impl Kernel for MeanRows {
    fn describe(&self) -> String {
        "mean[rows]".into()
    }
    fn run(&self, io: &mut StepIo<'_, '_>, threads: usize) -> Result<()> {
        mean_rows_f32(io.in_f32(0), io.out_f32(0), self.rows, self.cols, threads)
            .map_err(super::kernel_err(&self.node))
    }
}

/// `GlobalAveragePool` of an f32 N×C×spatial… input: rows N·C, columns the
/// spatial size (non-empty).
fn pool_rows(g: &Graph, n: &Node) -> Option<(usize, usize)> {
    let ty = &g.value(*n.inputs.first()?).ty;
    let f32s = ty.dtype == DType::F32 && g.value(*n.outputs.first()?).ty.dtype == DType::F32;
    if n.outputs.len() != 1 || !f32s || ty.rank() < 3 {
        return None;
    }
    let rows = ty.shape[0] * ty.shape[1];
    let cols: usize = ty.shape[2..].iter().product();
    (cols > 0).then_some((rows, cols))
}

impl Kernel for Softmax {
    fn describe(&self) -> String {
        "softmax[rows]".into()
    }
    fn run(&self, io: &mut StepIo<'_, '_>, threads: usize) -> Result<()> {
        softmax_rows_f32(io.in_f32(0), io.out_f32(0), self.rows, self.cols, threads)
            .map_err(super::kernel_err(&self.node))
    }
}

struct SoftmaxAxis {
    shape: AxisShape,
    kind: SoftmaxKind,
    node: String,
}

impl Kernel for SoftmaxAxis {
    fn describe(&self) -> String {
        let k = match self.kind {
            SoftmaxKind::Softmax => "softmax",
            SoftmaxKind::LogSoftmax => "log_softmax",
        };
        format!("{k}[axis]")
    }
    fn run(&self, io: &mut StepIo<'_, '_>, threads: usize) -> Result<()> {
        softmax_axis_f32(io.in_f32(0), io.out_f32(0), self.shape, self.kind, threads)
            .map_err(super::kernel_err(&self.node))
    }
}

/// `[outer, len, inner]` of a Softmax-family node's f32 input and output.
fn axis_shape(g: &Graph, n: &Node) -> Result<Option<AxisShape>> {
    let f32s = n.inputs.len() == 1
        && n.outputs.len() == 1
        && g.value(n.inputs[0]).ty.dtype == DType::F32
        && g.value(n.outputs[0]).ty.dtype == DType::F32;
    let ty = &g.value(n.inputs[0]).ty;
    let rank = ty.rank() as i64;
    let axis = n.op.attrs.int_or("axis", -1)?;
    let axis = if axis < 0 { axis + rank } else { axis };
    if !f32s || !(0..rank).contains(&axis) {
        return Ok(None);
    }
    let a = axis as usize;
    let outer = ty.shape[..a].iter().product();
    let shape = if n.op.attrs.int_or("coerce_2d", 0)? != 0 {
        AxisShape {
            outer,
            len: ty.shape[a..].iter().product(),
            inner: 1,
        }
    } else {
        around(&ty.shape, a)
    };
    Ok(Some(shape))
}

impl Kernel for LayerNorm {
    fn describe(&self) -> String {
        "layer_norm[rows]".into()
    }
    fn run(&self, io: &mut StepIo<'_, '_>, threads: usize) -> Result<()> {
        let beta = self.beta.then(|| io.in_f32(2));
        let (x, gamma, y) = (io.in_f32(0), io.in_f32(1), io.out_f32(0));
        layer_norm_rows_f32(x, gamma, beta, self.eps, y, self.rows, self.cols, threads)
            .map_err(super::kernel_err(&self.node))
    }
}

/// Rows and columns of a LayerNormalization: every value f32, one output,
/// normalised over the axes from `axis` on.
fn norm_rows(g: &Graph, n: &Node) -> Result<Option<(usize, usize)>> {
    if n.outputs.len() != 1 || n.inputs.iter().any(|&v| g.value(v).ty.dtype != DType::F32) {
        return Ok(None);
    }
    let ty = &g.value(n.inputs[0]).ty;
    let rank = ty.rank() as i64;
    let axis = n.op.attrs.int_or("axis", -1)?;
    let axis = if axis < 0 { axis + rank } else { axis };
    if !(0..rank).contains(&axis) || g.value(n.outputs[0]).ty.dtype != DType::F32 {
        return Ok(None);
    }
    let cols: usize = ty.shape[axis as usize..].iter().product();
    Ok(Some((ty.numel() / cols.max(1), cols)))
}

pub(crate) fn build(g: &Graph, group: &Group, opts: &CompileOptions) -> Result<Option<Built>> {
    let n = &g.nodes()[group.nodes[0]];
    if !opts.dense_kernels || group.nodes.len() != 1 {
        return Ok(None);
    }
    let node = n.name.clone();
    let kernel: Box<dyn Kernel> = match n.op.kind.as_str() {
        "Softmax" | "LogSoftmax" => {
            let Some(shape) = axis_shape(g, n)? else {
                return Ok(None);
            };
            match n.op.kind.as_str() {
                "Softmax" if shape.inner == 1 => Box::new(Softmax {
                    rows: shape.outer,
                    cols: shape.len,
                    node,
                }),
                "Softmax" => Box::new(SoftmaxAxis {
                    shape,
                    kind: SoftmaxKind::Softmax,
                    node,
                }),
                _ => Box::new(SoftmaxAxis {
                    shape,
                    kind: SoftmaxKind::LogSoftmax,
                    node,
                }),
            }
        }
        "GlobalAveragePool" => match pool_rows(g, n) {
            Some((rows, cols)) => Box::new(MeanRows { rows, cols, node }),
            None => return Ok(None),
        },
        "LayerNormalization" => {
            let Some((rows, cols)) = norm_rows(g, n)? else {
                return Ok(None);
            };
            let per_col = |i: usize| n.inputs.get(i).map(|&v| g.value(v).ty.numel() == cols);
            if per_col(1) != Some(true) || per_col(2) == Some(false) {
                return Ok(None);
            }
            Box::new(LayerNorm {
                rows,
                cols,
                eps: n.op.attrs.float_or("epsilon", 1e-5)? as f32,
                beta: n.inputs.len() == 3,
                node,
            })
        }
        _ => return Ok(None),
    };
    Ok(Some(Built {
        kernel,
        inputs: n.inputs.clone(),
        outputs: n.outputs.clone(),
    }))
}

struct ArgReduce {
    shape: AxisShape,
    spec: ArgSpec,
    node: String,
}

impl Kernel for ArgReduce {
    fn describe(&self) -> String {
        format!("arg{}[axis]", if self.spec.max { "max" } else { "min" })
    }
    fn run(&self, io: &mut StepIo<'_, '_>, threads: usize) -> Result<()> {
        let n = io.outputs[0].ty.numel();
        // SAFETY: output 0 holds n i64 values (checked at build time) and
        // belongs to this step alone.
        let out = unsafe { std::slice::from_raw_parts_mut(io.out_ptr(0) as *mut i64, n) };
        arg_reduce_f32(io.in_f32(0), out, self.shape, self.spec, threads)
            .map_err(super::kernel_err(&self.node))
    }
}

/// ArgMax/ArgMin of an f32 input along `axis` (default 0) to i64.
pub(crate) fn build_arg(g: &Graph, group: &Group, opts: &CompileOptions) -> Result<Option<Built>> {
    let n = &g.nodes()[group.nodes[0]];
    let max = n.op.kind == "ArgMax";
    if !opts.dense_kernels || group.nodes.len() != 1 || !(max || n.op.kind == "ArgMin") {
        return Ok(None);
    }
    let (x, y) = (&g.value(n.inputs[0]).ty, &g.value(n.outputs[0]).ty);
    let rank = x.rank() as i64;
    let axis = n.op.attrs.int_or("axis", 0)?;
    let axis = if axis < 0 { axis + rank } else { axis };
    if x.dtype != DType::F32 || y.dtype != DType::I64 || !(0..rank).contains(&axis) {
        return Ok(None);
    }
    let shape = around(&x.shape, axis as usize);
    if shape.len == 0 || y.numel() != shape.outer * shape.inner {
        return Ok(None);
    }
    let spec = ArgSpec {
        max,
        select_last: n.op.attrs.int_or("select_last_index", 0)? != 0,
    };
    Ok(Some(Built {
        kernel: Box::new(ArgReduce {
            shape,
            spec,
            node: n.name.clone(),
        }),
        inputs: n.inputs.clone(),
        outputs: n.outputs.clone(),
    }))
}

struct CumSum {
    kind: &'static str,
    shape: AxisShape,
    spec: CumSpec,
    dtype: DType,
    node: String,
}

impl CumSum {
    fn typed<T: CumElem>(&self, io: &StepIo<'_, '_>) -> Result<()> {
        let n = io.outputs[0].ty.numel();
        // SAFETY: input 0 and output 0 hold n elements of T (checked at build
        // time); the output belongs to this step alone.
        let (x, y) = unsafe {
            (
                std::slice::from_raw_parts(io.in_ptr(0) as *const T, n),
                std::slice::from_raw_parts_mut(io.out_ptr(0) as *mut T, n),
            )
        };
        cumsum(x, y, self.shape, self.spec).map_err(super::kernel_err(&self.node))
    }
}

impl Kernel for CumSum {
    fn describe(&self) -> String {
        format!("{}[axis]", self.kind)
    }
    fn run(&self, io: &mut StepIo<'_, '_>, _threads: usize) -> Result<()> {
        match self.dtype {
            DType::F32 => self.typed::<f32>(io),
            DType::F64 => self.typed::<f64>(io),
            DType::I32 => self.typed::<i32>(io),
            _ => self.typed::<i64>(io),
        }
    }
}

/// CumSum or CumProd (axis an attribute after import) of f32, f64, i32 or i64.
pub(crate) fn build_cumsum(
    g: &Graph,
    group: &Group,
    opts: &CompileOptions,
) -> Result<Option<Built>> {
    let n = &g.nodes()[group.nodes[0]];
    let product = match n.op.kind.as_str() {
        "CumSum" => false,
        "CumProd" => true,
        _ => return Ok(None),
    };
    if !opts.dense_kernels || group.nodes.len() != 1 || n.inputs.len() != 1 {
        return Ok(None);
    }
    let x = &g.value(n.inputs[0]).ty;
    let rank = x.rank() as i64;
    let axis = n.op.attrs.int("axis")?;
    let axis = if axis < 0 { axis + rank } else { axis };
    let ok = matches!(x.dtype, DType::F32 | DType::F64 | DType::I32 | DType::I64);
    if !ok || !(0..rank).contains(&axis) || g.value(n.outputs[0]).ty != *x {
        return Ok(None);
    }
    let shape = around(&x.shape, axis as usize);
    let spec = CumSpec {
        exclusive: n.op.attrs.int_or("exclusive", 0)? != 0,
        reverse: n.op.attrs.int_or("reverse", 0)? != 0,
        product,
    };
    Ok(Some(Built {
        kernel: Box::new(CumSum {
            kind: if product { "cumprod" } else { "cumsum" },
            shape,
            spec,
            dtype: x.dtype,
            node: n.name.clone(),
        }),
        inputs: n.inputs.clone(),
        outputs: n.outputs.clone(),
    }))
}

/// `shape` as `[outer, len, inner]` around axis `a`.
fn around(shape: &[usize], a: usize) -> AxisShape {
    AxisShape {
        outer: shape[..a].iter().product(),
        len: shape[a],
        inner: shape[a + 1..].iter().product(),
    }
}
