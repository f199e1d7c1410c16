//! The known kernels a derivation chain may end in, as plain descriptors
//! (the codegen crate's `MatmulDesc` / `Conv2dDesc` fields, kept here so
//! this crate does not depend on codegen), and a [`Match`]: which stage of
//! a program runs on which kernel and which stages are left.

use super::Program;
use serde::Serialize;
use std::fmt;

/// `C[b] = A[b] · B[b]` (f32, row-major): `A` m×k, `B` k×n (n×k when
/// `b_transposed`), `C` m×n; batch strides in elements (0: broadcast).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Gemm {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a_batch_stride: usize,
    pub b_batch_stride: usize,
    pub b_transposed: bool,
    /// Operand names of the stage for `A` and `B`.
    pub a: String,
    pub b: String,
    /// A per-column bias added by the kernel (`C[.., j] += bias[j]`).
    pub bias: Option<String>,
}

/// An NCHW 2-D convolution (OIHW weights), as `Conv2dDesc`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Conv {
    pub batch: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    /// Top, left, bottom, right.
    pub pads: [usize; 4],
    pub dilation: [usize; 2],
    pub groups: usize,
    pub x: String,
    pub weight: String,
    /// A per-output-channel bias added by the kernel.
    pub bias: Option<String>,
}

/// A known kernel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Kernel {
    /// Plain (batch 1, no broadcast) or batched GEMM.
    Gemm(Gemm),
    Conv(Conv),
}

impl Kernel {
    /// `gemm`, `batched-gemm` or `conv2d`.
    pub fn kind(&self) -> &'static str {
        match self {
            Kernel::Gemm(g) if g.batch > 1 => "batched-gemm",
            Kernel::Gemm(_) => "gemm",
            Kernel::Conv(_) => "conv2d",
        }
    }
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kernel::Gemm(g) => write!(
                f,
                "{} batch={} m={} n={} k={} a={} (stride {}) b={}{} (stride {}){}",
                self.kind(),
                g.batch,
                g.m,
                g.n,
                g.k,
                g.a,
                g.a_batch_stride,
                g.b,
                if g.b_transposed { "^T" } else { "" },
                g.b_batch_stride,
                g.bias.as_ref().map_or(String::new(), |b| format!(" bias={b}"))
            ),
            Kernel::Conv(c) => write!(
                f,
                "conv2d n={} c={}->{} {}x{} k={}x{} stride={:?} pads={:?} dilation={:?} groups={}{}",
                c.batch,
                c.c_in,
                c.c_out,
                c.h,
                c.w,
                c.kh,
                c.kw,
                c.stride,
                c.pads,
                c.dilation,
                c.groups,
                c.bias.as_ref().map_or(String::new(), |b| format!(" bias={b}"))
            ),
        }
    }
}

/// A program whose stage `stage` runs on `kernel`; the other stages are
/// either folded at compile time (`folded`: they read only constants) or
/// the memory-bound remainder (`remainder`: no reduction).
#[derive(Clone, Debug)]
pub struct Match {
    /// The program as it runs (an epilogue the kernel cannot fuse split off).
    pub program: Program,
    pub stage: usize,
    pub kernel: Kernel,
    pub folded: Vec<usize>,
    pub remainder: Vec<usize>,
}
