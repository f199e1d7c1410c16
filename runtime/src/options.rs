//! Compile options: threads and which optimisations run. Passed explicitly,
//! never read from the environment.

use crate::tuning::Tuned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What `compile` may do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompileOptions {
    /// Threads of the executable's pool (intra-op parallelism); at least 1.
    pub threads: usize,
    /// Fuse epilogues into convolutions and matmuls (bias, residual, activation).
    pub fuse_epilogues: bool,
    /// Inline element-wise producers into their consumers (one kernel per chain).
    pub fuse_elementwise: bool,
    /// Generate code for tensor expressions (Cranelift); off means every op
    /// without a hand-written kernel runs on its interpreter fallback.
    pub jit: bool,
    /// How long idle pool workers poll for the next kernel before sleeping,
    /// in microseconds (kernels of one run are microseconds apart).
    pub spin_us: u64,
    /// Use the hand-written kernels (conv, matmul, softmax, layer norm, gather).
    pub dense_kernels: bool,
    /// Run a depthwise convolution and the 1×1 convolution reading it as one
    /// kernel, band by band (needs `fuse_epilogues` and `dense_kernels`).
    pub fuse_conv_pairs: bool,
    /// Tuned knob settings per workload (see [`crate::tuning`]); workloads
    /// without one keep their defaults.
    #[serde(skip)]
    pub tuned: Arc<Tuned>,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            fuse_epilogues: true,
            fuse_elementwise: true,
            jit: true,
            dense_kernels: true,
            fuse_conv_pairs: true,
            spin_us: 300,
            tuned: Arc::default(),
        }
    }
}

impl CompileOptions {
    /// The defaults with `threads` threads.
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// Uses the tuned knob settings `tuned`.
    pub fn with_tuned(mut self, tuned: Tuned) -> Self {
        self.tuned = Arc::new(tuned);
        self
    }

    /// Every optimisation off: one interpreter kernel per node (a baseline).
    pub fn fallback_only(mut self) -> Self {
        self.fuse_epilogues = false;
        self.fuse_elementwise = false;
        self.jit = false;
        self.dense_kernels = false;
        self.fuse_conv_pairs = false;
        self
    }
}
