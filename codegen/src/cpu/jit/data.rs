//! Raw data pointers of host tensors, for the dtypes the JIT handles.

use crate::CodegenError;
use kiln_ir::{DType, Tensor};

fn unsupported(d: DType) -> CodegenError {
    CodegenError::unsupported(format!("tensor of {}", d.name()))
}

macro_rules! by_dtype {
    ($t:expr, $get:ident, $ptr:ident, $cast:ty) => {{
        let d = $t.dtype();
        let err = |_| CodegenError::Arguments(format!("tensor data is not {}", d.name()));
        match d {
            DType::F32 => $t.$get::<f32>().map(|s| s.$ptr() as $cast).map_err(err),
            DType::F64 => $t.$get::<f64>().map(|s| s.$ptr() as $cast).map_err(err),
            DType::I8 => $t.$get::<i8>().map(|s| s.$ptr() as $cast).map_err(err),
            DType::U8 => $t.$get::<u8>().map(|s| s.$ptr() as $cast).map_err(err),
            DType::I16 => $t.$get::<i16>().map(|s| s.$ptr() as $cast).map_err(err),
            DType::U16 => $t.$get::<u16>().map(|s| s.$ptr() as $cast).map_err(err),
            DType::I32 => $t.$get::<i32>().map(|s| s.$ptr() as $cast).map_err(err),
            DType::U32 => $t.$get::<u32>().map(|s| s.$ptr() as $cast).map_err(err),
            DType::I64 => $t.$get::<i64>().map(|s| s.$ptr() as $cast).map_err(err),
            DType::U64 => $t.$get::<u64>().map(|s| s.$ptr() as $cast).map_err(err),
            DType::Bool => $t.$get::<bool>().map(|s| s.$ptr() as $cast).map_err(err),
            _ => Err(unsupported(d)),
        }
    }};
}

/// The first byte of `t`'s elements.
pub(super) fn ptr(t: &Tensor) -> Result<*const u8, CodegenError> {
    by_dtype!(t, as_slice, as_ptr, *const u8)
}

/// The first byte of `t`'s elements, writable.
pub(super) fn ptr_mut(t: &mut Tensor) -> Result<*mut u8, CodegenError> {
    by_dtype!(t, as_slice_mut, as_mut_ptr, *mut u8)
}
