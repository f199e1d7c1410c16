//! Filling staged buffers and reading them: nested loops over a buffer's
//! dense shape that copy the input (zeros outside it) or evaluate the
//! input's producer there (at indices clamped into its output, zeros
//! outside), and the element offsets of accesses rebased into a buffer.

use super::dtypes::{flags, storage};
use super::emit::{Emitter, Res};
use super::lower_index::AccessPlan;
use super::staging::Staged;
use crate::CodegenError;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use kiln_ir::expr::index::flat_offset;
use kiln_ir::expr::stage::{packed_index, StageKind};
use kiln_ir::expr::{Access, AffineExpr};

impl Emitter<'_, '_> {
    /// Fills the buffers staged at loop id `at` (`None`: before the nest).
    pub fn fill_stages(&mut self, at: Option<usize>) -> Res<()> {
        if !self.staging {
            return Ok(());
        }
        for k in 0..self.staged.len() {
            if self.staged[k].stage.at == at {
                let st = self.staged[k].clone();
                self.fill(&st)?;
            }
        }
        Ok(())
    }

    fn fill(&mut self, st: &Staged) -> Res<()> {
        let starts: Vec<Value> = st.region.start.iter().map(|e| self.affine(e, 0)).collect();
        let strides = kiln_ir::strides(&st.dims);
        let body = &mut |s: &mut Self, t: &[Value]| -> Res<()> {
            let src: Vec<Value> = match st.stage.kind {
                StageKind::Pack { axis, block } => {
                    let mut v = t[..st.shape.len()].to_vec();
                    let o = s.b.ins().imul_imm_s(t[axis], block as i64);
                    v[axis] = s.b.ins().iadd(o, t[st.shape.len()]);
                    v
                }
                _ => starts
                    .iter()
                    .zip(t)
                    .map(|(&a, &b)| s.b.ins().iadd(a, b))
                    .collect(),
            };
            let mut dst = s.iconst(0);
            for (&x, &k) in t.iter().zip(&strides) {
                let y = s.b.ins().imul_imm_s(x, k as i64);
                dst = s.b.ins().iadd(dst, y);
            }
            match st.producer {
                None => s.copy_element(st, &src, dst),
                Some(p) => s.compute_element(st, p, &src, dst),
            }
        };
        let mut idx = vec![];
        self.box_level(&st.dims, &mut idx, body)
    }

    /// Loops over `dims[idx.len()..]` inside the indices in `idx`.
    fn box_level(
        &mut self,
        dims: &[usize],
        idx: &mut Vec<Value>,
        body: &mut dyn FnMut(&mut Self, &[Value]) -> Res<()>,
    ) -> Res<()> {
        let d = idx.len();
        if d == dims.len() {
            return body(self, idx);
        }
        let (zero, end) = (self.iconst(0), self.iconst(dims[d] as i64));
        self.counted(zero, end, 1, &mut |s, iv| {
            idx.push(iv);
            let r = s.box_level(dims, idx, body);
            idx.pop();
            r
        })?;
        Ok(())
    }

    /// 1 (i8) when every `src[d]` lies in `0..shape[d]`.
    fn all_in(&mut self, src: &[Value], shape: &[usize]) -> Value {
        let mut ok = self.b.ins().iconst(types::I8, 1);
        for (&v, &n) in src.iter().zip(shape) {
            let c = self
                .b
                .ins()
                .icmp_imm_s(IntCC::UnsignedLessThan, v, n as i64);
            ok = self.b.ins().band(ok, c);
        }
        ok
    }

