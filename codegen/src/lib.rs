//! Code generation: CPU kernels through Cranelift JIT with AVX-512/AVX2 micro-kernels, CUDA kernels through NVRTC and cudarc. Not built yet (see ARCHITECTURE.md).
