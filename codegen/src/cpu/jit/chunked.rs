//! Vectorized f32 maps run with 16-lane AVX-512 code instead of inline
//! f32x4 code. The innermost (vectorized) output loop is strip-mined into
//! chunks of [`JitOptions::chunk`] elements.
//!
//! When every read moves by 0 or 1 element along that loop, and the
//! output by 1, the whole body is a [`Tape`] and each chunk one call of its
//! interpreter (`tape16`) with the reads' and the output's addresses.
//!
//! Otherwise, per chunk, one f32x4 pass per function
//! node (children first) computes the node's argument into its buffer in
//! the per-thread scratch memory and the helper replaces it by the
//! function's value, in place; a last pass computes the body, reading those
//! nodes from their buffers, and stores. The chunks stay in L1, so the map
//! still streams its inputs and output once. Up to 3 elements (a partial
//! f32x4) are left to the scalar tail loop.

use super::emit::{Emitter, Res};
use super::staging::Layout;
use super::tape::Tape;
use super::JitOptions;
use crate::CodegenError;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, AbiParam, InstBuilder, Type, Value};
use cranelift_module::{Linkage, Module};
use kiln_ir::expr::{AffineExpr, BinaryOp, LoopNest, ScalarExpr, UnaryOp};
use kiln_ir::DType;

/// How one kernel's map loop runs chunked.
#[derive(Debug)]
pub(super) struct ChunkPlan {
    /// The body as a tape (checked by `check_tape`), else helper calls.
    pub tape: Option<Box<Tape>>,
    /// The function nodes of the body, children before parents, each once.
    pub nodes: Vec<ScalarExpr>,
    /// Elements per chunk (a multiple of 16).
    pub cap: usize,
    /// Byte offset of the buffers in the scratch memory: node `k`'s at
    /// `offset + 4 k cap`, then one for pow's second argument.
    pub offset: usize,
    /// Id of the chunked (innermost, vectorized) loop.
    pub loop_id: usize,
}

/// The helper computing `node` and its arguments, if it is a function the
/// helpers compute.
fn helper_of(node: &ScalarExpr) -> Option<(&'static str, Vec<&ScalarExpr>)> {
    Some(match node {
        ScalarExpr::Unary(op, x) => {
            let name = match op {
                UnaryOp::Exp => "kiln16_exp",
                UnaryOp::Log => "kiln16_log",
                UnaryOp::Tanh => "kiln16_tanh",
                UnaryOp::Erf => "kiln16_erf",
                UnaryOp::Sin => "kiln16_sin",
                UnaryOp::Cos => "kiln16_cos",
                _ => return None,
            };
            (name, vec![&**x])
        }
        ScalarExpr::Binary(BinaryOp::Pow, a, b)
            if super::lower_scalar::const_exponent(b).is_none() =>
        {
            ("kiln16_pow", vec![&**a, &**b])
        }
        _ => None?,
    })
}

/// Function nodes of `e`, children before parents, each once.
fn function_nodes(e: &ScalarExpr, out: &mut Vec<ScalarExpr>) {
    match e {
        ScalarExpr::Unary(_, x) | ScalarExpr::Cast(_, x) => function_nodes(x, out),
        ScalarExpr::Binary(_, a, b) | ScalarExpr::Cmp(_, a, b) => {
            function_nodes(a, out);
            function_nodes(b, out);
        }
        ScalarExpr::Select(c, t, f) => {
            function_nodes(c, out);
            function_nodes(t, out);
            function_nodes(f, out);
        }
        _ => {}
    }
    if helper_of(e).is_some() && !out.contains(e) {
        out.push(e.clone());
    }
}

/// The chunk plan of `nest` when it is an f32 map whose innermost loop is
/// vectorized, has function nodes and nothing staged, and the options and
/// CPU allow it; reserves its buffers in `layout`'s scratch memory.
pub(super) fn plan(
    nest: &LoopNest,
    ct: Type,
    opts: &JitOptions,
    layout: &mut Layout,
) -> Option<ChunkPlan> {
    let l = nest.loops.last()?;
    let ok = opts.avx512
        && opts.allow_simd
        && ct == types::F32
        && nest.expr.reduce.is_none()
        && l.vector.is_some()
        && !l.reduce
        && l.unroll <= 1
        && layout.staged.is_empty()
        && layout.producers.is_empty()
        && super::has_avx512();
    if !ok {
        return None;
    }
    let mut nodes = vec![];
    function_nodes(&nest.expr.body, &mut nodes);
    let cap = (opts.chunk / 16).max(1) * 16;
    let types: Vec<_> = nest.expr.inputs.iter().map(|o| o.ty.clone()).collect();
    let tape = super::tape::build(&nest.expr.body, &types, cap)
        .filter(|t| {
            let others = t.instrs.len().saturating_sub(nodes.len());
            match nodes.len() {
                0 => t.instrs.len() <= opts.tape_plain_ops,
                n => others <= opts.tape_ops_per_fn.saturating_mul(n),
            }
        })
        .map(Box::new);
    if nodes.is_empty() && tape.is_none() {
        return None;
    }
    let two = nodes
        .iter()
        .any(|n| helper_of(n).is_some_and(|h| h.1.len() == 2));
    let helpers = (nodes.len() + two as usize) * cap * 4;
    let taped = tape.as_ref().map_or(0, |t| {
        (t.n_temps * cap + 16 * t.leaves.len()) * 4 + (t.leaves.len() + 1) * 8
    });
    let offset = layout.scratch_bytes.div_ceil(64) * 64;
    layout.scratch_bytes = offset + helpers.max(taped);
    Some(ChunkPlan {
        tape,
        nodes,
        cap,
        offset,
        loop_id: l.id,
    })
}

