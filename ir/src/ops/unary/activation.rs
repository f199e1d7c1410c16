//! Activation functions (element-wise, output type = input type unless noted).
//!
//! Attributes (ONNX names and defaults; all optional):
//! - `Sigmoid`, `Softplus`, `Softsign`, `Mish`, `Relu`: none.
//! - `LeakyRelu`: `alpha` (0.01). `Elu`: `alpha` (1.0). `Celu`: `alpha` (1.0).
//! - `Selu`: `alpha` (1.67326319...), `gamma` (1.05070102...).
//! - `ThresholdedRelu`: `alpha` (1.0): `x > alpha ? x : 0`.
//! - `HardSigmoid`: `alpha` (0.2), `beta` (0.5). `HardSwish`: none.
//! - `Gelu`: `approximate` (`"none"` or `"tanh"`). `Swish`: `alpha` (1.0).
//! - `Shrink`: `lambd` (0.5), `bias` (0.0); accepts every numeric dtype.
//! - `PRelu`: inputs `X`, `slope`; `slope` broadcasts (numpy rules) to `X`'s
//!   shape; floats and integers.
//! - `Clip`: `min`, `max`: each an Int (integer inputs: the exact bound, a
//!   u64 bound stored as its bit pattern) or a Float; an absent bound does
//!   not clip. `min(max(x, min), max)`, so `min > max` gives `max`; NaN stays.
//!
//! Float maths runs in f64; Relu accepts every numeric dtype.

use super::{add_elementwise, add_scalar, check_dtype, Accepts};
use crate::ops::util::{arity, binary, broadcast_shapes, map, unary_with, BinaryFns, ScalarFns};
use crate::{
    dispatch_numeric, ensure, op_err, Attr, Attrs, Elem, Registry, Result, Tensor, TensorType,
};

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

fn gelu(a: &Attrs, x: &Tensor) -> Result<Tensor> {
    match a.str_or("approximate", "none")? {
        "none" => unary_with(x, |v| {
            0.5 * v * (1.0 + libm::erf(v / std::f64::consts::SQRT_2))
        }),
        "tanh" => {
            let k = (2.0 / std::f64::consts::PI).sqrt();
            unary_with(x, |v| {
                0.5 * v * (1.0 + (k * (v + 0.044715 * v * v * v)).tanh())
            })
        }
        m => Err(op_err!("Gelu approximate must be none or tanh, got `{m}`")),
    }
}

fn selu(a: &Attrs, x: &Tensor) -> Result<Tensor> {
    let alpha = a.float_or("alpha", 1.673_263_192_176_818_8)?;
    let gamma = a.float_or("gamma", 1.050_701_022_148_132_3)?;
    unary_with(x, |v| {
        if v > 0.0 {
            gamma * v
        } else {
            gamma * (alpha * v.exp() - alpha)
        }
    })
}

fn celu(a: &Attrs, x: &Tensor) -> Result<Tensor> {
    let alpha = a.float_or("alpha", 1.0)?;
    ensure!(alpha != 0.0, "Celu alpha must not be 0");
    unary_with(x, |v| {
        v.max(0.0) + (alpha * ((v / alpha).exp() - 1.0)).min(0.0)
    })
}

fn hard_sigmoid(a: &Attrs, x: &Tensor) -> Result<Tensor> {
    let alpha = a.float_or("alpha", 0.2)?;
    let beta = a.float_or("beta", 0.5)?;
    unary_with(x, |v| (alpha * v + beta).clamp(0.0, 1.0))
}

/// Shrink on any numeric dtype (integers go through f64 and truncate back).
fn shrink(a: &Attrs, x: &Tensor) -> Result<Tensor> {
    let lambd = a.float_or("lambd", 0.5)?;
    let bias = a.float_or("bias", 0.0)?;
    let f = |v: f64| {
        if v < -lambd {
            v + bias
        } else if v > lambd {
            v - bias
        } else {
            0.0
        }
    };
    dispatch_numeric!(x.dtype(), T => map::<T, T>(x, |v| T::from_f64(f(v.to_f64()))),
        _ => Err(op_err!("Shrink does not support {}", x.dtype())))
}

/// A Clip bound converted to the element type `T`.
fn bound<T: Elem>(a: &Attrs, name: &str) -> Result<Option<T>> {
    Ok(match a.get(name) {
        None => None,
        Some(Attr::Int(v)) => Some(T::from_i64(*v)),
        Some(Attr::Float(v)) => Some(T::from_f64(*v)),
        Some(v) => return Err(op_err!("Clip `{name}` must be a number, got {v:?}")),
    })
}

fn clip(a: &Attrs, x: &Tensor) -> Result<Tensor> {
    dispatch_numeric!(x.dtype(), T => {
        let (lo, hi) = (bound::<T>(a, "min")?, bound::<T>(a, "max")?);
        map::<T, T>(x, |v| {
            let v = match lo { Some(l) if v < l => l, _ => v };
            match hi { Some(h) if v > h => h, _ => v }
        })
    }, _ => Err(op_err!("Clip does not support {}", x.dtype())))
}

