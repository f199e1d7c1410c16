//! Dtypes: the compute type of an expression (f32 when every dtype it
//! touches is exact in f32, else f64, matching the f64 oracle; integer
//! arithmetic is therefore not i64-wrapping, and 64-bit integer inputs are
//! refused), loads that convert to it, stores and casts with Rust `as`
//! semantics (truncation, saturation, NaN to 0; bool is `!= 0`).

use super::emit::{Emitter, Res};
use crate::CodegenError;
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Type, Value};
use kiln_ir::expr::{ScalarExpr, TensorExpr};
use kiln_ir::DType;

/// Loads and stores: may trap only on bad pointers (never on alignment).
pub(super) fn flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// The Cranelift type holding one element of `d`; `None` if unsupported.
pub(super) fn storage(d: DType) -> Option<Type> {
    Some(match d {
        DType::F32 => types::F32,
        DType::F64 => types::F64,
        DType::I8 | DType::U8 | DType::Bool => types::I8,
        DType::I16 | DType::U16 => types::I16,
        DType::I32 | DType::U32 => types::I32,
        DType::I64 | DType::U64 => types::I64,
        _ => return None,
    })
}

fn collect_casts(e: &ScalarExpr, out: &mut Vec<DType>) {
    match e {
        ScalarExpr::Cast(d, x) => {
            out.push(*d);
            collect_casts(x, out);
        }
        ScalarExpr::Unary(_, x) => collect_casts(x, out),
        ScalarExpr::Binary(_, a, b) | ScalarExpr::Cmp(_, a, b) => {
            collect_casts(a, out);
            collect_casts(b, out);
        }
        ScalarExpr::Select(c, t, f) => {
            for x in [c, t, f] {
                collect_casts(x, out);
            }
        }
        _ => {}
    }
}

/// F32 or F64: the type every value of `e` is computed in.
/// I64/U64 inputs are refused: f64 compute would round values past 2^53.
pub fn compute_type(e: &TensorExpr) -> Result<Type, CodegenError> {
    if let Some(o) = e
        .inputs
        .iter()
        .find(|o| matches!(o.ty.dtype, DType::I64 | DType::U64))
    {
        return Err(CodegenError::unsupported(format!(
            "{} input `{}` (not exact in f64 compute)",
            o.ty.dtype.name(),
            o.name
        )));
    }
    let mut all: Vec<DType> = e.inputs.iter().map(|o| o.ty.dtype).collect();
    all.push(e.output.dtype);
    collect_casts(&e.body, &mut all);
    if let Some(ep) = &e.epilogue {
        collect_casts(ep, &mut all);
    }
    let mut wide = false;
    for d in all {
        if storage(d).is_none() {
            return Err(CodegenError::unsupported(format!("dtype {}", d.name())));
        }
        wide |= matches!(
            d,
            DType::F64 | DType::I32 | DType::U32 | DType::I64 | DType::U64
        );
    }
    Ok(if wide { types::F64 } else { types::F32 })
}

impl Emitter<'_, '_> {
    /// Converts a loaded element of `d` to the scalar compute type.
    pub fn widen_loaded(&mut self, d: DType, raw: Value) -> Value {
        let ct = self.ct;
        match d {
            DType::F32 if ct == types::F64 => self.b.ins().fpromote(ct, raw),
            DType::F64 if ct == types::F32 => self.b.ins().fdemote(ct, raw),
            DType::F32 | DType::F64 => raw,
            DType::U64 => self.b.ins().fcvt_from_uint(ct, raw),
            DType::I8 | DType::I16 | DType::I32 => {
                let w = self.b.ins().sextend(types::I64, raw);
                self.b.ins().fcvt_from_sint(ct, w)
            }
            DType::I64 => self.b.ins().fcvt_from_sint(ct, raw),
            _ => {
                let w = self.b.ins().uextend(types::I64, raw);
                self.b.ins().fcvt_from_sint(ct, w)
            }
        }
    }

    /// Loads element `off` of pointer `ptr` (dtype `d`) as a scalar.
    pub fn load_scalar(&mut self, ptr: usize, d: DType, off: Value) -> Res<Value> {
        let ty = storage(d).ok_or_else(|| CodegenError::unsupported(d.name()))?;
        let a = self.addr(ptr, off, d.size_of());
        let raw = self.b.ins().load(ty, flags(), a, 0);
        Ok(self.widen_loaded(d, raw))
    }

    /// `x` rounded to the value set of integer dtype `d` (in the current
    /// float type): clamp, truncate, NaN to 0.
    fn int_round(&mut self, d: DType, x: Value) -> Value {
        let (lo, hi) = match d {
            DType::I8 => (i8::MIN as f64, i8::MAX as f64),
            DType::U8 => (0.0, u8::MAX as f64),
            DType::I16 => (i16::MIN as f64, i16::MAX as f64),
            DType::U16 => (0.0, u16::MAX as f64),
            DType::I32 => (i32::MIN as f64, i32::MAX as f64),
            DType::U32 => (0.0, u32::MAX as f64),
            DType::I64 => (i64::MIN as f64, i64::MAX as f64),
            _ => (0.0, u64::MAX as f64),
        };
        let (l, h, z) = (self.fconst(lo), self.fconst(hi), self.fconst(0.0));
        let c = self.b.ins().fmax(x, l);
        let c = self.b.ins().fmin(c, h);
        let t = self.b.ins().trunc(c);
        let nan = self.b.ins().fcmp(FloatCC::Unordered, x, x);
        self.select_mask(nan, z, t)
    }

    /// `Cast(d, x)` in the compute type.
    pub fn cast(&mut self, d: DType, x: Value) -> Res<Value> {
        match d {
            DType::F64 => Ok(x),
            DType::F32 if !self.is_f64() => Ok(x),
            DType::F32 => self.lanewise(&[x], &mut |s, v| {
                let n = s.b.ins().fdemote(types::F32, v[0]);
                Ok(s.b.ins().fpromote(types::F64, n))
            }),
            DType::Bool => {
                let z = self.fconst(0.0);
                let ne = self.b.ins().fcmp(FloatCC::NotEqual, x, z);
                Ok(self.mask_to_float(ne))
            }
            _ if storage(d).is_some() => Ok(self.int_round(d, x)),
            _ => Err(CodegenError::unsupported(format!("cast to {}", d.name()))),
        }
    }

    /// Converts a scalar compute value to dtype `d` and stores it.
    pub fn store_scalar(&mut self, ptr: usize, d: DType, off: Value, x: Value) -> Res<()> {
        let raw = match d {
            DType::F32 if self.is_f64() => self.b.ins().fdemote(types::F32, x),
            DType::F64 if !self.is_f64() => self.b.ins().fpromote(types::F64, x),
            DType::F32 | DType::F64 => x,
            DType::Bool => {
                let z = self.scalar_const(0.0);
                self.b.ins().fcmp(FloatCC::NotEqual, x, z)
            }
            DType::U64 => {
                let r = self.int_round(d, x);
                self.b.ins().fcvt_to_uint_sat(types::I64, r)
            }
            _ => {
                let r = self.int_round(d, x);
                let w = self.b.ins().fcvt_to_sint_sat(types::I64, r);
                let ty = storage(d).ok_or_else(|| CodegenError::unsupported(d.name()))?;
                if ty == types::I64 {
                    w
                } else {
                    self.b.ins().ireduce(ty, w)
                }
            }
        };
        let a = self.addr(ptr, off, d.size_of());
        self.b.ins().store(flags(), raw, a, 0);
        Ok(())
    }
}
