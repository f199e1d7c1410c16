//! Matmul groups: f32 `MatMul` and `Gemm` plus their fused epilogue.
//!
//! A constant right-hand side (a layer's weights) is prepacked once
//! ([`PackedMatmul`]); the left-hand rows of every batch are then one GEMM
//! (a GEMV when there is one row). Two computed operands use the batched
//! [`matmul_f32`], where each side's batch is either full or broadcast.

use super::conv::{activation, sum_biases};
use super::epilogue;
use super::{const_f32, Built};
use crate::fusion::Group;
use crate::kernel::{Kernel, StepIo};
use crate::{CompileOptions, Result};
use kiln_codegen::cpu::kernels::{matmul_f32, Activation, Epilogue, MatmulDesc, PackedMatmul};
use kiln_ir::{Graph, Node, ValueId};

/// `C = A · W` with `W` prepacked.
struct Packed {
    w: PackedMatmul,
    rows: usize,
    residual: bool,
    label: String,
    node: String,
}

/// `C[b] = A[b] · B[b]` on two computed operands.
struct Batched {
    desc: MatmulDesc,
    bias: Option<Vec<f32>>,
    activation: Activation,
    residual: bool,
    label: String,
    node: String,
}

impl Kernel for Packed {
    fn describe(&self) -> String {
        self.label.clone()
    }
    fn run(&self, io: &mut StepIo<'_, '_>, threads: usize) -> Result<()> {
        let residual = self.residual.then(|| io.in_f32(1));
        self.w
            .run(io.in_f32(0), self.rows, residual, io.out_f32(0), threads)
            .map_err(super::kernel_err(&self.node))
    }
}

impl Kernel for Batched {
    fn describe(&self) -> String {
        self.label.clone()
    }
    fn run(&self, io: &mut StepIo<'_, '_>, threads: usize) -> Result<()> {
        let epi = Epilogue {
            bias: self.bias.as_deref(),
            residual: self.residual.then(|| io.in_f32(2)),
            activation: self.activation,
        };
        matmul_f32(
            &self.desc,
            io.in_f32(0),
            io.in_f32(1),
            io.out_f32(0),
            &epi,
            threads,
        )
        .map_err(super::kernel_err(&self.node))
    }
}

/// The operands of a matmul after reading `MatMul` or `Gemm` attributes.
struct Operands {
    a: ValueId,
    b: ValueId,
    b_transposed: bool,
    /// Bias from a `Gemm`'s C (already scaled by beta).
    bias: Option<Vec<f32>>,
    /// A full-size C of a `Gemm` (beta = 1), added like a residual.
    residual: Option<ValueId>,
}

fn gemm_operands(g: &Graph, n: &Node) -> Result<Option<Operands>> {
    let a = &n.op.attrs;
    if a.int_or("transA", 0)? != 0 || a.float_or("alpha", 1.0)? != 1.0 {
        return Ok(None);
    }
    let beta = a.float_or("beta", 1.0)? as f32;
    let out = &g.value(n.outputs[0]).ty.shape;
    let (mut bias, mut residual) = (None, None);
    if let Some(&c) = n.inputs.get(2) {
        let cs = &g.value(c).ty.shape;
        let numel: usize = cs.iter().product();
        match const_f32(g, c) {
            Some(v) if numel == 1 => bias = Some(vec![beta * v[0]; out[1]]),
            Some(v) if numel == out[1] && cs.last() == Some(&out[1]) => {
                bias = Some(v.iter().map(|x| beta * x).collect())
            }
            _ if cs == out && beta == 1.0 => residual = Some(c),
            _ => return Ok(None),
        }
    }
    Ok(Some(Operands {
        a: n.inputs[0],
        b: n.inputs[1],
        b_transposed: a.int_or("transB", 0)? != 0,
        bias,
        residual,
    }))
}

