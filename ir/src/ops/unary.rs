//! Element-wise unary math: Abs, Neg, Sign, Reciprocal, Exp, Log, Sqrt, the
//! trigonometric and hyperbolic functions and their inverses, Erf, Floor,
//! Ceil and Round (half to even). The activation functions live in the
//! [`activation`] sub-module.
//!
//! None of these ops has attributes. Floats are computed in f64 and rounded
//! back to the input dtype. Integer semantics are exact: Abs and Neg wrap
//! (`Abs(-128i8) == -128`), Sign gives -1/0/1. Abs and Sign accept every
//! numeric dtype, Neg floats and signed integers, the rest floats only.

pub mod activation;

use super::util::{arity, unary, ScalarFns};
use crate::{ensure, Attrs, DType, Registry, Result, Tensor, TensorType};

/// The dtypes an element-wise op accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepts {
    /// f16, bf16, f32, f64.
    Float,
    /// Floats and signed integers.
    Signed,
    /// Floats and all integers.
    Numeric,
    /// Signed and unsigned integers.
    Int,
    /// bool only.
    Bool,
}

/// Checks that `name` accepts dtype `d`.
pub fn check_dtype(name: &str, d: DType, acc: Accepts) -> Result<()> {
    let ok = match acc {
        Accepts::Float => d.is_float(),
        Accepts::Signed => d.is_float() || d.is_signed_int(),
        Accepts::Numeric => d.is_numeric(),
        Accepts::Int => d.is_int(),
        Accepts::Bool => d == DType::Bool,
    };
    ensure!(ok, "{name} does not support {d}");
    Ok(())
}

/// Evaluation of a one-input, same-type element-wise op.
pub type MapFn = fn(&Attrs, &Tensor) -> Result<Tensor>;

/// Registers a one-input op whose output has the input's type. Inference
/// validates the attributes by evaluating `f` on an empty tensor.
pub fn add_elementwise(r: &mut Registry, name: &'static str, acc: Accepts, f: MapFn) {
    r.add(
        name,
        move |attrs, ins: &[&TensorType], _| {
            arity(ins, 1, 1)?;
            check_dtype(name, ins[0].dtype, acc)?;
            f(attrs, &Tensor::zeros(ins[0].dtype, vec![0]))?;
            Ok(vec![ins[0].clone()])
        },
        move |attrs, ins, _| {
            arity(ins, 1, 1)?;
            check_dtype(name, ins[0].dtype(), acc)?;
            Ok(vec![f(attrs, ins[0])?])
        },
    );
}

/// Registers an op defined by scalar functions per arithmetic class.
fn add_scalar(r: &mut Registry, name: &'static str, acc: Accepts, fns: ScalarFns) {
    let fns = std::sync::Arc::new(fns);
    r.add(
        name,
        move |_, ins: &[&TensorType], _| {
            arity(ins, 1, 1)?;
            check_dtype(name, ins[0].dtype, acc)?;
            Ok(vec![ins[0].clone()])
        },
        move |_, ins, _| {
            arity(ins, 1, 1)?;
            check_dtype(name, ins[0].dtype(), acc)?;
            Ok(vec![unary(ins[0], &fns, name)?])
        },
    );
}

/// A scalar float function, computed in f64.
type FloatFn = fn(f64) -> f64;

/// Registers a float-only op given by an f64 function.
fn add_float(r: &mut Registry, name: &'static str, f: FloatFn) {
    add_scalar(
        r,
        name,
        Accepts::Float,
        ScalarFns {
            float: Some(f),
            signed: None,
            unsigned: None,
        },
    );
}

fn sign_f(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        x // 0, -0 or NaN
    }
}

pub fn register(r: &mut Registry) {
    add_scalar(
        r,
        "Abs",
        Accepts::Numeric,
        ScalarFns {
            float: Some(f64::abs),
            signed: Some(i64::wrapping_abs),
            unsigned: Some(|x| x),
        },
    );
    add_scalar(
        r,
        "Neg",
        Accepts::Signed,
        ScalarFns {
            float: Some(|x| -x),
            signed: Some(i64::wrapping_neg),
            unsigned: None,
        },
    );
    add_scalar(
        r,
        "Sign",
        Accepts::Numeric,
        ScalarFns {
            float: Some(sign_f),
            signed: Some(i64::signum),
            unsigned: Some(|x| (x != 0) as u64),
        },
    );
    let floats: [(&'static str, FloatFn); 20] = [
        ("Reciprocal", |x| 1.0 / x),
        ("Exp", f64::exp),
        ("Log", f64::ln),
        ("Sqrt", f64::sqrt),
        ("Sin", f64::sin),
        ("Cos", f64::cos),
        ("Tan", f64::tan),
        ("Asin", f64::asin),
        ("Acos", f64::acos),
        ("Atan", f64::atan),
        ("Sinh", f64::sinh),
        ("Cosh", f64::cosh),
        ("Asinh", f64::asinh),
        ("Acosh", f64::acosh),
        ("Atanh", f64::atanh),
        ("Erf", libm::erf),
        ("Floor", f64::floor),
        ("Ceil", f64::ceil),
        ("Round", f64::round_ties_even),
        ("Tanh", f64::tanh),
    ];
    for (name, f) in floats {
        add_float(r, name, f);
    }
    activation::register(r);
}

#[cfg(test)]
mod tests {
    use crate::{registry, Attrs, Tensor};

    fn run(op: &str, x: Tensor) -> Tensor {
        let def = registry().get(op).unwrap();
        def.eval(&Attrs::new(), &[&x], 1).unwrap().remove(0)
    }

    #[test]
    fn integer_abs_neg_wrap() {
        let x = Tensor::from_vec(vec![3], vec![-128i8, -5, 7]).unwrap();
        assert_eq!(
            run("Abs", x.clone()).as_slice::<i8>().unwrap(),
            &[-128, 5, 7]
        );
        assert_eq!(run("Neg", x).as_slice::<i8>().unwrap(), &[-128, 5, -7]);
    }

    #[test]
    fn round_half_to_even_and_sign() {
        let x = Tensor::from_vec(vec![4], vec![0.5f32, 1.5, 2.5, -2.5]).unwrap();
        assert_eq!(
            run("Round", x).as_slice::<f32>().unwrap(),
            &[0.0, 2.0, 2.0, -2.0]
        );
        let s = Tensor::from_vec(vec![3], vec![-9i32, 0, 4]).unwrap();
        assert_eq!(run("Sign", s).as_slice::<i32>().unwrap(), &[-1, 0, 1]);
    }

    #[test]
    fn float_only_ops_reject_ints() {
        let x = Tensor::from_vec(vec![1], vec![1i32]).unwrap();
        let def = registry().get("Exp").unwrap();
        assert!(def.eval(&Attrs::new(), &[&x], 1).is_err());
    }
}
