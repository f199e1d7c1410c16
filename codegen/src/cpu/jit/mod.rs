//! Cranelift JIT for tensor expressions: a [`TensorExpr`](kiln_ir::expr::TensorExpr)
//! and a [`Schedule`](kiln_ir::expr::Schedule) compile to native code for
//! the host (128-bit SIMD: f32x4 / f64x2, scalar tails).
//!
//! - [`kernel`]: [`ExprKernel`] (compile, run a range of outer iterations);
//! - [`default_schedule()`]: fusion, vectorization, parallel outer loop;
//! - internals: `module` (JIT module and code memory), `emit` (generation
//!   state), `loops`, `lower_index`, `lower_scalar`, `staging` (staged inputs' buffers and the ABI),
//!   `fill` (filling and reading them), `scratch`, `dtypes`, `math` (scalar helpers), `vmath` (f32x4 exp/tanh), `vmath16` (16-lane
//!   AVX-512 chunk helpers), `chunked` (maps calling them), `data`.

mod chunked;
mod data;
mod default_schedule;
mod dtypes;
mod emit;
mod fill;
pub mod kernel;
mod loops;
mod lower_index;
mod lower_scalar;
mod math;
mod module;
mod scratch;
mod staging;
mod vmath;
mod vmath16;

pub use default_schedule::default_schedule;
pub use dtypes::compute_type;
pub use kernel::ExprKernel;

/// Code generation options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JitOptions {
    /// Run Cranelift's optimizer (`opt_level = speed`).
    pub optimize: bool,
    /// Honour vectorize steps (false: those loops run scalar).
    pub allow_simd: bool,
    /// Fuse multiply-add in sums of products when the CPU has FMA.
    pub allow_fma: bool,
    /// Compute the transcendental functions (exp, log, tanh, erf, sin,
    /// cos, pow) of a vectorized f32 map with 16-lane AVX-512 helpers over
    /// chunks when the CPU has AVX-512F (false: f32x4 code inline).
    pub avx512: bool,
    /// Elements per chunk of such a map (rounded down to a multiple of
    /// 16, at least 16): each function's results are staged in a
    /// per-thread buffer of this many f32.
    pub chunk: usize,
}

impl Default for JitOptions {
    fn default() -> Self {
        JitOptions {
            optimize: true,
            allow_simd: true,
            allow_fma: true,
            avx512: true,
            chunk: 1024,
        }
    }
}

/// Whether this CPU has fused multiply-add.
pub(crate) fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

pub use vmath16::has_avx512;
