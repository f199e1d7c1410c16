//! The kernel interface: one compiled step of a plan.
//!
//! A kernel reads its input values and writes its output values through a
//! [`StepIo`]. Fast kernels take raw element pointers; the interpreter
//! fallback takes whole tensors. The plan guarantees that each slot holds a
//! value of the type recorded at compile time and that an output never
//! shares memory with an input (a kernel that writes in place says so).

use crate::storage::{Env, Slot};
use crate::Result;
use kiln_ir::Tensor;
use std::borrow::Cow;

/// One step of a compiled plan.
pub(crate) trait Kernel: Send + Sync {
    /// A short description for reports, e.g. `conv2d[depthwise 3x3]+bias+clip`.
    fn describe(&self) -> String;
    /// Scratch bytes the kernel needs during `run` (64-byte aligned).
    fn scratch_bytes(&self) -> usize {
        0
    }
    /// An input whose buffer output 0 may overwrite: the kernel reads each
    /// element of it only to compute the output element at the same offset.
    fn in_place_input(&self) -> Option<usize> {
        None
    }
    /// Inputs that may live inside output 0: the byte offset at which each
    /// input's bytes sit in the output, when every input is one contiguous
    /// block of it (a concat). The placement may then put an input's buffer
    /// there; the kernel must skip a block whose source is already in place.
    fn parts(&self) -> Option<Vec<usize>> {
        None
    }
    /// Computes the outputs; `threads` is the pool's size.
    fn run(&self, io: &mut StepIo<'_, '_>, threads: usize) -> Result<()>;
}

/// A step's view of its inputs, outputs and scratch for one run.
#[allow(dead_code)] // raw views are for the dense and generated kernels landing next
pub(crate) struct StepIo<'s, 'r> {
    pub env: &'s mut Env<'r>,
    pub inputs: &'s [Slot],
    pub outputs: &'s [Slot],
    pub scratch: *mut u8,
}

#[allow(dead_code)]
impl StepIo<'_, '_> {
    /// Input `i`'s first byte.
    pub fn in_ptr(&self, i: usize) -> *const u8 {
        self.env.ptr(self.inputs[i].loc)
    }

    /// Output `i`'s first byte.
    pub fn out_ptr(&self, i: usize) -> *mut u8 {
        self.env.ptr(self.outputs[i].loc)
    }

    /// Input `i` as f32 elements.
    ///
    /// The caller must have built the kernel for an f32 input; the slice
    /// lives as long as the run's storage, which outlives the step.
    pub fn in_f32<'a>(&self, i: usize) -> &'a [f32] {
        let n = self.inputs[i].ty.numel();
        debug_assert_eq!(self.inputs[i].ty.dtype, kiln_ir::DType::F32);
        // SAFETY: the slot holds `n` f32 values (checked at compile time) and
        // nothing writes it during this step (outputs never alias inputs).
        unsafe { std::slice::from_raw_parts(self.in_ptr(i) as *const f32, n) }
    }

    /// Output `i` as f32 elements (see [`StepIo::in_f32`]).
    #[allow(clippy::mut_from_ref)]
    pub fn out_f32<'a>(&self, i: usize) -> &'a mut [f32] {
        let n = self.outputs[i].ty.numel();
        debug_assert_eq!(self.outputs[i].ty.dtype, kiln_ir::DType::F32);
        // SAFETY: the output's arena range belongs to this step alone.
        unsafe { std::slice::from_raw_parts_mut(self.out_ptr(i) as *mut f32, n) }
    }

    /// Scratch as `n` f32 values (the kernel asked for at least `4 n` bytes).
    #[allow(clippy::mut_from_ref)]
    pub fn scratch_f32<'a>(&self, n: usize) -> &'a mut [f32] {
        if n == 0 {
            return &mut [];
        }
        // SAFETY: the planner reserved `scratch_bytes()` aligned bytes for this step.
        unsafe { std::slice::from_raw_parts_mut(self.scratch as *mut f32, n) }
    }

    /// Input `i` as a tensor (copied from the arena when it lives there).
    pub fn in_tensor(&self, i: usize) -> Result<Cow<'_, Tensor>> {
        Ok(self.env.tensor(&self.inputs[i])?)
    }

    /// Stores output `i`, checking its type against the plan.
    pub fn set_output(&mut self, i: usize, t: Tensor) -> Result<()> {
        let want = &self.outputs[i].ty;
        if &t.ty() != want {
            return Err(crate::RuntimeError::Ir(kiln_ir::IrError::Input(format!(
                "internal: a kernel produced {} where the plan expects {want}",
                t.ty()
            ))));
        }
        self.env.store(&self.outputs[i], t);
        Ok(())
    }
}
