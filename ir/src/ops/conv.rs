//! Convolutions: Conv, ConvInteger, and the sliding-window geometry shared
//! with the pooling family. ConvTranspose, Col2Im and DeformConv live in
//! `conv/transpose.rs`, `conv/col2im.rs` and `conv/deform.rs`.
//!
//! Layout is ONNX's: `X [N, C, D1..Dn]`, `W [M, C/group, k1..kn]`, `B [M]`,
//! for any number `n >= 1` of spatial dimensions.
//!
//! Attributes (ONNX names; all optional):
//! - `auto_pad`: `NOTSET` (default; use `pads`), `VALID` (no padding),
//!   `SAME_UPPER` / `SAME_LOWER` (output `ceil(D/stride)`, total padding
//!   split evenly, the odd unit at the end / at the start).
//! - `pads` `[b1..bn, e1..en]` (default 0), `strides` (default 1),
//!   `dilations` (default 1), `group` (default 1), `kernel_shape` (if present,
//!   must equal `W`'s spatial shape).
//!
//! - `Conv(X, W [, B])`: float types, accumulated in f64.
//! - `ConvInteger(x, w [, x_zero_point [, w_zero_point]])`: x and w are int8 or
//!   uint8; `x_zero_point` is a scalar, `w_zero_point` a scalar or one value
//!   per output channel; the output is int32 `sum((x - xz) * (w - wz))`.

mod col2im;
mod deform;
mod transpose;

pub use transpose::geometry as transpose_window;

use super::util::arity;
use crate::{ensure, op_err, Attrs, DType, Registry, Result, Tensor, TensorType};

/// Spatial geometry of a sliding-window op after resolving `auto_pad`.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    /// Padding before each spatial dimension.
    pub begin: Vec<usize>,
    /// Explicit padding after each spatial dimension (windows that `ceil_mode`
    /// adds beyond it read nothing there).
    pub end: Vec<usize>,
    /// Output spatial shape.
    pub out: Vec<usize>,
}

impl Window {
    /// Extent of the dilated kernel along dimension `d`.
    pub fn span(&self, d: usize) -> usize {
        (self.kernel[d] - 1) * self.dilations[d] + 1
    }
}

/// Reads a per-spatial-dimension list of positive ints (default all `1`).
pub(crate) fn positive_ints(attrs: &Attrs, name: &str, n: usize) -> Result<Vec<usize>> {
    match attrs.opt_ints(name)? {
        None => Ok(vec![1; n]),
        Some(v) => {
            ensure!(
                v.len() == n,
                "`{name}` needs {n} values (one per spatial dimension), got {v:?}"
            );
            ensure!(
                v.iter().all(|&s| s >= 1),
                "`{name}` must be >= 1, got {v:?}"
            );
            Ok(v.iter().map(|&s| s as usize).collect())
        }
    }
}

/// Reads `pads` (`2n` non-negative ints, default all `0`) as (begin, end).
pub(crate) fn read_pads(attrs: &Attrs, n: usize) -> Result<(Vec<usize>, Vec<usize>)> {
    let p = attrs.opt_ints("pads")?.unwrap_or_else(|| vec![0; 2 * n]);
    ensure!(p.len() == 2 * n, "`pads` needs {} values, got {p:?}", 2 * n);
    ensure!(p.iter().all(|&x| x >= 0), "`pads` must be >= 0, got {p:?}");
    let p: Vec<usize> = p.iter().map(|&x| x as usize).collect();
    Ok((p[..n].to_vec(), p[n..].to_vec()))
}

