//! CPU back end.
//!
//! - [`gemm_f32`] — `C := alpha·A·B + beta·C` on strided f32 matrices, through the
//!   `gemm` crate (feature `x86-v4`), which picks AVX-512, AVX2+FMA or scalar
//!   micro-kernels at run time and splits work over rayon's threads.
//! - [`kernels`] — fused f32 kernels for the heavy ops: convolution, matmul/GEMV,
//!   softmax and layer norm, with bias/residual/activation epilogues.
//! - [`jit`] — tensor expressions scheduled into loop nests and compiled with
//!   Cranelift ([`ExprKernel`]).
//! - [`features`] — the SIMD features this CPU reports, and the [`Isa`] the GEMM uses.

mod gemm;
pub mod jit;
pub mod kernels;
pub mod pages;
pub mod pool;

pub use gemm::{gemm_f32, Strides};
pub use jit::{default_schedule, schedule_with, ExprKernel, JitOptions, ScheduleKnobs};
pub use pool::{split, SpinPool};

/// SIMD features detected at run time (all `false` off x86-64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuFeatures {
    pub avx512f: bool,
    pub avx2: bool,
    pub fma: bool,
}

/// The micro-kernel family the GEMM dispatches to on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F kernels (x86-64-v4).
    Avx512,
    /// AVX2 + FMA kernels (x86-64-v3).
    Avx2Fma,
    /// Portable kernels.
    Scalar,
}

impl CpuFeatures {
    /// The kernel family `gemm` picks for these features.
    pub fn isa(&self) -> Isa {
        if self.avx512f {
            Isa::Avx512
        } else if self.avx2 && self.fma {
            Isa::Avx2Fma
        } else {
            Isa::Scalar
        }
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Isa::Avx512 => "avx512f",
            Isa::Avx2Fma => "avx2+fma",
            Isa::Scalar => "scalar",
        })
    }
}

/// Detects avx512f, avx2 and fma on this CPU.
#[cfg(target_arch = "x86_64")]
pub fn features() -> CpuFeatures {
    CpuFeatures {
        avx512f: std::is_x86_feature_detected!("avx512f"),
        avx2: std::is_x86_feature_detected!("avx2"),
        fma: std::is_x86_feature_detected!("fma"),
    }
}

/// Detects avx512f, avx2 and fma on this CPU (none off x86-64).
#[cfg(not(target_arch = "x86_64"))]
pub fn features() -> CpuFeatures {
    CpuFeatures {
        avx512f: false,
        avx2: false,
        fma: false,
    }
}