pub(crate) fn build(g: &Graph, group: &Group, opts: &CompileOptions) -> Result<Option<Built>> {
    let n = &g.nodes()[group.nodes[0]];
    if !opts.dense_kernels || !super::dense::is_anchor(g, n) {
        return Ok(None);
    }
    let ops = match n.op.kind.as_str() {
        "MatMul" => Operands {
            a: n.inputs[0],
            b: n.inputs[1],
            b_transposed: false,
            bias: None,
            residual: None,
        },
        "Gemm" => match gemm_operands(g, n)? {
            Some(o) => o,
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    let Some(spec) = epilogue::parse(g, &group.nodes) else {
        return Ok(None);
    };
    if ops.residual.is_some() && spec.residual.is_some() {
        return Ok(None);
    }
    let last = &g.nodes()[*group.nodes.last().expect("group")];
    let node = last.name.clone();
    let bias = sum_biases(&[ops.bias.clone(), spec.bias.and_then(|b| const_f32(g, b))]);
    let residual = ops.residual.or(spec.residual);
    let label = |kind: &str| format!("{kind}{}", epilogue::suffix(&spec));
    let (a_ty, b_ty) = (&g.value(ops.a).ty, &g.value(ops.b).ty);
    let k = if ops.b_transposed {
        b_ty.shape[1]
    } else {
        b_ty.shape[b_ty.rank() - 2]
    };
    let n_cols = *g.value(n.outputs[0]).ty.shape.last().expect("rank >= 2");
    let weights = const_f32(g, ops.b).filter(|_| b_ty.rank() == 2);
    let packed = weights.is_some();
    let kernel: Box<dyn Kernel> = match weights {
        Some(w) => {
            let packed = PackedMatmul::new(
                k,
                n_cols,
                &w,
                ops.b_transposed,
                bias.as_deref(),
                activation(spec.activation),
            );
            let Ok(w) = packed else { return Ok(None) };
            let rows = a_ty.numel() / k.max(1);
            let kind = if rows == 1 {
                "gemv[packed]"
            } else {
                "matmul[packed]"
            };
            Box::new(Packed {
                w,
                rows,
                residual: residual.is_some(),
                label: label(kind),
                node,
            })
        }
        _ => {
            let Some(desc) = batched_desc(g, n, &ops, k, n_cols) else {
                return Ok(None);
            };
            Box::new(Batched {
                desc,
                bias,
                activation: activation(spec.activation),
                residual: residual.is_some(),
                label: label("matmul[batched]"),
                node,
            })
        }
    };
    let mut inputs = vec![ops.a];
    if !packed {
        inputs.push(ops.b);
    }
    inputs.extend(residual);
    Ok(Some(Built {
        kernel,
        inputs,
        outputs: last.outputs.clone(),
    }))
}

/// Batch layout of two computed operands: each side's batch dims either match
/// the output's or are all 1 (broadcast); anything else is not handled here.
fn batched_desc(
    g: &Graph,
    n: &Node,
    ops: &Operands,
    k: usize,
    n_cols: usize,
) -> Option<MatmulDesc> {
    let out = &g.value(n.outputs[0]).ty.shape;
    let r = out.len();
    let (a, b) = (&g.value(ops.a).ty.shape, &g.value(ops.b).ty.shape);
    let m = out[r - 2];
    let batch: usize = out[..r - 2].iter().product();
    let stride = |s: &[usize], per: usize| -> Option<usize> {
        let sb = &s[..s.len() - 2];
        let numel: usize = sb.iter().product();
        if numel == 1 {
            Some(0)
        } else if sb.len() <= r - 2 && sb == &out[r - 2 - sb.len()..r - 2] && numel == batch {
            Some(per)
        } else {
            None
        }
    };
    Some(MatmulDesc {
        batch,
        m,
        n: n_cols,
        k,
        a_batch_stride: stride(a, m * k)?,
        b_batch_stride: stride(b, k * n_cols)?,
        b_transposed: ops.b_transposed,
    })
}
