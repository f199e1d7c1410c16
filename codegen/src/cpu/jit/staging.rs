//! Staged inputs at code generation: where each buffer lives in the
//! per-call scratch memory, which pointer slots the generated code uses,
//! and the kernel's external inputs.
//!
//! Pointer slots (the emitter's `ptrs`): the consumer's inputs `0..n`
//! (a computed input's slot holds its buffer), the output at `n`, then the
//! producers' inputs, then the buffers. External inputs (the `ptrs` array
//! the caller passes, in this order): the consumer's inputs that are not
//! computed, then each producer's inputs in the order producers are given,
//! then the output.

use crate::CodegenError;
use kiln_ir::expr::stage::{packed_shape, Region, Stage, StageKind};
use kiln_ir::expr::{LoopNest, TensorExpr};
use kiln_ir::{DType, TensorType};

/// A producer expression evaluated inside the consumer's function.
pub(super) struct Producer {
    pub nest: LoopNest,
    /// Pointer slot of each producer input.
    pub slots: Vec<usize>,
}

/// One staged input's buffer.
#[derive(Clone, Debug)]
pub(super) struct Staged {
    pub stage: Stage,
    /// Pointer slot of the buffer.
    pub slot: usize,
    /// Byte offset of the buffer in the scratch memory.
    pub offset: usize,
    /// The input's dtype and shape.
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// The box held (the whole input for a pack).
    pub region: Region,
    /// The buffer's dense shape.
    pub dims: Vec<usize>,
    /// Index into the producers (compute-at only).
    pub producer: Option<usize>,
}

/// Slots, buffers and external inputs of one kernel.
pub(super) struct Layout {
    pub staged: Vec<Staged>,
    pub producers: Vec<Producer>,
    /// Per external input: its pointer slot.
    pub ext_slots: Vec<usize>,
    pub ext_types: Vec<TensorType>,
    pub scratch_bytes: usize,
    pub n_slots: usize,
}

fn bad(what: String) -> CodegenError {
    CodegenError::Schedule(what)
}

/// Checks that producers and compute-at stages match one to one.
fn check_producers(nest: &LoopNest, producers: &[(usize, TensorExpr)]) -> Result<(), CodegenError> {
    let e = &nest.expr;
    for (k, (input, p)) in producers.iter().enumerate() {
        let op = e.inputs.get(*input).ok_or_else(|| {
            CodegenError::Arguments(format!("producer {k}: input {input} does not exist"))
        })?;
        p.check()
            .map_err(|err| CodegenError::Arguments(format!("producer {k}: {err}")))?;
        if p.output != op.ty {
            return Err(CodegenError::Arguments(format!(
                "producer {k} makes {}, input `{}` is {}",
                p.output, op.name, op.ty
            )));
        }
        if p.reduce.is_some() {
            return Err(CodegenError::unsupported(format!(
                "compute_at of `{}`: a producer with a reduction",
                op.name
            )));
        }
        let staged = nest
            .stages
            .iter()
            .any(|s| s.input == *input && s.kind == StageKind::ComputeAt);
        if !staged || producers[..k].iter().any(|(i, _)| i == input) {
            return Err(bad(format!(
                "producer {k} of `{}` has no compute_at step (or is given twice)",
                op.name
            )));
        }
    }
    if let Some(s) = nest
        .stages
        .iter()
        .find(|s| s.kind == StageKind::ComputeAt && !producers.iter().any(|(i, _)| *i == s.input))
    {
        return Err(bad(format!(
            "compute_at of `{}` needs its producer (ExprKernel::compile_with_producers)",
            e.inputs[s.input].name
        )));
    }
    Ok(())
}

/// The layout of `nest` with `producers` (see the module docs).
pub(super) fn layout(
    nest: &LoopNest,
    producers: &[(usize, TensorExpr)],
) -> Result<Layout, CodegenError> {
    check_producers(nest, producers)?;
    let e = &nest.expr;
    let n = e.inputs.len();
    let computed = |i: usize| producers.iter().any(|(k, _)| *k == i);
    let mut ext_slots: Vec<usize> = (0..n).filter(|&i| !computed(i)).collect();
    let mut ext_types: Vec<TensorType> =
        ext_slots.iter().map(|&i| e.inputs[i].ty.clone()).collect();
    let mut next = n + 1;
    let mut prods = vec![];
    for (_, p) in producers {
        let slots: Vec<usize> = (next..next + p.inputs.len()).collect();
        next += p.inputs.len();
        ext_slots.extend(&slots);
        ext_types.extend(p.inputs.iter().map(|o| o.ty.clone()));
        prods.push(Producer {
            nest: LoopNest::new(p),
            slots,
        });
    }
    ext_slots.push(n);
    let mut staged = vec![];
    let mut bytes = 0usize;
    for s in &nest.stages {
        let ty = &e.inputs[s.input].ty;
        let region = nest.region(s);
        let dims = match s.kind {
            StageKind::Pack { axis, block } => packed_shape(&ty.shape, axis, block),
            _ => region.extent.clone(),
        };
        let size = dims.iter().product::<usize>() * ty.dtype.size_of();
        staged.push(Staged {
            stage: s.clone(),
            slot: next,
            offset: bytes,
            dtype: ty.dtype,
            shape: ty.shape.clone(),
            region,
            dims,
            producer: producers.iter().position(|(i, _)| *i == s.input),
        });
        next += 1;
        bytes += size.div_ceil(64) * 64;
    }
    Ok(Layout {
        staged,
        producers: prods,
        ext_slots,
        ext_types,
        scratch_bytes: bytes,
        n_slots: next,
    })
}
