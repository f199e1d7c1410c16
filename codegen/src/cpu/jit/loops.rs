//! Loop emission: counted loops with runtime bounds (tails of splits), the
//! outermost loop over the caller's `lo..hi`, vectorized loops as a SIMD
//! main loop (unrolled if asked) plus a scalar tail, unrolled loops plus a
//! remainder, reduction accumulators (vector partial sums combined
//! horizontally after a vectorized reduction loop) and the final store.

use super::emit::{Emitter, Res};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::Variable;
use kiln_ir::expr::{BinaryOp, ReduceKind, ScalarExpr};

impl Emitter<'_, '_> {
    /// Emits what lies at `level`: a loop, the output point (after the
    /// output loops) or one accumulation (inside all loops).
    pub fn inner(&mut self, level: usize) -> Res<()> {
        if level == self.nest.n_out() {
            self.point()
        } else {
            self.reduction_from(level)
        }
    }

    fn reduction_from(&mut self, level: usize) -> Res<()> {
        if level == self.nest.loops.len() {
            self.accumulate()
        } else {
            self.loop_at(level)
        }
    }

    /// `for iv in start..end step step { body(iv) }`; returns the first
    /// index not visited (`iv + step > end` there).
    pub(super) fn counted(
        &mut self,
        start: Value,
        end: Value,
        step: i64,
        body: &mut dyn FnMut(&mut Self, Value) -> Res<()>,
    ) -> Res<Value> {
        let var = self.b.declare_var(types::I64);
        self.b.def_var(var, start);
        let (head, blk, exit) = (
            self.b.create_block(),
            self.b.create_block(),
            self.b.create_block(),
        );
        self.b.ins().jump(head, &[]);
        self.b.switch_to_block(head);
        let iv = self.b.use_var(var);
        let next = self.b.ins().iadd_imm_s(iv, step);
        let go = self.b.ins().icmp(IntCC::SignedLessThanOrEqual, next, end);
        self.b.ins().brif(go, blk, &[], exit, &[]);
        self.b.switch_to_block(blk);
        body(self, iv)?;
        let iv = self.b.use_var(var);
        let next = self.b.ins().iadd_imm_s(iv, step);
        self.b.def_var(var, next);
        self.b.ins().jump(head, &[]);
        self.b.switch_to_block(exit);
        Ok(self.b.use_var(var))
    }

    /// The range `start..end` of loop `level` at this point.
    fn bounds(&mut self, level: usize) -> (Value, Value) {
        let l = &self.nest.loops[level];
        if level == 0 && !l.reduce {
            let ext = self.iconst(l.extent as i64);
            let hi = self.b.ins().smin(self.lo_hi.1, ext);
            return (self.lo_hi.0, hi);
        }
        let bounds = l.bounds.clone();
        let mut end = self.iconst(l.extent as i64);
        for b in bounds {
            let v = self.affine(&b, 0);
            end = self.b.ins().smin(end, v);
        }
        (self.iconst(0), end)
    }

    /// Emits loop `level` and everything inside it.
    fn loop_at(&mut self, level: usize) -> Res<()> {
        let l = self.nest.loops[level].clone();
        let (start, end) = self.bounds(level);
        let u = l.unroll.max(1) as i64;
        let n_out = self.nest.n_out();
        // Unroll-and-jam: the copies of an unrolled last output loop share
        // the reduction loops inside, one accumulator each.
        // (Not when a reduction loop is vectorized: its accumulator swap
        // assumes one accumulator.)
        let vector_red = self.nest.loops[n_out..].iter().any(|r| r.vector.is_some());
        // (Nor with local buffers: they are filled for one copy's values.)
        let local = self.staged.iter().any(|s| s.stage.at.is_some());
        let jam = !l.reduce
            && level + 1 == n_out
            && self.nest.expr.reduce.is_some()
            && !vector_red
            && !local;
        let body = |s: &mut Self, iv: Value, copies: i64, stride: i64| -> Res<()> {
            let vals: Vec<Value> = (0..copies)
                .map(|k| {
                    if k == 0 {
                        iv
                    } else {
                        s.b.ins().iadd_imm_s(iv, k * stride)
                    }
                })
                .collect();
            if jam && copies > 1 {
                s.jam = vals.iter().map(|&v| (l.id, v)).collect();
                s.vars[l.id] = Some(iv);
                let r = s.inner(level + 1);
                s.jam.clear();
                return r;
            }
            // Split accumulators belong to this loop's copies only.
            let accs = std::mem::take(&mut s.split_accs);
            for (k, v) in vals.into_iter().enumerate() {
                if let Some(a) = accs.get(k) {
                    s.acc = Some(*a);
                }
                s.vars[l.id] = Some(v);
                s.fill_stages(Some(l.id))?;
                s.inner(level + 1)?;
            }
            s.split_accs = accs;
            Ok(())
        };
        let mut at = start;
        if self.is_chunked(l.id) {
            at = self.chunked(l.id, at, end)?;
        } else if l.vector.is_some() && !self.in_vector {
            let lanes = self.lanes as i64;
            let saved = self.begin_vector_reduction(l.reduce);
            self.in_vector = true;
            if u > 1 {
                let first = self.split_accumulators(l.reduce, u as usize);
                at = self.counted(at, end, lanes * u, &mut |s, iv| body(s, iv, u, lanes))?;
                self.merge_accumulators(first)?;
            }
            at = self.counted(at, end, lanes, &mut |s, iv| body(s, iv, 1, lanes))?;
            self.in_vector = false;
            self.end_vector_reduction(saved)?;
        } else if u > 1 {
            at = self.counted(at, end, u, &mut |s, iv| body(s, iv, u, 1))?;
        }
        self.counted(at, end, 1, &mut |s, iv| body(s, iv, 1, 1))?;
        self.vars[l.id] = None;
        Ok(())
    }

