//! How many tasks a kernel splits into ([`split`] runs them on the current
//! [`crate::cpu::SpinPool`] or rayon pool), and a `Send` raw pointer for disjoint writes.
//!
//! Threshold: waking a rayon worker costs a few microseconds, about what one
//! core needs for 0.5 MFLOP of GEMM, so a kernel uses one task per
//! [`PAR_MIN_FLOPS`] of work (never more than `threads`), and runs on the
//! caller's thread below it. Work is counted in GEMM-equivalent flops: kernels
//! that run slower per flop (memory-bound GEMV, depthwise, row kernels) weigh
//! their flops up by how much slower they run (see each call of [`tasks_for`]).

/// Floating-point operations one extra task must have to be worth spawning.
pub const PAR_MIN_FLOPS: usize = 500_000;

/// How many tasks to use for `flops` of work with at most `threads`.
pub(crate) fn tasks_for(threads: usize, flops: usize) -> usize {
    threads.min(flops / PAR_MIN_FLOPS).max(1)
}

pub(crate) use crate::cpu::pool::split;

/// A raw pointer that tasks writing disjoint parts of one buffer may share.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr<T>(pub *mut T);

// SAFETY: users only write through the pointer at indices no other task touches,
// while the buffer's unique borrow is held by the spawning call.
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The wrapped pointer (a method, so closures capture the wrapper, not the field).
    #[inline]
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}
