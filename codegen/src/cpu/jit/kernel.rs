//! [`ExprKernel`]: a tensor expression and schedule compiled to native code.
//!
//! The generated function is `extern "C" fn(ptrs: *const *mut u8, lo: i64,
//! hi: i64, scratch: *mut u8)`: `ptrs` holds the external input base
//! pointers then the output's (for the order with producers see
//! [`ExprKernel::compile_with_producers`]); the outermost loop (when it is
//! an output loop) runs over `lo..hi`; `scratch` holds the staged buffers
//! (per thread, reused across calls).

use super::dtypes::{compute_type, flags};
use super::emit::Emitter;
use super::module::{new_module, Code};
use super::staging::Layout;
use super::JitOptions;
use crate::CodegenError;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, AbiParam, InstBuilder, Value};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::JITModule;
use cranelift_module::{Linkage, Module};
use kiln_ir::expr::{apply, LoopNest, Schedule, TensorExpr};
use kiln_ir::{Tensor, TensorType};
use std::collections::HashMap;

type KernelFn = unsafe extern "C" fn(*const *mut u8, i64, i64, *mut u8);

/// A compiled tensor expression; see the module docs.
pub struct ExprKernel {
    _code: Code,
    /// The tape the code runs (its address is in the code).
    _tape: Option<Box<super::tape::Tape>>,
    func: KernelFn,
    extent: usize,
    inputs: Vec<TensorType>,
    output: TensorType,
    nest_text: String,
    scratch_bytes: usize,
}

fn cl_err(e: impl std::fmt::Display) -> CodegenError {
    CodegenError::Cranelift(e.to_string())
}

/// Refuses what the generator does not handle.
fn check_supported(e: &TensorExpr, nest: &LoopNest, lanes: usize) -> Result<(), CodegenError> {
    let n_out = e.iters.len();
    let mut bad = false;
    if let Some(ep) = &e.epilogue {
        ep.visit_accesses(&mut |a| {
            bad |= a
                .index
                .iter()
                .any(|s| (n_out..n_out + 64).any(|i| s.uses(i)));
        });
    }
    if bad {
        return Err(CodegenError::unsupported(
            "an epilogue reading reduction iterators",
        ));
    }
    if e.output.numel() > 0 && e.inputs.iter().any(|o| o.ty.numel() == 0) {
        return Err(CodegenError::unsupported("an empty input"));
    }
    if let Some(l) = nest
        .loops
        .iter()
        .find(|l| l.vector.is_some_and(|v| v != lanes))
    {
        return Err(CodegenError::unsupported(format!(
            "vector width {} on `{}`: Cranelift vectors are 128-bit, {lanes} lanes here",
            l.vector.unwrap_or(0),
            l.name
        )));
    }
    Ok(())
}

impl ExprKernel {
    /// Compiles `expr` scheduled by `schedule` (a `ComputeAt` step needs
    /// [`ExprKernel::compile_with_producers`]).
    pub fn compile(
        expr: &TensorExpr,
        schedule: &Schedule,
        opts: &JitOptions,
    ) -> Result<ExprKernel, CodegenError> {
        Self::compile_with_producers(expr, &[], schedule, opts)
    }

    /// Compiles `expr` with the inputs named by `ComputeAt` steps computed
    /// inside the nest from their producers: `(input index, producer)`,
    /// one per such step; a producer has no reduction and makes exactly
    /// the input's type.
    ///
    /// The kernel's inputs ([`ExprKernel::input_types`], and the pointers
    /// `run_range` takes) are then the consumer's inputs that are not
    /// computed, in order, followed by each producer's inputs, producers
    /// in the order given.
    pub fn compile_with_producers(
        expr: &TensorExpr,
        producers: &[(usize, TensorExpr)],
        schedule: &Schedule,
        opts: &JitOptions,
    ) -> Result<ExprKernel, CodegenError> {
        let mut ct = compute_type(expr)?;
        for (_, p) in producers {
            if compute_type(p)? == types::F64 {
                ct = types::F64;
            }
        }
        let mut nest = apply(expr, schedule).map_err(|e| CodegenError::Schedule(e.to_string()))?;
        let mut layout = super::staging::layout(&nest, producers)?;
        let lanes = 16 / ct.bytes() as usize;
        if !opts.allow_simd {
            nest.loops.iter_mut().for_each(|l| l.vector = None);
        }
        check_supported(expr, &nest, lanes)?;
        let chunk = super::chunked::plan(&nest, ct, opts, &mut layout);
        let mut module = new_module(opts)?;
        let (id, tape) = build(&mut module, &nest, &layout, ct, opts, chunk)?;
        module.finalize_definitions().map_err(cl_err)?;
        let ptr = module.get_finalized_function(id);
        // SAFETY: `build` defined this function with exactly this signature.
        let func = unsafe { std::mem::transmute::<*const u8, KernelFn>(ptr) };
        let extent = match nest.loops.first() {
            Some(l) if !l.reduce => l.extent,
            _ => 1,
        };
        tracing::debug!(target: "kiln::jit", "compiled {}:\n{nest}", expr.name);
        Ok(ExprKernel {
            _code: Code::new(module),
            _tape: tape,
            func,
            extent,
            inputs: layout.ext_types,
            output: expr.output.clone(),
            nest_text: nest.to_string(),
            scratch_bytes: layout.scratch_bytes,
        })
    }

