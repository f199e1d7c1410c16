//! Cranelift JIT for tensor expressions: a [`TensorExpr`](kiln_ir::expr::TensorExpr)
//! and a [`Schedule`](kiln_ir::expr::Schedule) compile to native code for
//! the host (128-bit SIMD: f32x4 / f64x2, scalar tails).
//!
//! - [`kernel`]: [`ExprKernel`] (compile, run a range of outer iterations);
//! - [`default_schedule()`]: fusion, vectorization, parallel outer loop;
//! - internals: `module` (JIT module and code memory), `emit` (generation
//!   state), `loops`, `lower_index`, `lower_scalar`, `staging` (staged inputs' buffers and the ABI),
//!   `fill` (filling and reading them), `scratch`, `dtypes`, `math` (scalar helpers), `vmath` (f32x4 exp/tanh), `vmath16` (16-lane
//!   AVX-512 chunk helpers), `tape` / `tape16` (a map body as 16-lane
//!   operations and their interpreter), `chunked` (maps calling them), `data`.

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
mod tape;
mod tape16;
mod vmath;
mod vmath16;

pub use default_schedule::{default_schedule, schedule_with, strided_map, ScheduleKnobs};
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
    /// Run a vectorized f32 map with 16-lane AVX-512 code over chunks when
    /// the CPU has AVX-512F: the whole body as a tape (`tape`) when its reads
    /// allow, else its transcendental functions (exp, log, tanh, erf, sin,
    /// cos, pow) as helpers (false: f32x4 code inline).
    pub avx512: bool,
    /// Elements per chunk of such a map (rounded down to a multiple of
    /// 16, at least 16): intermediate values are staged in per-thread
    /// buffers of this many f32.
    pub chunk: usize,
    /// Run such a map as a tape when its other operations number at most
    /// this many per function node (the tape runs one operation at a time
    /// over a chunk; the helpers path keeps the other operations fused in
    /// f32x4 code): 0 never, `usize::MAX` always (when its reads allow).
    pub tape_ops_per_fn: usize,
    /// Run a vectorized f32 map without function nodes as a tape too (when
    /// its reads allow) if it has at most this many operations: one 16-lane
    /// pass per operation over each chunk, loop-invariant reads splatted once
    /// per chunk, instead of f32x4 code inline (0: never). Measured on the
    /// Zen 5, 1 thread: a ReLU over 3.2 MB 135 -> 72 us; a 3-operation
    /// BN+ReLU map over `[1, 256, 56, 56]` (`x·g[c] + h[c]`, then max) 249-369
    /// -> 183-269 us over 4 interleaved runs (2 threads: 231-265 -> 187-222);
    /// DenseNet end to end within noise (the `jit` family's `tape_plain_ops`
    /// knob lets the tuner decide per map).
    pub tape_plain_ops: usize,
}

impl Default for JitOptions {
    fn default() -> Self {
        JitOptions {
            optimize: true,
            allow_simd: true,
            allow_fma: true,
            avx512: true,
            chunk: 512,
            tape_ops_per_fn: 4,
            tape_plain_ops: 4,
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
