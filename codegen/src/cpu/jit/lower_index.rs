//! Index arithmetic: quasi-affine expressions over loop variables to i64
//! values (floor division and modulo with non-negative results), and the
//! element offsets of accesses, with a bounds check where the subscripts
//! are not proven in bounds.

use super::emit::Emitter;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use kiln_ir::expr::index::flat_offset;
use kiln_ir::expr::{AffineExpr, Atom};

/// How an access is addressed inside the loop nest.
pub(super) struct AccessPlan {
    /// Element offset over loop ids.
    pub flat: AffineExpr,
    /// Subscripts over loop ids (for bounds checks).
    pub subs: Vec<AffineExpr>,
    pub shape: Vec<usize>,
    /// Every subscript provably in bounds.
    pub safe: bool,
    /// Pointer slot read (inputs: set by `access_plan`).
    pub ptr: usize,
}

impl Emitter<'_, '_> {
    /// Rewrites an expression over iterators to one over loop ids.
    pub fn to_loops(&self, e: &AffineExpr) -> AffineExpr {
        let defs = &self.nest.defs;
        e.substitute(&|i| defs[i].clone())
            .simplified(Some(&self.ranges))
    }

    /// The addressing plan of `a` on a tensor of `shape`.
    pub fn plan(&self, index: &[AffineExpr], shape: &[usize]) -> AccessPlan {
        let safe = index.iter().zip(shape).all(|(s, &d)| {
            s.range(&self.iter_ranges)
                .is_some_and(|(lo, hi)| lo >= 0 && hi < d as i64)
        });
        AccessPlan {
            flat: self.to_loops(&flat_offset(index, shape)),
            subs: index.iter().map(|s| self.to_loops(s)).collect(),
            shape: shape.to_vec(),
            safe,
            ptr: self.out_slot,
        }
    }

    /// The value of `e` (over loop ids) with the vector loop variable
    /// advanced by `lane`.
    pub fn affine(&mut self, e: &AffineExpr, lane: i64) -> Value {
        let mut v = self.iconst(e.constant);
        for (c, a) in &e.terms {
            let x = match a {
                Atom::Iter(i) => {
                    let x = self.vars[*i].expect("loop variable in scope");
                    if Some(*i) == self.vec_id && lane != 0 {
                        self.b.ins().iadd_imm_s(x, lane)
                    } else {
                        x
                    }
                }
                Atom::FloorDiv(inner, d) => self.floor_div(inner, *d, lane, false),
                Atom::Mod(inner, d) => self.floor_div(inner, *d, lane, true),
            };
            let x = if *c == 1 {
                x
            } else {
                self.b.ins().imul_imm_s(x, *c)
            };
            v = self.b.ins().iadd(v, x);
        }
        v
    }

    /// `floor(e / d)` or `e mod d` (non-negative), `d > 0`.
    fn floor_div(&mut self, e: &AffineExpr, d: i64, lane: i64, rem: bool) -> Value {
        let x = self.affine(e, lane);
        let nonneg = e.range(&self.ranges).is_some_and(|(lo, _)| lo >= 0);
        if nonneg {
            return if rem {
                self.b.ins().urem_imm_s(x, d)
            } else {
                self.b.ins().udiv_imm_s(x, d)
            };
        }
        let q = self.b.ins().sdiv_imm_s(x, d);
        let r = self.b.ins().srem_imm_s(x, d);
        let neg = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, r, 0);
        let neg = self.b.ins().uextend(types::I64, neg);
        if rem {
            let fix = self.b.ins().imul_imm_s(neg, d);
            self.b.ins().iadd(r, fix)
        } else {
            self.b.ins().isub(q, neg)
        }
    }

    /// 1 (i8) when every subscript of `p` is in bounds at `lane`.
    pub fn in_bounds(&mut self, p: &AccessPlan, lane: i64) -> Value {
        let mut ok = self.b.ins().iconst(types::I8, 1);
        for (s, &d) in p.subs.iter().zip(&p.shape) {
            let v = self.affine(s, lane);
            let c = self
                .b
                .ins()
                .icmp_imm_s(IntCC::UnsignedLessThan, v, d as i64);
            ok = self.b.ins().band(ok, c);
        }
        ok
    }

    /// The element offset of `p` at `lane`; 0 where it is out of bounds
    /// (the value read there is never used).
    pub fn offset(&mut self, p: &AccessPlan, lane: i64) -> Value {
        let off = self.affine(&p.flat, lane);
        if p.safe {
            return off;
        }
        let ok = self.in_bounds(p, lane);
        let zero = self.iconst(0);
        self.b.ins().select(ok, off, zero)
    }

    /// The address of element `off` of pointer `ptr` (elements of `size` bytes).
    pub fn addr(&mut self, ptr: usize, off: Value, size: usize) -> Value {
        let bytes = self.b.ins().imul_imm_s(off, size as i64);
        self.b.ins().iadd(self.ptrs[ptr], bytes)
    }
}