    /// The types of the inputs the kernel takes, in order.
    pub fn input_types(&self) -> &[TensorType] {
        &self.inputs
    }

    /// Bytes of per-thread scratch memory the staged buffers use.
    pub fn scratch_bytes(&self) -> usize {
        self.scratch_bytes
    }

    /// Extent of the outermost loop; callers split `0..parallel_extent()`
    /// among threads.
    pub fn parallel_extent(&self) -> usize {
        self.extent
    }

    /// The scheduled loop nest, printed.
    pub fn loop_nest(&self) -> &str {
        &self.nest_text
    }

    /// Runs outer iterations `lo..hi` (staged buffers in this thread's
    /// scratch memory).
    ///
    /// # Safety
    /// `inputs[i]` points to a dense row-major buffer of the kernel's
    /// input `i` type ([`ExprKernel::input_types`]), `output` to one of its output type, `inputs` has one
    /// pointer per input, and `lo <= hi <= parallel_extent()`. Writes only
    /// output elements of outer iterations `lo..hi`.
    pub unsafe fn run_range(&self, inputs: &[*const u8], output: *mut u8, lo: usize, hi: usize) {
        const STACK: usize = 8;
        let mut small = [std::ptr::null_mut::<u8>(); STACK];
        let mut heap = vec![];
        let ptrs: &mut [*mut u8] = if inputs.len() < STACK {
            &mut small[..=inputs.len()]
        } else {
            heap.resize(inputs.len() + 1, std::ptr::null_mut());
            &mut heap
        };
        for (slot, &p) in ptrs.iter_mut().zip(inputs) {
            *slot = p as *mut u8;
        }
        ptrs[inputs.len()] = output;
        let f = |scratch| {
            // SAFETY: the caller upholds the buffer contract above; the
            // scratch memory holds `scratch_bytes` and is this call's alone.
            unsafe { (self.func)(ptrs.as_ptr(), lo as i64, hi as i64, scratch) }
        };
        super::scratch::with_scratch(self.scratch_bytes, f)
    }

    /// Checks dtypes and shapes, then runs everything on this thread.
    pub fn run(&self, inputs: &[&Tensor], output: &mut Tensor) -> Result<(), CodegenError> {
        let (ins, out) = self.pointers(inputs, output)?;
        // SAFETY: `pointers` checked every buffer's type against the kernel's.
        unsafe { self.run_range(&ins, out, 0, self.extent) };
        Ok(())
    }

    /// Like [`ExprKernel::run`], split into about `threads` rayon tasks on
    /// the current pool (1: the caller's thread only).
    pub fn run_threads(
        &self,
        inputs: &[&Tensor],
        output: &mut Tensor,
        threads: usize,
    ) -> Result<(), CodegenError> {
        if threads == 0 {
            return Err(CodegenError::ZeroThreads);
        }
        let (ins, out) = self.pointers(inputs, output)?;
        let ins: Vec<usize> = ins.iter().map(|&p| p as usize).collect();
        let (out, n) = (out as usize, self.extent);
        let chunk = n.div_ceil(threads.min(n.max(1)));
        rayon::scope(|s| {
            for lo in (0..n).step_by(chunk.max(1)) {
                let ins = &ins;
                s.spawn(move |_| {
                    let p: Vec<*const u8> = ins.iter().map(|&a| a as *const u8).collect();
                    // SAFETY: types checked; chunks write disjoint outer iterations.
                    unsafe { self.run_range(&p, out as *mut u8, lo, (lo + chunk).min(n)) };
                });
            }
        });
        Ok(())
    }

    fn pointers(
        &self,
        inputs: &[&Tensor],
        output: &mut Tensor,
    ) -> Result<(Vec<*const u8>, *mut u8), CodegenError> {
        let bad = |what: String| CodegenError::Arguments(what);
        if inputs.len() != self.inputs.len() {
            return Err(bad(format!(
                "{} inputs for {}",
                inputs.len(),
                self.inputs.len()
            )));
        }
        for (k, (t, ty)) in inputs.iter().zip(&self.inputs).enumerate() {
            if t.ty() != *ty {
                return Err(bad(format!("input {k} is {}, expected {ty}", t.ty())));
            }
        }
        if output.ty() != self.output {
            return Err(bad(format!(
                "output is {}, expected {}",
                output.ty(),
                self.output
            )));
        }
        let ins = inputs
            .iter()
            .map(|t| super::data::ptr(t))
            .collect::<Result<_, _>>()?;
        Ok((ins, super::data::ptr_mut(output)?))
    }
}

