//! GELU in the exporter's element-wise forms:
//! - `gelu-erf`: `x · ½ · (1 + erf(x/√2)) == Gelu(x)`, with `x/√2` written
//!   `Div(x, √2)` or `Mul(x, 1/√2)`;
//! - `gelu-tanh`: `½ · x · (1 + tanh(√(2/π) · (x + 0.044715·x³))) ==
//!   Gelu(x, approximate="tanh")`, with `x³` written `Pow(x, 3)` or `x·x·x`.
//!
//! The three factors may come in any grouping and order.

use crate::analysis::TGraph;
use crate::rules::build::Case;
use crate::rules::consts::is_const;
use crate::rules::dims;
use crate::rules::matching::{add_op, binary, comm, product3, recognizer, unary};
use crate::rules::RuleDef;
use egg::Id;
use kiln_ir::{Attr, Attrs, Graph, ValueId};

/// The orders of three factors.
const PERMS: [[usize; 3]; 6] = [
    [0, 1, 2],
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
];

/// Every `(x, inner)` with `c == ½ · x · (1 + inner)`.
fn half_x_one_plus(eg: &TGraph, c: Id) -> Vec<(Id, Id)> {
    let mut out = Vec::new();
    for f in product3(eg, c) {
        for p in PERMS {
            let (half, x, sum) = (f[p[0]], f[p[1]], f[p[2]]);
            if !is_const(eg, half, 0.5) {
                continue;
            }
            for (one, inner) in comm(eg, sum, "Add") {
                if is_const(eg, one, 1.0) {
                    out.push((x, inner));
                }
            }
        }
    }
    out
}

/// True when `s` is `x/√2` (a division by √2 or a product with 1/√2).
fn over_sqrt2(eg: &TGraph, s: Id, x: Id) -> bool {
    let div = binary(eg, s, "Div")
        .iter()
        .any(|&(a, c)| a == x && is_const(eg, c, std::f64::consts::SQRT_2));
    let mul = comm(eg, s, "Mul")
        .iter()
        .any(|&(a, c)| a == x && is_const(eg, c, std::f64::consts::FRAC_1_SQRT_2));
    div || mul
}

/// True when `t` is `x³`.
fn cube(eg: &TGraph, t: Id, x: Id) -> bool {
    binary(eg, t, "Pow")
        .iter()
        .any(|&(a, e)| a == x && is_const(eg, e, 3.0))
        || product3(eg, t).contains(&[x, x, x])
}

/// True when `u` is `√(2/π) · (x + 0.044715·x³)`.
fn tanh_inner(eg: &TGraph, u: Id, x: Id) -> bool {
    let k = (2.0 / std::f64::consts::PI).sqrt();
    comm(eg, u, "Mul").iter().any(|&(c, w)| {
        is_const(eg, c, k)
            && comm(eg, w, "Add").iter().any(|&(a, v)| {
                a == x
                    && comm(eg, v, "Mul")
                        .iter()
                        .any(|&(c2, t)| is_const(eg, c2, 0.044715) && cube(eg, t, x))
            })
    })
}

fn apply_erf(eg: &mut TGraph, c: Id) -> Vec<Id> {
    let xs: Vec<Id> = half_x_one_plus(eg, c)
        .into_iter()
        .filter(|&(x, inner)| {
            unary(eg, inner, "Erf")
                .iter()
                .any(|&s| over_sqrt2(eg, s, x))
        })
        .map(|(x, _)| x)
        .collect();
    xs.into_iter()
        .map(|x| add_op(eg, "Gelu", &Attrs::new(), vec![x]))
        .collect()
}

fn apply_tanh(eg: &mut TGraph, c: Id) -> Vec<Id> {
    let xs: Vec<Id> = half_x_one_plus(eg, c)
        .into_iter()
        .filter(|&(x, inner)| {
            unary(eg, inner, "Tanh")
                .iter()
                .any(|&u| tanh_inner(eg, u, x))
        })
        .map(|(x, _)| x)
        .collect();
    let a = Attrs::new().with("approximate", Attr::Str("tanh".into()));
    xs.into_iter()
        .map(|x| add_op(eg, "Gelu", &a, vec![x]))
        .collect()
}

/// `½ · x · (1 + inner)` in grouping `form` (0: `(x·(1+i))·½`, 1: `(x·½)·(1+i)`, 2: `x·(½·(1+i))`).
fn half_x(b: &mut Case, x: ValueId, inner: ValueId, form: usize) -> ValueId {
    let (one, half) = (b.scalar(1.0), b.scalar(0.5));
    let sum = if form == 1 {
        b.op0("Add", &[one, inner])
    } else {
        b.op0("Add", &[inner, one])
    };
    match form {
        0 => {
            let m = b.op0("Mul", &[x, sum]);
            b.op0("Mul", &[m, half])
        }
        1 => {
            let m = b.op0("Mul", &[x, half]);
            b.op0("Mul", &[m, sum])
        }
        _ => {
            let m = b.op0("Mul", &[half, sum]);
            b.op0("Mul", &[x, m])
        }
    }
}

fn erf_cases(seed: u64) -> Vec<Graph> {
    let d = dims(seed, 3);
    (0..3)
        .map(|form| {
            let mut b = Case::new();
            let x = b.input(d.clone());
            let s = if form == 1 {
                let c = b.scalar(std::f32::consts::FRAC_1_SQRT_2);
                b.op0("Mul", &[x, c])
            } else {
                let c = b.scalar(std::f32::consts::SQRT_2);
                b.op0("Div", &[x, c])
            };
            let e = b.op0("Erf", &[s]);
            let y = half_x(&mut b, x, e, form);
            b.finish(y)
        })
        .collect()
}

fn tanh_cases(seed: u64) -> Vec<Graph> {
    let d = dims(seed, 2);
    (0..2)
        .map(|form| {
            let mut b = Case::new();
            let x = b.input(d.clone());
            let cube = if form == 0 {
                let three = b.scalar(3.0);
                b.op0("Pow", &[x, three])
            } else {
                let xx = b.op0("Mul", &[x, x]);
                b.op0("Mul", &[xx, x])
            };
            let k = b.scalar(0.044715);
            let v = b.op0("Mul", &[k, cube]);
            let w = b.op0("Add", &[x, v]);
            let c = b.scalar((2.0 / std::f32::consts::PI).sqrt());
            let u = b.op0("Mul", &[c, w]);
            let t = b.op0("Tanh", &[u]);
            let y = half_x(&mut b, x, t, 1 + form);
            b.finish(y)
        })
        .collect()
}

pub(super) fn rules() -> Vec<RuleDef> {
    vec![
        recognizer(
            "gelu-erf",
            "x * 0.5 * (1 + erf(x / sqrt 2)) == Gelu(x)",
            &["Mul"],
            apply_erf,
            erf_cases,
        ),
        recognizer(
            "gelu-tanh",
            "0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))) == Gelu(x, approximate=tanh)",
            &["Mul"],
            apply_tanh,
            tanh_cases,
        ),
    ]
}
