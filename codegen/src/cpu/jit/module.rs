//! Owning the Cranelift JIT module: host ISA (cranelift-native, so the
//! SSE4.1/AVX/FMA flags it detects are on), math helper symbols, and the
//! finalized, immutable code memory.

use super::math;
use super::JitOptions;
use crate::CodegenError;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};

fn cl_err(e: impl std::fmt::Display) -> CodegenError {
    CodegenError::Cranelift(e.to_string())
}

/// A fresh JIT module for the host, with the math helpers registered.
pub(super) fn new_module(opts: &JitOptions) -> Result<JITModule, CodegenError> {
    let mut flags = settings::builder();
    let level = if opts.optimize { "speed" } else { "none" };
    flags.set("opt_level", level).map_err(cl_err)?;
    flags.set("is_pic", "false").map_err(cl_err)?;
    flags
        .set("use_colocated_libcalls", "false")
        .map_err(cl_err)?;
    let isa = cranelift_native::builder()
        .map_err(cl_err)?
        .finish(settings::Flags::new(flags))
        .map_err(cl_err)?;
    let mut jb = JITBuilder::with_isa(isa, cranelift_module::default_libcall_names());
    for (name, ptr) in math::symbols() {
        jb.symbol(name, ptr);
    }
    Ok(JITModule::new(jb))
}

/// The finalized code of one kernel; freed on drop.
pub(super) struct Code {
    module: Option<JITModule>,
}

impl Code {
    /// Takes ownership of a module whose definitions are finalized.
    pub(super) fn new(module: JITModule) -> Code {
        Code {
            module: Some(module),
        }
    }
}

impl Drop for Code {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: the only pointer into this memory is the kernel's
            // function pointer, owned by the same `ExprKernel` being dropped.
            unsafe { m.free_memory() };
        }
    }
}

// SAFETY: after `finalize_definitions` the module's code memory is read-only
// and executable; `Code` never mutates the module and only frees it on drop,
// so sharing or moving it between threads is sound.
unsafe impl Send for Code {}
unsafe impl Sync for Code {}