/// Generates and defines the kernel function; returns its id.
fn build(
    module: &mut JITModule,
    nest: &LoopNest,
    layout: &Layout,
    ct: types::Type,
    opts: &JitOptions,
    chunk: Option<super::chunked::ChunkPlan>,
) -> Result<(cranelift_module::FuncId, Option<Box<super::tape::Tape>>), CodegenError> {
    let mut ctx = module.make_context();
    for _ in 0..4 {
        ctx.func.signature.params.push(AbiParam::new(types::I64));
    }
    let id = module
        .declare_function("kernel", Linkage::Export, &ctx.func.signature)
        .map_err(cl_err)?;
    let mut fbc = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut ctx.func, &mut fbc);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let p = b.block_params(entry).to_vec();
    let ptrs = slot_pointers(&mut b, layout, nest.expr.inputs.len(), p[0], p[3]);
    let mut em = emitter(b, module, nest, ct, opts, ptrs, (p[1], p[2]));
    em.scratch = p[3];
    em.chunk = chunk;
    em.check_tape();
    em.staged = layout.staged.clone();
    em.producers = &layout.producers;
    let packs = layout.staged.iter().any(|s| s.stage.at.is_none());
    if packs || nest.loops.first().is_none_or(|l| l.reduce) {
        let (run, done) = (em.b.create_block(), em.b.create_block());
        let go = em.b.ins().icmp(IntCC::SignedLessThan, p[1], p[2]);
        em.b.ins().brif(go, run, &[], done, &[]);
        em.b.switch_to_block(run);
        em.fill_stages(None)?;
        em.inner(0)?;
        em.b.ins().jump(done, &[]);
        em.b.switch_to_block(done);
    } else {
        em.inner(0)?;
    }
    em.b.ins().return_(&[]);
    em.b.seal_all_blocks();
    let tape = em.chunk.take().and_then(|c| c.tape);
    let cfg = em.module.isa().frontend_config();
    em.b.finalize(cfg);
    tracing::trace!(target: "kiln::jit", "{}", ctx.func.display());
    module
        .define_function(id, &mut ctx)
        .map_err(|e| cl_err(format!("{e:?}")))?;
    module.clear_context(&mut ctx);
    Ok((id, tape))
}

/// The value of every pointer slot (see `staging`): external pointers
/// loaded from `ptrs`, buffers at their offsets in `scratch`.
fn slot_pointers(
    b: &mut FunctionBuilder,
    layout: &Layout,
    n_inputs: usize,
    ptrs: Value,
    scratch: Value,
) -> Vec<Value> {
    let zero = b.ins().iconst(types::I64, 0);
    let mut v = vec![zero; layout.n_slots];
    for (k, &slot) in layout.ext_slots.iter().enumerate() {
        v[slot] = b.ins().load(types::I64, flags(), ptrs, (8 * k) as i32);
    }
    for s in &layout.staged {
        v[s.slot] = b.ins().iadd_imm_s(scratch, s.offset as i64);
        if s.producer.is_some() && s.stage.input < n_inputs {
            v[s.stage.input] = v[s.slot];
        }
    }
    v
}

fn emitter<'a, 'f>(
    b: FunctionBuilder<'f>,
    module: &'a mut JITModule,
    nest: &'a LoopNest,
    ct: types::Type,
    opts: &JitOptions,
    ptrs: Vec<Value>,
    lo_hi: (Value, Value),
) -> Emitter<'a, 'f> {
    let span = |n: usize| (0i64, n as i64 - 1);
    let mut ranges = vec![(0, 0); nest.id_count()];
    for l in &nest.loops {
        ranges[l.id] = span(l.extent);
    }
    let lanes = 16 / ct.bytes() as usize;
    Emitter {
        b,
        module,
        nest,
        ct,
        vt: ct.by(lanes as u32).unwrap_or(ct),
        lanes,
        ranges,
        iter_ranges: nest
            .expr
            .all_iters()
            .iter()
            .map(|i| span(i.extent))
            .collect(),
        vars: vec![None; nest.id_count()],
        vec_id: nest.loops.iter().find(|l| l.vector.is_some()).map(|l| l.id),
        in_vector: false,
        slots: (0..nest.expr.inputs.len()).collect(),
        out_slot: nest.expr.inputs.len(),
        ptrs,
        staged: vec![],
        producers: &[],
        staging: true,
        acc: None,
        split_accs: vec![],
        jam: vec![],
        jam_accs: vec![],
        use_fma: opts.allow_fma && super::has_fma(),
        funcs: HashMap::new(),
        scratch: lo_hi.0,
        lo_hi,
        chunk: None,
        chunk_base: None,
        subst: vec![],
    }
}
