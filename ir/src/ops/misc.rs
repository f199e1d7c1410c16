//! Miscellaneous ops: window functions (HannWindow, HammingWindow,
//! BlackmanWindow), plus the attention and signal families in child files.
//!
//! Window ops take no inputs (ONNX's `size` input is an attribute) and are
//! folded to constants at import. Attributes: `size` (int), `periodic` (int,
//! 1: denominator `size`, else `size - 1`), `output_datatype` (dtype, f32).

use crate::{ensure, Attrs, DType, Registry, Result, Tensor, TensorType};
use std::f64::consts::PI;

#[path = "attention.rs"]
mod attention;
#[path = "signal.rs"]
mod signal;

fn window_type(attrs: &Attrs) -> Result<TensorType> {
    let size = attrs.int("size")?;
    ensure!(size >= 0, "window size must be >= 0, got {size}");
    let d = attrs.opt_dtype("output_datatype")?.unwrap_or(DType::F32);
    ensure!(
        d.is_numeric(),
        "window output type must be numeric, got {d}"
    );
    Ok(TensorType::new(d, vec![size as usize]))
}

fn window(attrs: &Attrs, f: fn(f64, f64) -> f64) -> Result<Tensor> {
    let ty = window_type(attrs)?;
    let n = ty.shape[0];
    let denom = if attrs.int_or("periodic", 1)? == 1 {
        n as f64
    } else {
        n as f64 - 1.0
    };
    let v: Vec<f64> = (0..n).map(|i| f(i as f64, denom)).collect();
    Ok(Tensor::from_vec(vec![n], v)?.cast(ty.dtype))
}

fn add_window(r: &mut Registry, name: &str, f: fn(f64, f64) -> f64) {
    r.add(
        name,
        |a, ins, _| {
            super::util::arity(ins, 0, 0)?;
            Ok(vec![window_type(a)?])
        },
        move |a, ins, _| {
            super::util::arity(ins, 0, 0)?;
            Ok(vec![window(a, f)?])
        },
    );
}

pub fn register(r: &mut Registry) {
    add_window(r, "HannWindow", |n, d| (PI * n / d).sin().powi(2));
    add_window(r, "HammingWindow", |n, d| {
        let a = 25.0 / 46.0;
        a - (1.0 - a) * (2.0 * PI * n / d).cos()
    });
    add_window(r, "BlackmanWindow", |n, d| {
        0.42 - 0.5 * (2.0 * PI * n / d).cos() + 0.08 * (4.0 * PI * n / d).cos()
    });
    attention::register(r);
    signal::register(r);
}