    /// For an unrolled vectorized reduction loop: `u` independent vector
    /// accumulators (the first is the current one), used by the copies.
    fn split_accumulators(&mut self, reduce: bool, u: usize) -> Option<Variable> {
        let first = self.acc.filter(|_| reduce)?;
        let kind = self.nest.expr.reduce.as_ref()?.kind;
        let mut accs = vec![first];
        for _ in 1..u {
            let a = self.b.declare_var(self.vt);
            let init = self.fconst(kind.identity());
            self.b.def_var(a, init);
            accs.push(a);
        }
        self.split_accs = accs;
        Some(first)
    }

    /// Combines the split accumulators back into the first.
    fn merge_accumulators(&mut self, first: Option<Variable>) -> Res<()> {
        let accs = std::mem::take(&mut self.split_accs);
        let (Some(first), Some(kind)) = (first, self.nest.expr.reduce.as_ref().map(|r| r.kind))
        else {
            return Ok(());
        };
        let mut v = self.b.use_var(first);
        for a in &accs[1..] {
            let x = self.b.use_var(*a);
            v = self.combine(kind, v, x)?;
        }
        self.b.def_var(first, v);
        self.acc = Some(first);
        Ok(())
    }

    /// One output point (or one per jammed copy): the body, or a reduction
    /// and its epilogue; stored.
    pub(super) fn point(&mut self) -> Res<()> {
        let e = &self.nest.expr;
        let Some(r) = &e.reduce else {
            let v = self.value(&e.body, None)?;
            return self.store(v);
        };
        let (kind, epilogue) = (r.kind, e.epilogue.clone());
        let jam = std::mem::take(&mut self.jam);
        let copies = jam.len().max(1);
        let mut accs = vec![];
        for _ in 0..copies {
            let acc = self.b.declare_var(self.cur_ty());
            let init = self.fconst(kind.identity());
            self.b.def_var(acc, init);
            accs.push(acc);
        }
        self.jam_accs = accs.clone();
        self.jam = jam.clone();
        let outer = self.acc.replace(accs[0]);
        self.reduction_from(self.nest.n_out())?;
        self.acc = outer;
        for (k, acc) in accs.into_iter().enumerate() {
            if let Some(&(id, v)) = jam.get(k) {
                self.vars[id] = Some(v);
            }
            let v = self.b.use_var(acc);
            let v = match &epilogue {
                Some(ep) => self.value(ep, Some(v))?,
                None => v,
            };
            self.store(v)?;
        }
        Ok(())
    }

    /// `acc = combine(acc, body)` for the current accumulator (or each
    /// jammed copy), with FMA for a sum of products.
    fn accumulate(&mut self) -> Res<()> {
        if self.jam.is_empty() {
            return self.accumulate_one();
        }
        let (jam, accs) = (self.jam.clone(), self.jam_accs.clone());
        let saved = self.acc;
        for (&(id, v), acc) in jam.iter().zip(accs) {
            self.vars[id] = Some(v);
            self.acc = Some(acc);
            self.accumulate_one()?;
        }
        self.acc = saved;
        Ok(())
    }

