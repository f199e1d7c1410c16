//! The state of one function being generated: the Cranelift builder, the
//! loop nest, current loop variable values and whether code is being
//! emitted inside the vectorized loop (values are then SIMD vectors whose
//! lane `k` is the vector loop variable plus `k`).

use super::math;
use crate::CodegenError;
use cranelift_codegen::ir::{types, AbiParam, FuncRef, InstBuilder, Type, Value};
use cranelift_frontend::{FunctionBuilder, Variable};
use cranelift_jit::JITModule;
use cranelift_module::{Linkage, Module};
use kiln_ir::expr::index::Range;
use kiln_ir::expr::LoopNest;
use std::collections::HashMap;

pub(super) type Res<T> = Result<T, CodegenError>;

/// Generation state; see the module docs.
pub(super) struct Emitter<'a, 'f> {
    pub b: FunctionBuilder<'f>,
    pub module: &'a mut JITModule,
    pub nest: &'a LoopNest,
    /// Compute type (F32 or F64) and its 128-bit vector type.
    pub ct: Type,
    pub vt: Type,
    pub lanes: usize,
    /// Value ranges of loop variables, by loop id.
    pub ranges: Vec<Range>,
    /// Ranges of the expression's iterators (for bounds proofs).
    pub iter_ranges: Vec<Range>,
    /// Current loop variable values, by loop id.
    pub vars: Vec<Option<Value>>,
    /// Loop id of the vectorized loop.
    pub vec_id: Option<usize>,
    pub in_vector: bool,
    /// Pointer slots (see `staging`): inputs, output, producer inputs,
    /// buffers.
    pub ptrs: Vec<Value>,
    /// Pointer slot of each input of the expression being emitted.
    pub slots: Vec<usize>,
    /// Pointer slot of the output.
    pub out_slot: usize,
    /// Staged inputs and the producers of computed ones.
    pub staged: Vec<super::staging::Staged>,
    pub producers: &'a [super::staging::Producer],
    /// Reads of staged inputs use their buffers (off inside producers).
    pub staging: bool,
    /// The accumulator (scalar or vector) while reducing.
    pub acc: Option<Variable>,
    /// Independent accumulators of an unrolled vectorized reduction loop.
    pub split_accs: Vec<Variable>,
    /// Unroll-and-jam copies: (loop id, its value) per copy, with one
    /// accumulator each.
    pub jam: Vec<(usize, Value)>,
    pub jam_accs: Vec<Variable>,
    pub use_fma: bool,
    pub funcs: HashMap<&'static str, FuncRef>,
    /// The outermost loop's range from the caller.
    pub lo_hi: (Value, Value),
    /// The per-thread scratch memory.
    pub scratch: Value,
    /// Chunked map loop (AVX-512 helpers), its current chunk's first index
    /// and the function nodes whose values are in chunk buffers.
    pub chunk: Option<super::chunked::ChunkPlan>,
    pub chunk_base: Option<Value>,
    pub subst: Vec<(kiln_ir::expr::ScalarExpr, usize)>,
}

impl Emitter<'_, '_> {
    /// True when generating f64 code.
    pub fn is_f64(&self) -> bool {
        self.ct == types::F64
    }

    /// The type of values right now: scalar or vector.
    pub fn cur_ty(&self) -> Type {
        if self.in_vector {
            self.vt
        } else {
            self.ct
        }
    }

    /// A float constant of the current type.
    pub fn fconst(&mut self, c: f64) -> Value {
        let s = self.scalar_const(c);
        if self.in_vector {
            self.b.ins().splat(self.vt, s)
        } else {
            s
        }
    }

    /// A scalar float constant of the compute type.
    pub fn scalar_const(&mut self, c: f64) -> Value {
        if self.is_f64() {
            self.b.ins().f64const(c)
        } else {
            self.b.ins().f32const(c as f32)
        }
    }

    pub fn iconst(&mut self, c: i64) -> Value {
        self.b.ins().iconst(types::I64, c)
    }

    /// Calls a math helper on scalars of the compute type.
    pub fn call_helper(&mut self, name: &'static str, args: &[Value]) -> Res<Value> {
        let f = match self.funcs.get(name) {
            Some(f) => *f,
            None => {
                let mut sig = self.module.make_signature();
                for _ in 0..math::arity(name) {
                    sig.params.push(AbiParam::new(self.ct));
                }
                sig.returns.push(AbiParam::new(self.ct));
                let id = self
                    .module
                    .declare_function(name, Linkage::Import, &sig)
                    .map_err(|e| CodegenError::Cranelift(e.to_string()))?;
                let f = self.module.declare_func_in_func(id, self.b.func);
                self.funcs.insert(name, f);
                f
            }
        };
        let call = self.b.ins().call(f, args);
        Ok(self.b.inst_results(call)[0])
    }

    /// Applies a scalar function lane by lane in vector mode.
    pub fn lanewise(
        &mut self,
        args: &[Value],
        f: &mut dyn FnMut(&mut Self, &[Value]) -> Res<Value>,
    ) -> Res<Value> {
        if !self.in_vector {
            return f(self, args);
        }
        let mut out = self.fconst(0.0);
        for k in 0..self.lanes as u8 {
            let xs: Vec<Value> = args
                .iter()
                .map(|&a| self.b.ins().extractlane(a, k))
                .collect();
            let was = std::mem::replace(&mut self.in_vector, false);
            let r = f(self, &xs);
            self.in_vector = was;
            out = self.b.ins().insertlane(out, r?, k);
        }
        Ok(out)
    }
}
