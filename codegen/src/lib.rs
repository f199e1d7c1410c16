//! Code generation: CPU kernels through Cranelift JIT with AVX-512/AVX2 micro-kernels, CUDA kernels through NVRTC and cudarc (see ARCHITECTURE.md).
//!
//! Built so far:
//! - [`cpu::gemm_f32`]: a strided f32 GEMM on the `gemm` crate's run-time-dispatched
//!   AVX-512 / AVX2+FMA micro-kernels, the building block for heavy contractions;
//! - [`cpu::features`]: which of those instruction sets this CPU has.

pub mod cpu;
mod error;

pub use error::CodegenError;
