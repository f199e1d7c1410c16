//! Integer element-wise ops (i32/i64 Add, Sub, Mul, Div, Mod, Max, Min and
//! the comparisons) with broadcasting, on
//! [`kiln_codegen::cpu::kernels::int_binary`]. Float maps go to the JIT;
//! these are the integer ops models carry at run time (position ids, masks).

use super::Built;
use crate::fusion::Group;
use crate::kernel::{Kernel, StepIo};
use crate::{CompileOptions, Result};
use kiln_codegen::cpu::kernels::{int_binary, int_compare, Broadcast, IntElem, IntOp};
use kiln_ir::{DType, Graph};

struct IntMap {
    op: IntOp,
    bc: Broadcast,
    wide: bool,
    node: String,
}

/// Input `i` (or output) as `n` elements of `T`.
///
/// # Safety
/// The slot holds `n` elements of `T`.
unsafe fn view<'a, T>(p: *const u8, n: usize) -> &'a [T] {
    std::slice::from_raw_parts(p as *const T, n)
}

impl IntMap {
    fn typed<T: IntElem>(&self, io: &StepIo<'_, '_>) -> Result<()> {
        let (na, nb, n) = (
            io.inputs[0].ty.numel(),
            io.inputs[1].ty.numel(),
            io.outputs[0].ty.numel(),
        );
        // SAFETY: the plan gives inputs of T with these counts (checked at build
        // time) and an output of T or bool that belongs to this step alone.
        let (a, b) = unsafe { (view::<T>(io.in_ptr(0), na), view::<T>(io.in_ptr(1), nb)) };
        let r = if self.op.compares() {
            let out = unsafe { std::slice::from_raw_parts_mut(io.out_ptr(0), n) };
            int_compare(a, b, out, &self.bc, self.op)
        } else {
            let out = unsafe { std::slice::from_raw_parts_mut(io.out_ptr(0) as *mut T, n) };
            int_binary(a, b, out, &self.bc, self.op)
        };
        r.map_err(super::kernel_err(&self.node))
    }
}

impl Kernel for IntMap {
    fn describe(&self) -> String {
        format!("int[{:?}]", self.op).to_lowercase()
    }
    fn run(&self, io: &mut StepIo<'_, '_>, _threads: usize) -> Result<()> {
        if self.wide {
            self.typed::<i64>(io)
        } else {
            self.typed::<i32>(io)
        }
    }
}

fn op_of(kind: &str, fmod: bool) -> Option<IntOp> {
    Some(match kind {
        "Add" => IntOp::Add,
        "Sub" => IntOp::Sub,
        "Mul" => IntOp::Mul,
        "Div" => IntOp::Div,
        "Mod" if fmod => IntOp::Fmod,
        "Mod" => IntOp::Mod,
        "Max" => IntOp::Max,
        "Min" => IntOp::Min,
        "Equal" => IntOp::Equal,
        "Less" => IntOp::Less,
        "LessOrEqual" => IntOp::LessOrEqual,
        "Greater" => IntOp::Greater,
        "GreaterOrEqual" => IntOp::GreaterOrEqual,
        _ => return None,
    })
}

pub(crate) fn build(g: &Graph, group: &Group, opts: &CompileOptions) -> Result<Option<Built>> {
    let n = &g.nodes()[group.nodes[0]];
    if !opts.dense_kernels || group.nodes.len() != 1 || n.inputs.len() != 2 || n.outputs.len() != 1
    {
        return Ok(None);
    }
    let fmod = n.op.kind == "Mod" && n.op.attrs.int_or("fmod", 0)? != 0;
    let Some(op) = op_of(&n.op.kind, fmod) else {
        return Ok(None);
    };
    let (a, b, y) = (
        &g.value(n.inputs[0]).ty,
        &g.value(n.inputs[1]).ty,
        &g.value(n.outputs[0]).ty,
    );
    let want_out = if op.compares() { DType::Bool } else { a.dtype };
    if !matches!(a.dtype, DType::I32 | DType::I64) || b.dtype != a.dtype || y.dtype != want_out {
        return Ok(None);
    }
    let Some(bc) = Broadcast::new(&a.shape, &b.shape, &y.shape) else {
        return Ok(None);
    };
    Ok(Some(Built {
        kernel: Box::new(IntMap {
            op,
            bc,
            wide: a.dtype == DType::I64,
            node: n.name.clone(),
        }),
        inputs: n.inputs.clone(),
        outputs: n.outputs.clone(),
    }))
}
