//! Binary element-wise arithmetic with numpy broadcasting:
//! Add, Sub, Mul, Div, Mod (`fmod` attribute), Pow, BitShift (`direction`),
//! BitwiseAnd/Or/Xor, and the variadic Min, Max, Sum, Mean.

use super::util::{arity, binary, infer_broadcast, BinaryFns};
use crate::{ensure, op_err, Attrs, Registry, Result, Tensor, TensorType};

fn div_i(a: i64, b: i64) -> Result<i64> {
    ensure!(b != 0, "integer division by zero");
    Ok(a.wrapping_div(b))
}
fn div_u(a: u64, b: u64) -> Result<u64> {
    ensure!(b != 0, "integer division by zero");
    Ok(a / b)
}

/// Registers a two-input broadcasting op.
fn add_binary(r: &mut Registry, name: &'static str, fns: fn(&Attrs) -> Result<BinaryFns>) {
    r.add(
        name,
        |_, ins, _| {
            arity(ins, 2, 2)?;
            Ok(vec![infer_broadcast(ins)?])
        },
        move |attrs, ins, _| {
            arity(ins, 2, 2)?;
            Ok(vec![binary(ins[0], ins[1], &fns(attrs)?, name)?])
        },
    );
}

/// Registers a variadic (1 or more inputs) broadcasting op folded left to right.
fn add_variadic(
    r: &mut Registry,
    name: &'static str,
    fns: BinaryFns,
    finish: fn(Tensor, usize) -> Result<Tensor>,
) {
    let fns = std::sync::Arc::new(fns);
    r.add(
        name,
        |_, ins, _| {
            ensure!(!ins.is_empty(), "expects at least one input");
            Ok(vec![infer_broadcast(ins)?])
        },
        move |_, ins, _| {
            ensure!(!ins.is_empty(), "expects at least one input");
            let mut acc = ins[0].clone();
            for x in &ins[1..] {
                acc = binary(&acc, x, &fns, name)?;
            }
            if ins.len() == 1 {
                // Still broadcast-free identity; nothing to fold.
            }
            Ok(vec![finish(acc, ins.len())?])
        },
    );
}

