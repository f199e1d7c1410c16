//! Comparisons, logic and selection, all with numpy broadcasting:
//! - `Equal`, `Less`, `Greater`, `LessOrEqual`, `GreaterOrEqual`: two inputs of
//!   one dtype (any, bool included), a bool output; NaN compares false.
//! - `And`, `Or`, `Xor`: two bool inputs. `Not`: one bool input.
//! - `BitwiseNot`: one integer input, same type out.
//! - `IsNaN`: a float input, a bool output. `IsInf`: the same, attributes
//!   `detect_positive`, `detect_negative` (ints, default 1).
//! - `Where`: inputs `condition` (bool), `X`, `Y` (one dtype); the output has
//!   the broadcast shape of all three and `X`'s dtype.

use super::unary::{add_elementwise, check_dtype, Accepts};
use super::util::{
    arity, binary, broadcast_indices, broadcast_shapes, compare, infer_broadcast, map, unary,
    BinaryFns, ScalarFns,
};
use crate::{
    dispatch_dtype, dispatch_float, ensure, op_err, DType, Elem, Registry, Result, Tensor,
    TensorType,
};
use std::cmp::Ordering;

/// Registers a comparison: broadcast shape, bool output.
fn add_compare(r: &mut Registry, name: &'static str, f: fn(Ordering) -> bool) {
    r.add(
        name,
        |_, ins, _| {
            arity(ins, 2, 2)?;
            let t = infer_broadcast(ins)?;
            Ok(vec![TensorType::new(DType::Bool, t.shape)])
        },
        move |_, ins, _| {
            arity(ins, 2, 2)?;
            Ok(vec![compare(ins[0], ins[1], f, name)?])
        },
    );
}

/// Registers a two-input bool logic op.
fn add_logic(r: &mut Registry, name: &'static str, f: fn(bool, bool) -> bool) {
    r.add(
        name,
        move |_, ins, _| {
            arity(ins, 2, 2)?;
            let t = infer_broadcast(ins)?;
            check_dtype(name, t.dtype, Accepts::Bool)?;
            Ok(vec![t])
        },
        move |_, ins, _| {
            arity(ins, 2, 2)?;
            check_dtype(name, ins[0].dtype(), Accepts::Bool)?;
            let fns = BinaryFns {
                float: None,
                signed: None,
                unsigned: None,
                boolean: Some(f),
            };
            Ok(vec![binary(ins[0], ins[1], &fns, name)?])
        },
    );
}

/// A float predicate built from a node's attributes.
type Predicate = Box<dyn Fn(f64) -> bool>;

/// Registers a float predicate (IsNaN, IsInf): same shape, bool output.
fn add_predicate(
    r: &mut Registry,
    name: &'static str,
    pred: fn(&crate::Attrs) -> Result<Predicate>,
) {
    r.add(
        name,
        move |a, ins, _| {
            arity(ins, 1, 1)?;
            check_dtype(name, ins[0].dtype, Accepts::Float)?;
            let _validated = pred(a)?;
            Ok(vec![TensorType::new(DType::Bool, ins[0].shape.clone())])
        },
        move |a, ins, _| {
            arity(ins, 1, 1)?;
            let p = pred(a)?;
            let x = ins[0];
            Ok(vec![
                dispatch_float!(x.dtype(), T => map::<T, bool>(x, |v| p(v.to_f64()))?,
                _ => return Err(op_err!("{name} does not support {}", x.dtype()))),
            ])
        },
    );
}

fn is_inf(a: &crate::Attrs) -> Result<Predicate> {
    let pos = a.int_or("detect_positive", 1)? != 0;
    let neg = a.int_or("detect_negative", 1)? != 0;
    Ok(Box::new(move |v| {
        (pos && v == f64::INFINITY) || (neg && v == f64::NEG_INFINITY)
    }))
}