/// Registers float-only activations whose parameters come from attributes.
fn register_float(r: &mut Registry) {
    add_elementwise(r, "Sigmoid", Accepts::Float, |_, x| unary_with(x, sigmoid));
    add_elementwise(r, "Softplus", Accepts::Float, |_, x| {
        unary_with(x, softplus)
    });
    add_elementwise(r, "Softsign", Accepts::Float, |_, x| {
        unary_with(x, |v| v / (1.0 + v.abs()))
    });
    add_elementwise(r, "Mish", Accepts::Float, |_, x| {
        unary_with(x, |v| v * softplus(v).tanh())
    });
    add_elementwise(r, "HardSwish", Accepts::Float, |_, x| {
        unary_with(x, |v| v * (v / 6.0 + 0.5).clamp(0.0, 1.0))
    });
    add_elementwise(r, "LeakyRelu", Accepts::Float, |a, x| {
        let alpha = a.float_or("alpha", 0.01)?;
        unary_with(x, |v| if v < 0.0 { alpha * v } else { v })
    });
    add_elementwise(r, "Elu", Accepts::Float, |a, x| {
        let alpha = a.float_or("alpha", 1.0)?;
        unary_with(x, |v| if v < 0.0 { alpha * (v.exp() - 1.0) } else { v })
    });
    add_elementwise(r, "ThresholdedRelu", Accepts::Float, |a, x| {
        let alpha = a.float_or("alpha", 1.0)?;
        unary_with(x, |v| if v > alpha { v } else { 0.0 })
    });
    add_elementwise(r, "Swish", Accepts::Float, |a, x| {
        let alpha = a.float_or("alpha", 1.0)?;
        unary_with(x, |v| v * sigmoid(alpha * v))
    });
    add_elementwise(r, "Selu", Accepts::Float, selu);
    add_elementwise(r, "Celu", Accepts::Float, celu);
    add_elementwise(r, "HardSigmoid", Accepts::Float, hard_sigmoid);
    add_elementwise(r, "Gelu", Accepts::Float, gelu);
}

fn prelu_infer(ins: &[&TensorType]) -> Result<TensorType> {
    arity(ins, 2, 2)?;
    let (x, s) = (ins[0], ins[1]);
    check_dtype("PRelu", x.dtype, Accepts::Numeric)?;
    ensure!(
        s.dtype == x.dtype,
        "PRelu slope must have X's dtype {}, got {}",
        x.dtype,
        s.dtype
    );
    ensure!(
        broadcast_shapes(&[&x.shape, &s.shape])? == x.shape,
        "PRelu slope of shape {:?} does not broadcast to X's shape {:?}",
        s.shape,
        x.shape
    );
    Ok(x.clone())
}

fn prelu_eval(ins: &[&Tensor]) -> Result<Tensor> {
    prelu_infer(&[&ins[0].ty(), &ins[1].ty()])?;
    let fns = BinaryFns {
        float: Some(|x, s| if x < 0.0 { x * s } else { x }),
        signed: Some(|x, s| Ok(if x < 0 { x.wrapping_mul(s) } else { x })),
        unsigned: Some(|x, _| Ok(x)),
        boolean: None,
    };
    binary(ins[0], ins[1], &fns, "PRelu")
}

pub fn register(r: &mut Registry) {
    register_float(r);
    add_scalar(
        r,
        "Relu",
        Accepts::Numeric,
        ScalarFns {
            float: Some(|v| if v < 0.0 { 0.0 } else { v }),
            signed: Some(|v| v.max(0)),
            unsigned: Some(|v| v),
        },
    );
    add_elementwise(r, "Shrink", Accepts::Numeric, shrink);
    add_elementwise(r, "Clip", Accepts::Numeric, clip);
    r.add(
        "PRelu",
        |_, ins, _| Ok(vec![prelu_infer(ins)?]),
        |_, ins, _| {
            arity(ins, 2, 2)?;
            Ok(vec![prelu_eval(ins)?])
        },
    );
}

#[cfg(test)]
mod tests {
    use crate::{registry, Attr, Attrs, Tensor};

    fn run(op: &str, attrs: Attrs, ins: &[&Tensor]) -> crate::Result<Tensor> {
        Ok(registry().get(op)?.eval(&attrs, ins, 1)?.remove(0))
    }

    #[test]
    fn clip_integer_bounds_and_min_above_max() {
        let x = Tensor::from_vec(vec![4], vec![-100i8, -3, 5, 120]).unwrap();
        let a = Attrs::new()
            .with("min", Attr::Int(-4))
            .with("max", Attr::Int(6));
        let y = run("Clip", a, &[&x]).unwrap();
        assert_eq!(y.as_slice::<i8>().unwrap(), &[-4, -3, 5, 6]);
        let a = Attrs::new()
            .with("min", Attr::Int(7))
            .with("max", Attr::Int(2));
        let y = run("Clip", a, &[&x]).unwrap();
        assert_eq!(y.as_slice::<i8>().unwrap(), &[2, 2, 2, 2]);
        let u = Tensor::from_vec(vec![2], vec![1u64, u64::MAX]).unwrap();
        let a = Attrs::new().with("max", Attr::Int((u64::MAX - 1) as i64));
        let y = run("Clip", a, &[&u]).unwrap();
        assert_eq!(y.as_slice::<u64>().unwrap(), &[1, u64::MAX - 1]);
    }

    #[test]
    fn prelu_broadcasts_slope_only_to_x() {
        let x = Tensor::from_vec(vec![2, 2], vec![-1.0f32, 2.0, -3.0, 4.0]).unwrap();
        let s = Tensor::from_vec(vec![2], vec![0.5f32, 0.25]).unwrap();
        let y = run("PRelu", Attrs::new(), &[&x, &s]).unwrap();
        assert_eq!(y.as_slice::<f32>().unwrap(), &[-0.5, 2.0, -1.5, 4.0]);
        let big = Tensor::from_vec(vec![3, 2, 2], vec![0.5f32; 12]).unwrap();
        assert!(run("PRelu", Attrs::new(), &[&x, &big]).is_err());
    }

    #[test]
    fn gelu_rejects_unknown_mode() {
        let x = Tensor::from_vec(vec![1], vec![1.0f32]).unwrap();
        let a = Attrs::new().with("approximate", Attr::Str("erf".into()));
        assert!(run("Gelu", a, &[&x]).is_err());
    }
}