/// Resolves the geometry of a window op over `input` (spatial shape) with
/// `kernel`, from `auto_pad`, `pads`, `strides` and `dilations`.
#[allow(clippy::needless_range_loop)] // several per-dim arrays in step
pub fn window(attrs: &Attrs, input: &[usize], kernel: &[usize], ceil_mode: bool) -> Result<Window> {
    let n = input.len();
    ensure!(
        kernel.len() == n,
        "kernel has {} spatial dimensions, input has {n}",
        kernel.len()
    );
    ensure!(kernel.iter().all(|&k| k >= 1), "kernel sizes must be >= 1");
    let mut w = Window {
        kernel: kernel.to_vec(),
        strides: positive_ints(attrs, "strides", n)?,
        dilations: positive_ints(attrs, "dilations", n)?,
        begin: vec![0; n],
        end: vec![0; n],
        out: vec![0; n],
    };
    let auto_pad = attrs.str_or("auto_pad", "NOTSET")?;
    match auto_pad {
        "NOTSET" | "" => (w.begin, w.end) = read_pads(attrs, n)?,
        "VALID" => {}
        "SAME_UPPER" | "SAME_LOWER" => {
            for d in 0..n {
                let out = input[d].div_ceil(w.strides[d]);
                let total = ((out.max(1) - 1) * w.strides[d] + w.span(d)).saturating_sub(input[d]);
                let small = total / 2;
                (w.begin[d], w.end[d]) = if auto_pad == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                w.out[d] = out;
            }
            return Ok(w);
        }
        other => return Err(op_err!("unknown auto_pad `{other}`")),
    }
    for d in 0..n {
        let padded = input[d] + w.begin[d] + w.end[d];
        let span = w.span(d);
        ensure!(
            padded >= span,
            "dilated kernel ({span}) is larger than the padded input ({padded}) in spatial dimension {d}"
        );
        let s = w.strides[d];
        let mut out = if ceil_mode {
            (padded - span).div_ceil(s) + 1
        } else {
            (padded - span) / s + 1
        };
        // The last window must start inside the input or its begin padding.
        if ceil_mode && (out - 1) * s >= input[d] + w.begin[d] {
            out -= 1;
        }
        w.out[d] = out;
    }
    Ok(w)
}

/// Advances a row-major multi-index over `shape`; false after the last one.
pub(crate) fn next_index(idx: &mut [usize], shape: &[usize]) -> bool {
    for d in (0..shape.len()).rev() {
        idx[d] += 1;
        if idx[d] < shape[d] {
            return true;
        }
        idx[d] = 0;
    }
    false
}

/// Every multi-index of `shape` in row-major order.
pub(crate) fn all_indices(shape: &[usize]) -> Vec<Vec<usize>> {
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let mut idx = vec![0; shape.len()];
    loop {
        out.push(idx.clone());
        if !next_index(&mut idx, shape) {
            return out;
        }
    }
}

/// Shapes of a convolution: checks `X`, `W` and `B` and returns the geometry.
struct ConvShape {
    n: usize,
    c: usize,
    m: usize,
    group: usize,
    input: Vec<usize>,
    win: Window,
}

fn conv_shape(attrs: &Attrs, x: &[usize], w: &[usize], b: Option<&[usize]>) -> Result<ConvShape> {
    ensure!(
        x.len() >= 3,
        "input must be [N, C, spatial...], got shape {x:?}"
    );
    ensure!(
        w.len() == x.len(),
        "weight rank {} differs from input rank {}",
        w.len(),
        x.len()
    );
    let group = attrs.int_or("group", 1)?;
    ensure!(group >= 1, "`group` must be >= 1, got {group}");
    let group = group as usize;
    let (c, m) = (x[1], w[0]);
    ensure!(
        w[1] * group == c,
        "input has {c} channels, but weight {w:?} with group {group} expects {}",
        w[1] * group
    );
    ensure!(
        m % group == 0,
        "{m} output channels are not divisible by group {group}"
    );
    if let Some(ks) = attrs.opt_ints("kernel_shape")? {
        let ws: Vec<i64> = w[2..].iter().map(|&k| k as i64).collect();
        ensure!(
            ks == ws,
            "kernel_shape {ks:?} differs from the weight's {ws:?}"
        );
    }
    if let Some(b) = b {
        ensure!(b == [m], "bias must have shape [{m}], got {b:?}");
    }
    let win = window(attrs, &x[2..], &w[2..], false)?;
    Ok(ConvShape {
        n: x[0],
        c,
        m,
        group,
        input: x[2..].to_vec(),
        win,
    })
}