fn where_infer(ins: &[&TensorType]) -> Result<TensorType> {
    arity(ins, 3, 3)?;
    ensure!(
        ins[0].dtype == DType::Bool,
        "Where condition must be bool, got {}",
        ins[0].dtype
    );
    ensure!(
        ins[1].dtype == ins[2].dtype,
        "Where X and Y must share one dtype, got {} and {}",
        ins[1].dtype,
        ins[2].dtype
    );
    let shape = broadcast_shapes(&[&ins[0].shape, &ins[1].shape, &ins[2].shape])?;
    Ok(TensorType::new(ins[1].dtype, shape))
}

fn where_eval(ins: &[&Tensor]) -> Result<Tensor> {
    let tys: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
    let out = where_infer(&tys.iter().collect::<Vec<_>>())?;
    let idx: Vec<Vec<usize>> = ins
        .iter()
        .map(|t| broadcast_indices(t.shape(), &out.shape))
        .collect();
    let c = ins[0].as_slice::<bool>()?;
    dispatch_dtype!(out.dtype, T => {
        let (x, y) = (ins[1].as_slice::<T>()?, ins[2].as_slice::<T>()?);
        let v: Vec<T> = (0..idx[0].len())
            .map(|k| if c[idx[0][k]] { x[idx[1][k]] } else { y[idx[2][k]] })
            .collect();
        Tensor::from_vec(out.shape, v)
    })
}

pub fn register(r: &mut Registry) {
    add_compare(r, "Equal", |o| o == Ordering::Equal);
    add_compare(r, "Less", |o| o == Ordering::Less);
    add_compare(r, "Greater", |o| o == Ordering::Greater);
    add_compare(r, "LessOrEqual", |o| o != Ordering::Greater);
    add_compare(r, "GreaterOrEqual", |o| o != Ordering::Less);
    add_logic(r, "And", |a, b| a & b);
    add_logic(r, "Or", |a, b| a | b);
    add_logic(r, "Xor", |a, b| a ^ b);
    add_elementwise(r, "Not", Accepts::Bool, |_, x| map::<bool, bool>(x, |v| !v));
    add_elementwise(r, "BitwiseNot", Accepts::Int, |_, x| {
        let fns = ScalarFns {
            float: None,
            signed: Some(|v| !v),
            unsigned: Some(|v| !v),
        };
        unary(x, &fns, "BitwiseNot")
    });
    add_predicate(r, "IsNaN", |_| Ok(Box::new(f64::is_nan)));
    add_predicate(r, "IsInf", is_inf);
    r.add(
        "Where",
        |_, ins, _| Ok(vec![where_infer(ins)?]),
        |_, ins, _| Ok(vec![where_eval(ins)?]),
    );
}

#[cfg(test)]
mod tests {
    use crate::{registry, Attrs, Tensor};

    fn run(op: &str, ins: &[&Tensor]) -> crate::Result<Tensor> {
        Ok(registry().get(op)?.eval(&Attrs::new(), ins, 1)?.remove(0))
    }

    #[test]
    fn where_broadcasts_three_ways() {
        let c = Tensor::from_vec(vec![2, 1], vec![true, false]).unwrap();
        let x = Tensor::from_vec(vec![1, 3], vec![1i64, 2, 3]).unwrap();
        let y = Tensor::scalar(9i64);
        let o = run("Where", &[&c, &x, &y]).unwrap();
        assert_eq!(o.shape(), &[2, 3]);
        assert_eq!(o.as_slice::<i64>().unwrap(), &[1, 2, 3, 9, 9, 9]);
    }

    #[test]
    fn nan_compares_false_and_bitwise_not() {
        let a = Tensor::from_vec(vec![2], vec![f32::NAN, 1.0]).unwrap();
        let o = run("LessOrEqual", &[&a, &a]).unwrap();
        assert_eq!(o.as_slice::<bool>().unwrap(), &[false, true]);
        let u = Tensor::from_vec(vec![2], vec![0u8, 5]).unwrap();
        let o = run("BitwiseNot", &[&u]).unwrap();
        assert_eq!(o.as_slice::<u8>().unwrap(), &[255, 250]);
    }
}