impl Emitter<'_, '_> {
    /// Whether the loop with this id runs chunked.
    pub fn is_chunked(&self, id: usize) -> bool {
        !self.in_vector && self.chunk.as_ref().is_some_and(|c| c.loop_id == id)
    }

    /// Keeps the tape when every read moves by 0 or 1 element along the
    /// chunked loop (proven in bounds) and the output by 1, and notes which
    /// reads move; else drops it (and the plan when it has no functions).
    pub fn check_tape(&mut self) {
        let Some(plan) = self.chunk.as_ref() else {
            return;
        };
        let Some(leaves) = plan.tape.as_ref().map(|t| t.leaves.clone()) else {
            return;
        };
        let id = plan.loop_id;
        let moves: Vec<Option<bool>> = leaves
            .iter()
            .map(|a| {
                let p = self.access_plan(a);
                match (p.safe, p.flat.linear_coef(id)) {
                    (true, Some(1)) => Some(true),
                    (true, Some(0)) => Some(false),
                    _ => None,
                }
            })
            .collect();
        let out = &self.nest.expr.output;
        let index: Vec<AffineExpr> = (0..out.rank()).map(AffineExpr::iter).collect();
        let out_ok = out.dtype == DType::F32
            && self.plan(&index, &out.shape).flat.linear_coef(id) == Some(1);
        let Some(plan) = self.chunk.as_mut() else {
            return;
        };
        match (out_ok, moves.into_iter().collect::<Option<Vec<bool>>>()) {
            (true, Some(m)) => {
                if let Some(t) = plan.tape.as_mut() {
                    t.contiguous = m;
                }
            }
            _ => {
                plan.tape = None;
                if plan.nodes.is_empty() {
                    self.chunk = None;
                }
            }
        }
    }

    /// The chunk loop over `start..end` of loop `id`: chunks of at most
    /// `cap` elements (a multiple of the vector width each unless taped);
    /// returns the first index not done.
    pub fn chunked(&mut self, id: usize, start: Value, end: Value) -> Res<Value> {
        let cap = self.chunk.as_ref().map_or(16, |c| c.cap) as i64;
        let taped = self.chunk.as_ref().is_some_and(|c| c.tape.is_some());
        let var = self.b.declare_var(types::I64);
        self.b.def_var(var, start);
        let (head, blk, exit) = (
            self.b.create_block(),
            self.b.create_block(),
            self.b.create_block(),
        );
        self.b.ins().jump(head, &[]);
        self.b.switch_to_block(head);
        let c = self.b.use_var(var);
        let rem = self.b.ins().isub(end, c);
        let capv = self.iconst(cap);
        let len = self.b.ins().smin(rem, capv);
        let len = if taped {
            len
        } else {
            self.b.ins().band_imm_s(len, !(self.lanes as i64 - 1))
        };
        let go = self.b.ins().icmp_imm_s(IntCC::SignedGreaterThan, len, 0);
        self.b.ins().brif(go, blk, &[], exit, &[]);
        self.b.switch_to_block(blk);
        if taped {
            self.tape_chunk(id, c, len)?;
        } else {
            self.in_vector = true;
            let r = self.chunk_body(id, c, len);
            self.in_vector = false;
            r?;
        }
        let next = self.b.ins().iadd(c, len);
        self.b.def_var(var, next);
        self.b.ins().jump(head, &[]);
        self.b.switch_to_block(exit);
        Ok(self.b.use_var(var))
    }

