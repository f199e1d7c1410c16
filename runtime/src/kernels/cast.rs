//! `Cast` from integers and bool to any plain dtype, element by element with
//! the interpreter's meaning: integer to integer wraps, to float rounds to
//! nearest, to bool is `!= 0`; bool is 0 or 1. (Float sources go through the
//! generated kernels, whose rounding rules the expression IR defines.)

use super::Built;
use crate::fusion::Group;
use crate::kernel::{Kernel, StepIo};
use crate::{CompileOptions, Result};
use kiln_ir::{DType, Graph};

struct Cast {
    from: DType,
    to: DType,
    n: usize,
}

/// Reads element `i` of a buffer of `d` as an i128 (integers and bool only).
///
/// # Safety
/// `p` must hold more than `i` elements of `d`.
unsafe fn read(p: *const u8, d: DType, i: usize) -> i128 {
    unsafe {
        match d {
            DType::I8 => *(p as *const i8).add(i) as i128,
            DType::U8 | DType::Bool => *p.add(i) as i128,
            DType::I16 => *(p as *const i16).add(i) as i128,
            DType::U16 => *(p as *const u16).add(i) as i128,
            DType::I32 => *(p as *const i32).add(i) as i128,
            DType::U32 => *(p as *const u32).add(i) as i128,
            DType::I64 => *(p as *const i64).add(i) as i128,
            _ => *(p as *const u64).add(i) as i128,
        }
    }
}

/// Writes `v` as element `i` of a buffer of `d`.
///
/// # Safety
/// `p` must hold more than `i` elements of `d`.
unsafe fn write(p: *mut u8, d: DType, i: usize, v: i128) {
    unsafe {
        match d {
            DType::Bool => *p.add(i) = (v != 0) as u8,
            DType::I8 => *(p as *mut i8).add(i) = v as i8,
            DType::U8 => *p.add(i) = v as u8,
            DType::I16 => *(p as *mut i16).add(i) = v as i16,
            DType::U16 => *(p as *mut u16).add(i) = v as u16,
            DType::I32 => *(p as *mut i32).add(i) = v as i32,
            DType::U32 => *(p as *mut u32).add(i) = v as u32,
            DType::I64 => *(p as *mut i64).add(i) = v as i64,
            DType::U64 => *(p as *mut u64).add(i) = v as u64,
            DType::F32 => *(p as *mut f32).add(i) = v as f32,
            _ => *(p as *mut f64).add(i) = v as f64,
        }
    }
}

fn is_source(d: DType) -> bool {
    d.is_int() || d == DType::Bool
}

fn is_target(d: DType) -> bool {
    is_source(d) || matches!(d, DType::F32 | DType::F64)
}

impl Kernel for Cast {
    fn describe(&self) -> String {
        format!("cast[{}->{}]", self.from, self.to)
    }

    fn run(&self, io: &mut StepIo<'_, '_>, _threads: usize) -> Result<()> {
        let (src, dst) = (io.in_ptr(0), io.out_ptr(0));
        for i in 0..self.n {
            // SAFETY: both buffers hold `n` elements of their dtypes (plan types).
            unsafe { write(dst, self.to, i, read(src, self.from, i)) };
        }
        Ok(())
    }
}

pub(crate) fn build(g: &Graph, group: &Group, opts: &CompileOptions) -> Result<Option<Built>> {
    let n = &g.nodes()[group.nodes[0]];
    if !opts.dense_kernels || n.op.kind != "Cast" || group.nodes.len() != 1 || n.inputs.len() != 1 {
        return Ok(None);
    }
    let (from, to) = (
        g.value(n.inputs[0]).ty.dtype,
        g.value(n.outputs[0]).ty.dtype,
    );
    if !is_source(from) || !is_target(to) {
        return Ok(None);
    }
    Ok(Some(Built {
        kernel: Box::new(Cast {
            from,
            to,
            n: g.value(n.inputs[0]).ty.numel(),
        }),
        inputs: n.inputs.clone(),
        outputs: n.outputs.clone(),
    }))
}