fn fmin(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}
fn fmax(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn mean_finish(t: Tensor, n: usize) -> Result<Tensor> {
    ensure!(
        t.dtype().is_float(),
        "Mean needs a float type, got {}",
        t.dtype()
    );
    super::util::unary_with(&t, |x| x / n as f64)
}

fn pow_infer(ins: &[&TensorType]) -> Result<TensorType> {
    let shape = super::util::broadcast_shapes(&[&ins[0].shape, &ins[1].shape])?;
    Ok(TensorType::new(ins[0].dtype, shape))
}

/// Pow allows the exponent to have another numeric type than the base.
fn pow_eval(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let b = b.cast(if a.dtype().is_float() {
        a.dtype()
    } else {
        crate::DType::F64
    });
    let a64 = a.cast(crate::DType::F64);
    let b64 = b.cast(crate::DType::F64);
    let r = binary(
        &a64,
        &b64,
        &BinaryFns {
            float: Some(f64::powf),
            signed: None,
            unsigned: None,
            boolean: None,
        },
        "Pow",
    )?;
    Ok(if a.dtype().is_float() {
        r.cast(a.dtype())
    } else {
        super::util::unary_with(&r, f64::trunc)?.cast(a.dtype())
    })
}

pub fn register(r: &mut Registry) {
    add_binary(r, "Add", |_| {
        Ok(BinaryFns {
            float: Some(|a, b| a + b),
            signed: Some(|a, b| Ok(a.wrapping_add(b))),
            unsigned: Some(|a, b| Ok(a.wrapping_add(b))),
            boolean: None,
        })
    });
    add_binary(r, "Sub", |_| {
        Ok(BinaryFns {
            float: Some(|a, b| a - b),
            signed: Some(|a, b| Ok(a.wrapping_sub(b))),
            unsigned: Some(|a, b| Ok(a.wrapping_sub(b))),
            boolean: None,
        })
    });
    add_binary(r, "Mul", |_| {
        Ok(BinaryFns {
            float: Some(|a, b| a * b),
            signed: Some(|a, b| Ok(a.wrapping_mul(b))),
            unsigned: Some(|a, b| Ok(a.wrapping_mul(b))),
            boolean: None,
        })
    });
    add_binary(r, "Div", |_| {
        Ok(BinaryFns {
            float: Some(|a, b| a / b),
            signed: Some(div_i),
            unsigned: Some(div_u),
            boolean: None,
        })
    });
    add_binary(r, "Mod", |attrs| {
        if attrs.int_or("fmod", 0)? != 0 {
            Ok(BinaryFns {
                float: Some(|a, b| a % b),
                signed: Some(|a, b| {
                    ensure!(b != 0, "integer modulo by zero");
                    Ok(a.wrapping_rem(b))
                }),
                unsigned: Some(|a, b| {
                    ensure!(b != 0, "integer modulo by zero");
                    Ok(a % b)
                }),
                boolean: None,
            })
        } else {
            Ok(BinaryFns {
                float: Some(|a, b| {
                    let m = a % b;
                    if m != 0.0 && ((m < 0.0) != (b < 0.0)) {
                        m + b
                    } else {
                        m
                    }
                }),
                signed: Some(|a, b| {
                    ensure!(b != 0, "integer modulo by zero");
                    let m = a.wrapping_rem(b);
                    Ok(if m != 0 && ((m < 0) != (b < 0)) {
                        m + b
                    } else {
                        m
                    })
                }),
                unsigned: Some(|a, b| {
                    ensure!(b != 0, "integer modulo by zero");
                    Ok(a % b)
                }),
                boolean: None,
            })
        }
    });
    add_binary(r, "BitShift", |attrs| {
        let left = match attrs.str_or("direction", "")? {
            "LEFT" => true,
            "RIGHT" => false,
            d => {
                return Err(op_err!(
                    "BitShift direction must be LEFT or RIGHT, got `{d}`"
                ))
            }
        };
        Ok(BinaryFns {
            float: None,
            signed: None,
            unsigned: Some(if left {
                |a, b| Ok(if b >= 64 { 0 } else { a << b })
            } else {
                |a, b| Ok(if b >= 64 { 0 } else { a >> b })
            }),
            boolean: None,
        })
    });
    add_binary(r, "BitwiseAnd", |_| {
        Ok(BinaryFns {
            float: None,
            signed: Some(|a, b| Ok(a & b)),
            unsigned: Some(|a, b| Ok(a & b)),
            boolean: Some(|a, b| a & b),
        })
    });
    add_binary(r, "BitwiseOr", |_| {
        Ok(BinaryFns {
            float: None,
            signed: Some(|a, b| Ok(a | b)),
            unsigned: Some(|a, b| Ok(a | b)),
            boolean: Some(|a, b| a | b),
        })
    });
    add_binary(r, "BitwiseXor", |_| {
        Ok(BinaryFns {
            float: None,
            signed: Some(|a, b| Ok(a ^ b)),
            unsigned: Some(|a, b| Ok(a ^ b)),
            boolean: Some(|a, b| a ^ b),
        })
    });
    r.add(
        "Pow",
        |_, ins, _| {
            arity(ins, 2, 2)?;
            Ok(vec![pow_infer(ins)?])
        },
        |_, ins, _| {
            arity(ins, 2, 2)?;
            Ok(vec![pow_eval(ins[0], ins[1])?])
        },
    );
    let keep = |t: Tensor, _| Ok(t);
    add_variadic(
        r,
        "Max",
        BinaryFns {
            float: Some(fmax),
            signed: Some(|a, b| Ok(a.max(b))),
            unsigned: Some(|a, b| Ok(a.max(b))),
            boolean: None,
        },
        keep,
    );
    add_variadic(
        r,
        "Min",
        BinaryFns {
            float: Some(fmin),
            signed: Some(|a, b| Ok(a.min(b))),
            unsigned: Some(|a, b| Ok(a.min(b))),
            boolean: None,
        },
        keep,
    );
    add_variadic(
        r,
        "Sum",
        BinaryFns {
            float: Some(|a, b| a + b),
            signed: Some(|a, b| Ok(a.wrapping_add(b))),
            unsigned: Some(|a, b| Ok(a.wrapping_add(b))),
            boolean: None,
        },
        keep,
    );
    add_variadic(
        r,
        "Mean",
        BinaryFns {
            float: Some(|a, b| a + b),
            signed: None,
            unsigned: None,
            boolean: None,
        },
        mean_finish,
    );
}