    /// One taped chunk `c..c + len`: the reads' and the output's addresses
    /// at `c` into the argument slots, then the interpreter.
    fn tape_chunk(&mut self, id: usize, c: Value, len: Value) -> Res<()> {
        let Some(plan) = self.chunk.as_ref() else {
            return Ok(());
        };
        let Some(t) = plan.tape.as_ref() else {
            return Ok(());
        };
        let (offset, leaves) = (plan.offset, t.leaves.clone());
        let args_at = offset + (t.n_temps * plan.cap + 16 * t.leaves.len()) * 4;
        let tape = &**t as *const Tape as i64;
        self.vars[id] = Some(c);
        let args = self.b.ins().iadd_imm_s(self.scratch, args_at as i64);
        let flags = super::dtypes::flags();
        for (k, a) in leaves.iter().enumerate() {
            let p = self.access_plan(a);
            let off = self.offset(&p, 0);
            let addr = self.addr(p.ptr, off, 4);
            self.b.ins().store(flags, addr, args, (8 * k) as i32);
        }
        let shape = self.nest.expr.output.shape.clone();
        let index: Vec<AffineExpr> = (0..shape.len()).map(AffineExpr::iter).collect();
        let p = self.plan(&index, &shape);
        let off = self.offset(&p, 0);
        let out = self.addr(self.out_slot, off, 4);
        self.b
            .ins()
            .store(flags, out, args, (8 * leaves.len()) as i32);
        let temps = self.b.ins().iadd_imm_s(self.scratch, offset as i64);
        let tape = self.iconst(tape);
        self.call_chunk_helper("kiln16_tape", &[tape, args, temps, len])
    }

    /// One chunk `c..c + len`: a pass and a helper call per function node,
    /// then the body and the store.
    fn chunk_body(&mut self, id: usize, c: Value, len: Value) -> Res<()> {
        let nodes = self
            .chunk
            .as_ref()
            .map(|p| p.nodes.clone())
            .unwrap_or_default();
        let end = self.b.ins().iadd(c, len);
        let step = self.lanes as i64;
        self.chunk_base = Some(c);
        for (k, node) in nodes.iter().enumerate() {
            let Some((name, args)) = helper_of(node) else {
                continue;
            };
            let dst = self.chunk_buf(k);
            let second = self.chunk_buf(nodes.len());
            self.counted(c, end, step, &mut |s, iv| {
                s.vars[id] = Some(iv);
                for (arg, buf) in args.iter().zip([dst, second]) {
                    let v = s.value(arg, None)?;
                    let a = s.chunk_addr(buf, iv);
                    s.b.ins().store(super::dtypes::flags(), v, a, 0);
                }
                Ok(())
            })?;
            let b = if args.len() == 2 { second } else { dst };
            self.call_chunk_helper(name, &[dst, b, dst, len])?;
            self.subst.push((node.clone(), k));
        }
        let r = self.counted(c, end, step, &mut |s, iv| {
            s.vars[id] = Some(iv);
            s.point()
        });
        self.subst.clear();
        self.chunk_base = None;
        r.map(|_| ())
    }

    /// Address of buffer `buf`'s element for vector loop value `iv`.
    fn chunk_addr(&mut self, buf: Value, iv: Value) -> Value {
        let base = self.chunk_base.unwrap_or(iv);
        let i = self.b.ins().isub(iv, base);
        let off = self.b.ins().ishl_imm_s(i, 2);
        self.b.ins().iadd(buf, off)
    }

    /// Pointer to chunk buffer `k`.
    fn chunk_buf(&mut self, k: usize) -> Value {
        let (offset, cap) = self.chunk.as_ref().map_or((0, 0), |p| (p.offset, p.cap));
        self.b
            .ins()
            .iadd_imm_s(self.scratch, (offset + 4 * k * cap) as i64)
    }

    /// In a chunk's passes: `e`'s value from its buffer when a helper has
    /// computed it.
    pub fn chunk_read(&mut self, e: &ScalarExpr) -> Option<Value> {
        if !self.in_vector {
            return None;
        }
        let k = self.subst.iter().find(|(n, _)| n == e)?.1;
        let id = self.chunk.as_ref()?.loop_id;
        let iv = self.vars[id]?;
        let buf = self.chunk_buf(k);
        let a = self.chunk_addr(buf, iv);
        Some(self.b.ins().load(self.vt, super::dtypes::flags(), a, 0))
    }

    /// Calls chunk helper `name(a, b, out, n)`.
    fn call_chunk_helper(&mut self, name: &'static str, args: &[Value]) -> Res<()> {
        let f = match self.funcs.get(name) {
            Some(f) => *f,
            None => {
                let mut sig = self.module.make_signature();
                for _ in 0..4 {
                    sig.params.push(AbiParam::new(types::I64));
                }
                let id = self
                    .module
                    .declare_function(name, Linkage::Import, &sig)
                    .map_err(|e| CodegenError::Cranelift(e.to_string()))?;
                let f = self.module.declare_func_in_func(id, self.b.func);
                self.funcs.insert(name, f);
                f
            }
        };
        self.b.ins().call(f, args);
        Ok(())
    }
}
