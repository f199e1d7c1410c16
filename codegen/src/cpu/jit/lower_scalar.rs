//! Scalar bodies to Cranelift values of the current type (scalar, or a
//! vector over the vectorized loop's lanes): loads (vector load, splat or
//! lane by lane), arithmetic, comparisons as 1/0, branch-free selection
//! (both sides are safe to evaluate: unproven reads are clamped), casts and
//! math functions.

use super::dtypes::flags;
use super::emit::{Emitter, Res};
use super::math;
use crate::CodegenError;
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{Endianness, InstBuilder, MemFlagsData, Value};
use kiln_ir::expr::{Access, BinaryOp, CmpOp, ScalarExpr, UnaryOp};

impl Emitter<'_, '_> {
    /// The value of `e`; `acc` is the reduced value in an epilogue.
    pub fn value(&mut self, e: &ScalarExpr, acc: Option<Value>) -> Res<Value> {
        if !self.subst.is_empty() {
            if let Some(v) = self.chunk_read(e) {
                return Ok(v);
            }
        }
        Ok(match e {
            ScalarExpr::Const(c) => self.fconst(*c),
            ScalarExpr::Access(a) => self.load(a)?,
            ScalarExpr::InBounds(a) => self.guard(a),
            ScalarExpr::Acc => {
                acc.ok_or_else(|| CodegenError::unsupported("accumulator outside an epilogue"))?
            }
            ScalarExpr::Unary(op, x) => {
                let x = self.value(x, acc)?;
                self.unary(*op, x)?
            }
            ScalarExpr::Binary(BinaryOp::Pow, a, b) if const_exponent(b).is_some() => {
                let a = self.value(a, acc)?;
                self.pow_const(a, const_exponent(b).unwrap_or(1.0))?
            }
            ScalarExpr::Binary(op, a, b) => {
                let (a, b) = (self.value(a, acc)?, self.value(b, acc)?);
                self.binary(*op, a, b)?
            }
            ScalarExpr::Cmp(op, a, b) => {
                let (a, b) = (self.value(a, acc)?, self.value(b, acc)?);
                let c = self.b.ins().fcmp(float_cc(*op), a, b);
                self.mask_to_float(c)
            }
            ScalarExpr::Select(c, t, f) => {
                let (c, t, f) = (
                    self.value(c, acc)?,
                    self.value(t, acc)?,
                    self.value(f, acc)?,
                );
                let z = self.fconst(0.0);
                let m = self.b.ins().fcmp(FloatCC::NotEqual, c, z);
                self.select_mask(m, t, f)
            }
            ScalarExpr::Cast(d, x) => {
                let x = self.value(x, acc)?;
                self.cast(*d, x)?
            }
        })
    }

    /// `c ? a : b` for a comparison result `c` of the current type.
    pub fn select_mask(&mut self, c: Value, a: Value, b: Value) -> Value {
        if self.in_vector {
            let bits = MemFlagsData::new().with_endianness(Endianness::Little);
            let m = self.b.ins().bitcast(self.vt, bits, c);
            self.b.ins().bitselect(m, a, b)
        } else {
            self.b.ins().select(c, a, b)
        }
    }

    /// 1.0 where the comparison `c` holds, else 0.0.
    pub fn mask_to_float(&mut self, c: Value) -> Value {
        let (one, zero) = (self.fconst(1.0), self.fconst(0.0));
        self.select_mask(c, one, zero)
    }

    fn load(&mut self, a: &Access) -> Res<Value> {
        let p = self.access_plan(a);
        let d = self.nest.expr.inputs[a.input].ty.dtype;
        if !self.in_vector {
            let off = self.offset(&p, 0);
            return self.load_scalar(p.ptr, d, off);
        }
        let vid = self.vec_id.unwrap_or(usize::MAX);
        let coef = if p.safe {
            p.flat.linear_coef(vid)
        } else {
            None
        };
        let native = super::dtypes::storage(d) == Some(self.ct);
        match coef {
            Some(0) => {
                let off = self.offset(&p, 0);
                let s = self.load_scalar(p.ptr, d, off)?;
                Ok(self.b.ins().splat(self.vt, s))
            }
            Some(1) if native => {
                let off = self.offset(&p, 0);
                let addr = self.addr(p.ptr, off, d.size_of());
                Ok(self.b.ins().load(self.vt, flags(), addr, 0))
            }
            _ => {
                let mut v = self.fconst(0.0);
                for k in 0..self.lanes {
                    let off = self.offset(&p, k as i64);
                    let s = self.load_scalar(p.ptr, d, off)?;
                    v = self.b.ins().insertlane(v, s, k as u8);
                }
                Ok(v)
            }
        }
    }