impl ConvShape {
    fn out_shape(&self) -> Vec<usize> {
        let mut s = vec![self.n, self.m];
        s.extend(&self.win.out);
        s
    }

    /// For one output position, the (kernel offset, input offset) pairs that
    /// fall inside the input.
    fn taps(&self, o: &[usize], kpos: &[Vec<usize>], taps: &mut Vec<(usize, usize)>) {
        taps.clear();
        let w = &self.win;
        'k: for (kk, k) in kpos.iter().enumerate() {
            let mut off = 0usize;
            for d in 0..o.len() {
                let i =
                    (o[d] * w.strides[d] + k[d] * w.dilations[d]) as isize - w.begin[d] as isize;
                if i < 0 || i >= self.input[d] as isize {
                    continue 'k;
                }
                off = off * self.input[d] + i as usize;
            }
            taps.push((kk, off));
        }
    }

    /// Direct convolution in f64; `wz` is subtracted from the weights per output channel.
    fn run(&self, x: &[f64], w: &[f64], b: Option<&[f64]>) -> Vec<f64> {
        let in_sz: usize = self.input.iter().product();
        let out_sz: usize = self.win.out.iter().product();
        let k_sz: usize = self.win.kernel.iter().product();
        let (cg, mg) = (self.c / self.group, self.m / self.group);
        let kpos = all_indices(&self.win.kernel);
        let mut y = vec![0.0; self.n * self.m * out_sz];
        let mut taps = Vec::with_capacity(k_sz);
        for (of, o) in all_indices(&self.win.out).iter().enumerate() {
            self.taps(o, &kpos, &mut taps);
            for n in 0..self.n {
                for m in 0..self.m {
                    let g = m / mg;
                    let mut acc = b.map_or(0.0, |b| b[m]);
                    for cl in 0..cg {
                        let xb = (n * self.c + g * cg + cl) * in_sz;
                        let wb = (m * cg + cl) * k_sz;
                        for &(kk, off) in &taps {
                            acc += x[xb + off] * w[wb + kk];
                        }
                    }
                    y[(n * self.m + m) * out_sz + of] = acc;
                }
            }
        }
        y
    }
}

fn conv_infer(attrs: &Attrs, ins: &[&TensorType]) -> Result<Vec<TensorType>> {
    arity(ins, 2, 3)?;
    let d = ins[0].dtype;
    ensure!(d.is_float(), "Conv needs a float input, got {d}");
    for t in &ins[1..] {
        ensure!(t.dtype == d, "inputs must share dtype {d}, got {}", t.dtype);
    }
    let b = ins.get(2).map(|t| t.shape.as_slice());
    let s = conv_shape(attrs, &ins[0].shape, &ins[1].shape, b)?;
    Ok(vec![TensorType::new(d, s.out_shape())])
}

fn conv_eval(attrs: &Attrs, ins: &[&Tensor]) -> Result<Vec<Tensor>> {
    arity(ins, 2, 3)?;
    let ty: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
    let out = conv_infer(attrs, &ty.iter().collect::<Vec<_>>())?;
    let b = ins.get(2).map(|t| t.shape());
    let s = conv_shape(attrs, ins[0].shape(), ins[1].shape(), b)?;
    let bias = ins.get(2).map(|t| t.to_f64_vec());
    let y = s.run(&ins[0].to_f64_vec(), &ins[1].to_f64_vec(), bias.as_deref());
    let y = Tensor::from_vec(out[0].shape.clone(), y)?;
    Ok(vec![y.cast(out[0].dtype)])
}

fn is_int8(d: DType) -> bool {
    matches!(d, DType::I8 | DType::U8)
}

