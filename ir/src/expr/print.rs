//! The readable text form of a tensor expression:
//!
//! ```text
//! C: f32[4,5] <- A: f32[4,3], B: f32[3,5]
//! C[i, j] = sum(k: 0..3) A[i, k] * B[k, j]
//! ```
//!
//! Iterator ranges are `name: 0..extent`; a guarded read is
//! `guard(X[...], fill)`; `max`, `min`, `pow`, `select` and math functions
//! print as calls; a cast is `f32(x)`.

use super::affine::{AffineExpr, Atom};
use super::scalar::{Access, BinaryOp, CmpOp, ScalarExpr};
use super::tensor::TensorExpr;
use std::fmt::{self, Write};

/// Names used while printing: iterators and inputs.
struct Names<'a> {
    iters: Vec<&'a str>,
    inputs: Vec<&'a str>,
}

impl Names<'_> {
    fn iter(&self, i: usize) -> String {
        self.iters.get(i).map_or(format!("?{i}"), |s| s.to_string())
    }
}

/// Prints an index expression with iterator names.
fn affine(e: &AffineExpr, n: &Names) -> String {
    let mut s = String::new();
    for (k, (c, a)) in e.terms.iter().enumerate() {
        let atom = match a {
            Atom::Iter(i) => n.iter(*i),
            Atom::FloorDiv(x, d) => format!("{} / {d}", wrapped(x, n)),
            Atom::Mod(x, d) => format!("{} % {d}", wrapped(x, n)),
        };
        let atom = if matches!(a, Atom::Iter(_)) || c.abs() == 1 && e.terms.len() == 1 {
            atom
        } else {
            format!("({atom})")
        };
        let mag = c.unsigned_abs();
        let body = if mag == 1 {
            atom
        } else {
            format!("{mag}*{atom}")
        };
        match (k, *c < 0) {
            (0, false) => s += &body,
            (0, true) => s += &format!("-{body}"),
            (_, false) => s += &format!(" + {body}"),
            (_, true) => s += &format!(" - {body}"),
        }
    }
    match (s.is_empty(), e.constant) {
        (true, c) => c.to_string(),
        (false, 0) => s,
        (false, c) if c > 0 => format!("{s} + {c}"),
        (false, c) => format!("{s} - {}", c.unsigned_abs()),
    }
}

/// Prints an index expression whose iterator `i` is named `names[i]`.
pub(crate) fn affine_named(e: &AffineExpr, names: &[&str]) -> String {
    let n = Names {
        iters: names.to_vec(),
        inputs: vec![],
    };
    affine(e, &n)
}

/// An index expression in parentheses unless it is a single iterator.
fn wrapped(e: &AffineExpr, n: &Names) -> String {
    match e.terms.as_slice() {
        [(1, Atom::Iter(_))] if e.constant == 0 => affine(e, n),
        _ => format!("({})", affine(e, n)),
    }
}

fn access(a: &Access, n: &Names) -> String {
    let name = n
        .inputs
        .get(a.input)
        .map_or(format!("?in{}", a.input), |s| s.to_string());
    let idx: Vec<String> = a.index.iter().map(|e| affine(e, n)).collect();
    format!("{name}[{}]", idx.join(", "))
}

/// Binding strength: higher binds tighter.
fn prec(e: &ScalarExpr) -> u8 {
    match e {
        ScalarExpr::Cmp(..) => 1,
        ScalarExpr::Binary(BinaryOp::Add | BinaryOp::Sub, ..) => 2,
        ScalarExpr::Binary(BinaryOp::Mul | BinaryOp::Div, ..) => 3,
        ScalarExpr::Const(c) if *c < 0.0 => 4,
        _ => 5,
    }
}

fn cmp_sym(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "==",
        CmpOp::Ne => "!=",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
    }
}

/// Prints `e`, in parentheses if it binds looser than `min`.
fn scalar_at(e: &ScalarExpr, n: &Names, acc: &str, min: u8) -> String {
    let s = scalar(e, n, acc);
    if prec(e) < min {
        format!("({s})")
    } else {
        s
    }
}

fn scalar(e: &ScalarExpr, n: &Names, acc: &str) -> String {
    let at = |x: &ScalarExpr, m: u8| scalar_at(x, n, acc, m);
    let call = |f: &str, args: &[&ScalarExpr]| {
        let a: Vec<String> = args.iter().map(|x| scalar(x, n, acc)).collect();
        format!("{f}({})", a.join(", "))
    };
    match e {
        ScalarExpr::Const(c) => format!("{c}"),
        ScalarExpr::Access(a) => access(a, n),
        ScalarExpr::InBounds(a) => format!("in_bounds({})", access(a, n)),
        ScalarExpr::Acc => acc.to_string(),
        ScalarExpr::Unary(op, x) => call(op.name(), &[x]),
        ScalarExpr::Binary(op, a, b) => match op {
            BinaryOp::Add => format!("{} + {}", at(a, 2), at(b, 3)),
            BinaryOp::Sub => format!("{} - {}", at(a, 2), at(b, 3)),
            BinaryOp::Mul => format!("{} * {}", at(a, 3), at(b, 4)),
            BinaryOp::Div => format!("{} / {}", at(a, 3), at(b, 4)),
            BinaryOp::Max => call("max", &[a, b]),
            BinaryOp::Min => call("min", &[a, b]),
            BinaryOp::Pow => call("pow", &[a, b]),
        },
        ScalarExpr::Cmp(op, a, b) => format!("{} {} {}", at(a, 2), cmp_sym(*op), at(b, 2)),
        ScalarExpr::Select(c, t, f) => match (&**c, &**t) {
            (ScalarExpr::InBounds(g), ScalarExpr::Access(r)) if g == r => {
                format!("guard({}, {})", access(r, n), scalar(f, n, acc))
            }
            _ => call("select", &[c, t, f]),
        },
        ScalarExpr::Cast(d, x) => call(d.name(), &[x]),
    }
}

/// The reduction part: `sum(k: 0..3) body`.
fn reduction(t: &TensorExpr, n: &Names) -> String {
    let Some(r) = &t.reduce else {
        return scalar(&t.body, n, "?acc");
    };
    let its: Vec<String> = r
        .iters
        .iter()
        .map(|i| format!("{}: 0..{}", i.name, i.extent))
        .collect();
    format!(
        "{}({}) {}",
        r.kind.name(),
        its.join(", "),
        scalar(&t.body, n, "?acc")
    )
}

impl fmt::Display for TensorExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = Names {
            iters: self.all_iters().iter().map(|i| i.name.as_str()).collect(),
            inputs: self.inputs.iter().map(|o| o.name.as_str()).collect(),
        };
        let ins: Vec<String> = self
            .inputs
            .iter()
            .map(|o| format!("{}: {}", o.name, o.ty))
            .collect();
        writeln!(f, "{}: {} <- {}", self.name, self.output, ins.join(", "))?;
        let outs: Vec<&str> = self.iters.iter().map(|i| i.name.as_str()).collect();
        let mut rhs = reduction(self, &names);
        if let Some(e) = &self.epilogue {
            rhs = scalar(e, &names, &format!("({rhs})"));
        }
        let mut line = String::new();
        write!(line, "{}[{}] = {rhs}", self.name, outs.join(", "))?;
        f.write_str(&line)
    }
}