    fn accumulate_one(&mut self) -> Res<()> {
        let e = &self.nest.expr;
        let (Some(r), Some(acc)) = (&e.reduce, self.acc) else {
            return Ok(());
        };
        let kind = r.kind;
        let a = self.b.use_var(acc);
        let v = match (&e.body, kind, self.use_fma) {
            (ScalarExpr::Binary(BinaryOp::Mul, x, y), ReduceKind::Sum, true) => {
                let (x, y) = (self.value(x, None)?, self.value(y, None)?);
                self.b.ins().fma(x, y, a)
            }
            (body, _, _) => {
                let x = self.value(body, None)?;
                self.combine(kind, a, x)?
            }
        };
        self.b.def_var(acc, v);
        Ok(())
    }

    /// `acc` combined with `x`. Max and min take `x` where it is above
    /// (below) the accumulator or NaN: a compare and a select (NaN, once
    /// seen, stays), cheaper than `fmax`'s full IEEE sequence.
    fn combine(&mut self, kind: ReduceKind, a: Value, x: Value) -> Res<Value> {
        let op = match kind {
            ReduceKind::Sum => BinaryOp::Add,
            ReduceKind::Prod => BinaryOp::Mul,
            ReduceKind::Max | ReduceKind::Min => {
                let cc = if kind == ReduceKind::Max {
                    FloatCC::GreaterThan
                } else {
                    FloatCC::LessThan
                };
                let better = self.b.ins().fcmp(cc, x, a);
                let nan = self.b.ins().fcmp(FloatCC::Unordered, x, x);
                let take = self.b.ins().bor(better, nan);
                return Ok(self.select_mask(take, x, a));
            }
        };
        self.binary(op, a, x)
    }

    /// Before a vectorized reduction loop: a vector accumulator at the
    /// identity replaces the scalar one (returned for the end).
    fn begin_vector_reduction(&mut self, reduce: bool) -> Option<cranelift_frontend::Variable> {
        if !reduce {
            return None;
        }
        let kind = self.nest.expr.reduce.as_ref()?.kind;
        let scalar = self.acc?;
        let vacc = self.b.declare_var(self.vt);
        let s = self.scalar_const(kind.identity());
        let init = self.b.ins().splat(self.vt, s);
        self.b.def_var(vacc, init);
        self.acc = Some(vacc);
        Some(scalar)
    }

    /// After it: the lanes are combined into the scalar accumulator.
    fn end_vector_reduction(&mut self, saved: Option<cranelift_frontend::Variable>) -> Res<()> {
        let (Some(scalar), Some(vacc)) = (saved, self.acc) else {
            return Ok(());
        };
        let Some(kind) = self.nest.expr.reduce.as_ref().map(|r| r.kind) else {
            return Ok(());
        };
        let v = self.b.use_var(vacc);
        let mut a = self.b.use_var(scalar);
        for k in 0..self.lanes as u8 {
            let x = self.b.ins().extractlane(v, k);
            a = self.combine(kind, a, x)?;
        }
        self.b.def_var(scalar, a);
        self.acc = Some(scalar);
        Ok(())
    }

    /// Stores `v` (current type) to the output at the current point.
    fn store(&mut self, v: Value) -> Res<()> {
        let e = &self.nest.expr;
        let (shape, d) = (e.output.shape.clone(), e.output.dtype);
        let index: Vec<_> = (0..shape.len())
            .map(kiln_ir::expr::AffineExpr::iter)
            .collect();
        let p = self.plan(&index, &shape);
        let out = self.out_slot;
        if !self.in_vector {
            let off = self.offset(&p, 0);
            return self.store_scalar(out, d, off, v);
        }
        let vid = self.vec_id.unwrap_or(usize::MAX);
        let native = super::dtypes::storage(d) == Some(self.ct);
        if native && p.flat.linear_coef(vid) == Some(1) {
            let off = self.offset(&p, 0);
            let a = self.addr(out, off, d.size_of());
            self.b.ins().store(super::dtypes::flags(), v, a, 0);
            return Ok(());
        }
        self.in_vector = false;
        for k in 0..self.lanes {
            let x = self.b.ins().extractlane(v, k as u8);
            let off = self.offset(&p, k as i64);
            self.store_scalar(out, d, off, x)?;
        }
        self.in_vector = true;
        Ok(())
    }
}