    /// 1.0 where every subscript of `a` is in bounds, else 0.0.
    fn guard(&mut self, a: &Access) -> Value {
        let p = self.access_plan(a);
        let lanes = if self.in_vector { self.lanes } else { 1 };
        let mut v = self.fconst(0.0);
        for k in 0..lanes {
            let ok = self.in_bounds(&p, k as i64);
            let one = self.scalar_const(1.0);
            let zero = self.scalar_const(0.0);
            let s = self.b.ins().select(ok, one, zero);
            v = if self.in_vector {
                self.b.ins().insertlane(v, s, k as u8)
            } else {
                s
            };
        }
        v
    }

    fn unary(&mut self, op: UnaryOp, x: Value) -> Res<Value> {
        if self.in_vector && !self.is_f64() {
            match op {
                UnaryOp::Exp => return Ok(self.vexp_f32(x)),
                UnaryOp::Tanh => return Ok(self.vtanh_f32(x)),
                UnaryOp::Erf => return Ok(self.verf_f32(x)),
                UnaryOp::Log => return Ok(self.vlog_f32(x)),
                UnaryOp::Sin => return self.vsincos_f32(x, false, "kiln_sinf"),
                UnaryOp::Cos => return self.vsincos_f32(x, true, "kiln_cosf"),
                _ => {}
            }
        }
        if let Some(h) = math::unary_helper(op, self.is_f64()) {
            return self.lanewise(&[x], &mut |s, v| s.call_helper(h, v));
        }
        Ok(match op {
            UnaryOp::Neg => self.b.ins().fneg(x),
            UnaryOp::Abs => self.b.ins().fabs(x),
            UnaryOp::Sqrt => self.b.ins().sqrt(x),
            UnaryOp::Floor => self.b.ins().floor(x),
            UnaryOp::Ceil => self.b.ins().ceil(x),
            UnaryOp::Recip => {
                let one = self.fconst(1.0);
                self.b.ins().fdiv(one, x)
            }
            _ => return Err(CodegenError::unsupported(format!("function {}", op.name()))),
        })
    }

    /// `a op b` in the current type.
    pub fn binary(&mut self, op: BinaryOp, a: Value, b: Value) -> Res<Value> {
        if op == BinaryOp::Pow && self.in_vector && !self.is_f64() {
            return Ok(self.vpow_f32(a, b));
        }
        if let Some(h) = math::binary_helper(op, self.is_f64()) {
            return self.lanewise(&[a, b], &mut |s, v| s.call_helper(h, v));
        }
        Ok(match op {
            BinaryOp::Add => self.b.ins().fadd(a, b),
            BinaryOp::Sub => self.b.ins().fsub(a, b),
            BinaryOp::Mul => self.b.ins().fmul(a, b),
            BinaryOp::Div => self.b.ins().fdiv(a, b),
            BinaryOp::Max => self.b.ins().fmax(a, b),
            BinaryOp::Min => self.b.ins().fmin(a, b),
            BinaryOp::Pow => return Err(CodegenError::unsupported("pow")),
        })
    }
}

/// The exponent of `x ^ c` when `pow_const` handles it without `pow`.
pub(super) fn const_exponent(b: &ScalarExpr) -> Option<f64> {
    match b {
        ScalarExpr::Const(c) if [-1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 4.0].contains(c) => Some(*c),
        _ => None,
    }
}

impl Emitter<'_, '_> {
    /// `a ^ c` for an exponent `const_exponent` accepts, by multiplication,
    /// square root or division (within 1.5 ulp of a correctly rounded pow;
    /// `pow(NaN, 0)` is 1 as in C).
    fn pow_const(&mut self, a: Value, c: f64) -> Res<Value> {
        Ok(match c {
            0.0 => self.fconst(1.0),
            0.5 => {
                // pow(-0, 0.5) is +0 and pow(-inf, 0.5) is +inf, sqrt gives -0 / NaN.
                let s = self.b.ins().sqrt(a);
                let inf = self.fconst(f64::INFINITY);
                let ninf = self.b.ins().fneg(inf);
                let m = self.b.ins().fcmp(FloatCC::Equal, a, ninf);
                let s = self.select_mask(m, inf, s);
                self.b.ins().fabs(s)
            }
            -1.0 => {
                let one = self.fconst(1.0);
                self.b.ins().fdiv(one, a)
            }
            2.0 => self.b.ins().fmul(a, a),
            3.0 => {
                let sq = self.b.ins().fmul(a, a);
                self.b.ins().fmul(sq, a)
            }
            4.0 => {
                let sq = self.b.ins().fmul(a, a);
                self.b.ins().fmul(sq, sq)
            }
            _ => a,
        })
    }
}

fn float_cc(op: CmpOp) -> FloatCC {
    match op {
        CmpOp::Eq => FloatCC::Equal,
        CmpOp::Ne => FloatCC::NotEqual,
        CmpOp::Lt => FloatCC::LessThan,
        CmpOp::Le => FloatCC::LessThanOrEqual,
        CmpOp::Gt => FloatCC::GreaterThan,
        CmpOp::Ge => FloatCC::GreaterThanOrEqual,
    }
}