    /// Copies input element `src` (zero outside the input) to `dst`.
    fn copy_element(&mut self, st: &Staged, src: &[Value], dst: Value) -> Res<()> {
        let ty = storage(st.dtype).ok_or_else(|| CodegenError::unsupported(st.dtype.name()))?;
        let ok = self.all_in(src, &st.shape);
        let mut flat = self.iconst(0);
        for (&x, &k) in src.iter().zip(&kiln_ir::strides(&st.shape)) {
            let y = self.b.ins().imul_imm_s(x, k as i64);
            flat = self.b.ins().iadd(flat, y);
        }
        let zero = self.iconst(0);
        let off = self.b.ins().select(ok, flat, zero);
        let size = st.dtype.size_of();
        let a = self.addr(self.slots[st.stage.input], off, size);
        let raw = self.b.ins().load(ty, flags(), a, 0);
        let z = match ty {
            types::F32 => self.b.ins().f32const(0.0),
            types::F64 => self.b.ins().f64const(0.0),
            _ => self.b.ins().iconst(ty, 0),
        };
        let v = self.b.ins().select(ok, raw, z);
        let d = self.addr(st.slot, dst, size);
        self.b.ins().store(flags(), v, d, 0);
        Ok(())
    }

    /// Evaluates producer `p` at `src` (clamped into its output; zero
    /// outside it) and stores the result to `dst`.
    fn compute_element(&mut self, st: &Staged, p: usize, src: &[Value], dst: Value) -> Res<()> {
        let ok = self.all_in(src, &st.shape);
        let prods = self.producers;
        let prod = &prods[p];
        let mut vars = vec![];
        for (&v, &n) in src.iter().zip(&st.shape) {
            let (z, hi) = (self.iconst(0), self.iconst(n as i64 - 1));
            let c = self.b.ins().smin(v, hi);
            vars.push(Some(self.b.ins().smax(c, z)));
        }
        let ranges = prod.nest.loop_ranges();
        let saved = (
            std::mem::replace(&mut self.nest, &prod.nest),
            std::mem::replace(&mut self.slots, prod.slots.clone()),
            std::mem::replace(&mut self.ranges, ranges.clone()),
            std::mem::replace(&mut self.iter_ranges, ranges),
            std::mem::replace(&mut self.vars, vars),
            self.vec_id.take(),
            std::mem::replace(&mut self.staging, false),
        );
        let v = self.value(&prod.nest.expr.body, None);
        self.nest = saved.0;
        self.slots = saved.1;
        self.ranges = saved.2;
        self.iter_ranges = saved.3;
        self.vars = saved.4;
        self.vec_id = saved.5;
        self.staging = saved.6;
        let v = v?;
        let z = self.scalar_const(0.0);
        let v = self.b.ins().select(ok, v, z);
        self.store_scalar(st.slot, st.dtype, dst, v)
    }

    /// The stage whose buffer serves reads of `input` here, if any.
    fn active_stage(&self, input: usize) -> Option<&Staged> {
        if !self.staging {
            return None;
        }
        let st = self.staged.iter().find(|s| s.stage.input == input)?;
        match st.stage.at {
            None => Some(st),
            Some(id) => self.vars.get(id).copied().flatten().map(|_| st),
        }
    }

    /// The addressing plan of an input access: into its buffer when one
    /// serves it (bounds checks stay on the input's own subscripts).
    pub fn access_plan(&self, a: &Access) -> AccessPlan {
        let shape = self.nest.expr.inputs[a.input].ty.shape.clone();
        let mut p = self.plan(&a.index, &shape);
        p.ptr = self.slots[a.input];
        let Some(st) = self.active_stage(a.input) else {
            return p;
        };
        let flat = match st.stage.kind {
            StageKind::Pack { axis, block } => {
                let idx = packed_index(&a.index, axis, block);
                self.to_loops(&flat_offset(&idx, &st.dims))
            }
            _ => {
                let rebased: Vec<AffineExpr> = p
                    .subs
                    .iter()
                    .zip(&st.region.start)
                    .map(|(s, b)| s.clone().add_scaled(b, -1))
                    .collect();
                flat_offset(&rebased, &st.dims).simplified(Some(&self.ranges))
            }
        };
        p.flat = flat;
        p.ptr = st.slot;
        p
    }
}
