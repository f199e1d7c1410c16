//! `Attention` (opset 23) on 4-D f32 `[B, H, S, D]` operands, composed of
//! the codegen kernels: `Q·Kᵀ` as a batched matmul with `B` transposed, the
//! scale and the additive mask in one pass, the softmax rows, then `P·V`.
//!
//! Accepted: inputs Q, K, V and an optional f32 mask whose last axis is the
//! key length (or a scalar), broadcast over the others; as many query as kv
//! heads; only output `Y`; `is_causal`, `softcap` and `qk_matmul_output_mode`
//! at their defaults. Anything else stays with the interpreter.

use super::Built;
use crate::fusion::Group;
use crate::kernel::{Kernel, StepIo};
use crate::{CompileOptions, Result, RuntimeError};
use kiln_codegen::cpu::kernels::{matmul_f32, softmax_rows_f32, Epilogue, MatmulDesc};
use kiln_codegen::CodegenError;
use kiln_ir::{DType, Graph, Node};

struct Attention {
    /// Batch times heads, query length, key length, head size, value head size.
    bh: usize,
    heads: usize,
    s: usize,
    t: usize,
    d: usize,
    dv: usize,
    scale: f32,
    /// The mask's element strides over `[B, H, S, T]` (0 where broadcast).
    mask: Option<[usize; 4]>,
    node: String,
}

impl Attention {
    fn err(&self) -> impl Fn(CodegenError) -> RuntimeError + '_ {
        super::kernel_err(&self.node)
    }

    /// `scores = scores · scale + mask`, row by row.
    fn scale_and_mask(&self, scores: &mut [f32], mask: Option<&[f32]>) {
        for (r, row) in scores.chunks_exact_mut(self.t).enumerate() {
            let (b, h, i) = (
                r / (self.heads * self.s),
                (r / self.s) % self.heads,
                r % self.s,
            );
            match (self.mask, mask) {
                (Some(st), Some(m)) if st[3] == 1 => {
                    let base = b * st[0] + h * st[1] + i * st[2];
                    for (x, &y) in row.iter_mut().zip(&m[base..base + self.t]) {
                        *x = *x * self.scale + y;
                    }
                }
                (Some(st), Some(m)) => {
                    let y = m[b * st[0] + h * st[1] + i * st[2]];
                    row.iter_mut().for_each(|x| *x = *x * self.scale + y);
                }
                _ => row.iter_mut().for_each(|x| *x *= self.scale),
            }
        }
    }
}

impl Kernel for Attention {
    fn describe(&self) -> String {
        "attention[matmul+softmax+matmul]".into()
    }

    fn scratch_bytes(&self) -> usize {
        2 * self.bh * self.s * self.t * 4
    }

    fn run(&self, io: &mut StepIo<'_, '_>, threads: usize) -> Result<()> {
        let n = self.bh * self.s * self.t;
        let (scores, probs) = io.scratch_f32(2 * n).split_at_mut(n);
        let qk = MatmulDesc {
            batch: self.bh,
            m: self.s,
            n: self.t,
            k: self.d,
            a_batch_stride: self.s * self.d,
            b_batch_stride: self.t * self.d,
            b_transposed: true,
        };
        let none = Epilogue::default();
        let (q, k, v) = (io.in_f32(0), io.in_f32(1), io.in_f32(2));
        matmul_f32(&qk, q, k, scores, &none, threads).map_err(self.err())?;
        let mask = self.mask.map(|_| io.in_f32(3));
        self.scale_and_mask(scores, mask);
        softmax_rows_f32(scores, probs, self.bh * self.s, self.t, threads).map_err(self.err())?;
        let pv = MatmulDesc {
            batch: self.bh,
            m: self.s,
            n: self.dv,
            k: self.t,
            a_batch_stride: self.s * self.t,
            b_batch_stride: self.t * self.dv,
            b_transposed: false,
        };
        matmul_f32(&pv, probs, v, io.out_f32(0), &none, threads).map_err(self.err())
    }
}

/// The mask's strides over `[B, H, S, T]`, when it broadcasts there without
/// padding (its last axis is `T`, or it is a scalar).
fn mask_strides(shape: &[usize], full: [usize; 4]) -> Option<[usize; 4]> {
    if shape.len() > 4 || shape.last().is_some_and(|&l| l != full[3]) {
        return None;
    }
    let mut padded = [1usize; 4];
    padded[4 - shape.len()..].copy_from_slice(shape);
    let mut st = [0usize; 4];
    let mut acc = 1;
    for a in (0..4).rev() {
        if padded[a] != 1 && padded[a] != full[a] {
            return None;
        }
        st[a] = if padded[a] == 1 { 0 } else { acc };
        acc *= padded[a];
    }
    Some(st)
}

/// The kernel for node `n`, or `None` when it is not of the accepted form.
fn kernel(g: &Graph, n: &Node) -> Result<Option<Attention>> {
    let a = &n.op.attrs;
    let defaults = a.int_or("is_causal", 0)? == 0
        && a.float_or("softcap", 0.0)? == 0.0
        && a.int_or("qk_matmul_output_mode", 0)? == 0;
    let tys: Vec<_> = n.inputs.iter().map(|&v| &g.value(v).ty).collect();
    if !defaults || !(3..=4).contains(&tys.len()) || n.outputs.len() != 1 {
        return Ok(None);
    }
    if tys.iter().any(|t| t.dtype != DType::F32) || tys[..3].iter().any(|t| t.rank() != 4) {
        return Ok(None);
    }
    let (q, k, v) = (&tys[0].shape, &tys[1].shape, &tys[2].shape);
    if q[..2] != k[..2] || k[..3] != v[..3] || q[3] != k[3] {
        return Ok(None);
    }
    let full = [q[0], q[1], q[2], k[2]];
    let mask = match tys.get(3) {
        Some(m) => match mask_strides(&m.shape, full) {
            Some(st) => Some(st),
            None => return Ok(None),
        },
        None => None,
    };
    let scale = a.float_or("scale", 1.0 / (q[3] as f64).sqrt())? as f32;
    Ok(Some(Attention {
        bh: q[0] * q[1],
        heads: q[1],
        s: q[2],
        t: k[2],
        d: q[3],
        dv: v[3],
        scale,
        mask,
        node: n.name.clone(),
    }))
}

pub(crate) fn build(g: &Graph, group: &Group, opts: &CompileOptions) -> Result<Option<Built>> {
    let n = &g.nodes()[group.nodes[0]];
    if !opts.dense_kernels || n.op.kind != "Attention" || group.nodes.len() != 1 {
        return Ok(None);
    }
    Ok(kernel(g, n)?.map(|k| Built {
        kernel: Box::new(k),
        inputs: n.inputs.clone(),
        outputs: n.outputs.clone(),
    }))
}
