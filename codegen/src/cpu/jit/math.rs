//! Scalar math helpers the generated code calls (`extern "C"`, registered
//! as JIT symbols): transcendental functions in f32 and f64. Vector code
//! calls them lane by lane.

use kiln_ir::expr::{BinaryOp, UnaryOp};

macro_rules! helpers {
    ($($name:ident: $t:ty => $body:expr;)*) => {
        $(extern "C" fn $name(x: $t) -> $t { ($body)(x) })*
        /// Every one-argument helper: symbol name and address.
        const UNARY: &[(&str, *const u8)] = &[$((stringify!($name), $name as *const u8)),*];
    };
}

helpers! {
    kiln_expf: f32 => f32::exp;
    kiln_logf: f32 => f32::ln;
    kiln_tanhf: f32 => f32::tanh;
    kiln_erff: f32 => libm::erff;
    kiln_sinf: f32 => f32::sin;
    kiln_cosf: f32 => f32::cos;
    kiln_exp: f64 => f64::exp;
    kiln_log: f64 => f64::ln;
    kiln_tanh: f64 => f64::tanh;
    kiln_erf: f64 => libm::erf;
    kiln_sin: f64 => f64::sin;
    kiln_cos: f64 => f64::cos;
}

extern "C" fn kiln_powf(a: f32, b: f32) -> f32 {
    a.powf(b)
}

extern "C" fn kiln_pow(a: f64, b: f64) -> f64 {
    a.powf(b)
}

/// Every helper symbol with its address, for the JIT's symbol table.
pub(super) fn symbols() -> Vec<(&'static str, *const u8)> {
    let mut v = UNARY.to_vec();
    v.push(("kiln_powf", kiln_powf as *const u8));
    v.push(("kiln_pow", kiln_pow as *const u8));
    v.extend(super::vmath16::symbols());
    v.extend(super::tape16::symbols());
    v
}

/// The helper computing `op`, if it needs one; `f64` picks the precision.
pub(super) fn unary_helper(op: UnaryOp, f64: bool) -> Option<&'static str> {
    let (s, d) = match op {
        UnaryOp::Exp => ("kiln_expf", "kiln_exp"),
        UnaryOp::Log => ("kiln_logf", "kiln_log"),
        UnaryOp::Tanh => ("kiln_tanhf", "kiln_tanh"),
        UnaryOp::Erf => ("kiln_erff", "kiln_erf"),
        UnaryOp::Sin => ("kiln_sinf", "kiln_sin"),
        UnaryOp::Cos => ("kiln_cosf", "kiln_cos"),
        _ => return None,
    };
    Some(if f64 { d } else { s })
}

/// The helper computing a binary op, if it needs one.
pub(super) fn binary_helper(op: BinaryOp, f64: bool) -> Option<&'static str> {
    match op {
        BinaryOp::Pow => Some(if f64 { "kiln_pow" } else { "kiln_powf" }),
        _ => None,
    }
}

/// Number of arguments of a helper.
pub(super) fn arity(name: &str) -> usize {
    if name.starts_with("kiln_pow") {
        2
    } else {
        1
    }
}