fn conv_integer_infer(attrs: &Attrs, ins: &[&TensorType]) -> Result<Vec<TensorType>> {
    arity(ins, 2, 4)?;
    let (x, w) = (ins[0], ins[1]);
    ensure!(
        is_int8(x.dtype) && is_int8(w.dtype),
        "ConvInteger needs int8/uint8 x and w, got {} and {}",
        x.dtype,
        w.dtype
    );
    let s = conv_shape(attrs, &x.shape, &w.shape, None)?;
    if let Some(xz) = ins.get(2) {
        ensure!(xz.dtype == x.dtype, "x_zero_point must be {}", x.dtype);
        ensure!(
            xz.numel() == 1,
            "x_zero_point must be a scalar, got {:?}",
            xz.shape
        );
    }
    if let Some(wz) = ins.get(3) {
        ensure!(wz.dtype == w.dtype, "w_zero_point must be {}", w.dtype);
        ensure!(
            wz.numel() == 1 || wz.shape == [s.m],
            "w_zero_point must be a scalar or have shape [{}], got {:?}",
            s.m,
            wz.shape
        );
    }
    Ok(vec![TensorType::new(DType::I32, s.out_shape())])
}

fn conv_integer_eval(attrs: &Attrs, ins: &[&Tensor]) -> Result<Vec<Tensor>> {
    arity(ins, 2, 4)?;
    let ty: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
    let out = conv_integer_infer(attrs, &ty.iter().collect::<Vec<_>>())?;
    let s = conv_shape(attrs, ins[0].shape(), ins[1].shape(), None)?;
    let xz = ins.get(2).map_or(0.0, |t| t.to_f64_vec()[0]);
    let wz = ins.get(3).map_or(vec![0.0], |t| t.to_f64_vec());
    let x: Vec<f64> = ins[0].to_f64_vec().iter().map(|v| v - xz).collect();
    let per_m = ins[1].len() / s.m.max(1);
    let w: Vec<f64> = ins[1]
        .to_f64_vec()
        .iter()
        .enumerate()
        .map(|(i, v)| v - if wz.len() == 1 { wz[0] } else { wz[i / per_m] })
        .collect();
    let y: Vec<i32> = s.run(&x, &w, None).iter().map(|&v| v as i32).collect();
    Ok(vec![Tensor::from_vec(out[0].shape.clone(), y)?])
}

pub fn register(r: &mut Registry) {
    r.add(
        "Conv",
        |a, ins, _| conv_infer(a, ins),
        |a, ins, _| conv_eval(a, ins),
    );
    r.add(
        "ConvInteger",
        |a, ins, _| conv_integer_infer(a, ins),
        |a, ins, _| conv_integer_eval(a, ins),
    );
    transpose::register(r);
    col2im::register(r);
    deform::register(r);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Attr;

    fn run(attrs: Attrs, x: Tensor, w: Tensor) -> Tensor {
        conv_eval(&attrs, &[&x, &w]).unwrap().remove(0)
    }

    #[test]
    fn same_lower_puts_odd_padding_first() {
        let a = Attrs::new()
            .with("auto_pad", Attr::Str("SAME_LOWER".into()))
            .with("strides", Attr::Ints(vec![2]));
        let w = window(&a, &[4], &[2], false).unwrap();
        assert_eq!((w.begin, w.end, w.out), (vec![0], vec![0], vec![2]));
        let w = window(&a, &[5], &[2], false).unwrap();
        assert_eq!((w.begin, w.end, w.out), (vec![1], vec![0], vec![3]));
    }

    #[test]
    fn ceil_mode_drops_window_starting_in_end_padding() {
        let a = Attrs::new()
            .with("pads", Attr::Ints(vec![1, 1]))
            .with("strides", Attr::Ints(vec![3]));
        assert_eq!(window(&a, &[2], &[3], true).unwrap().out, vec![1]);
    }

    #[test]
    fn depthwise_conv_uses_one_channel_per_group() {
        let x = Tensor::from_vec(vec![1, 2, 3], vec![1.0f32, 2.0, 3.0, 10.0, 20.0, 30.0]).unwrap();
        let w = Tensor::from_vec(vec![2, 1, 2], vec![1.0f32, 1.0, 1.0, -1.0]).unwrap();
        let y = run(Attrs::new().with("group", Attr::Int(2)), x, w);
        assert_eq!(y.shape(), &[1, 2, 2]);
        assert_eq!(y.as_slice::<f32>().unwrap(), &[3.0, 5.0, -10.0, -10.0]);
    }
}
