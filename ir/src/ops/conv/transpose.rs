//! ConvTranspose(X, W [, B]): the gradient of Conv with respect to its input.
//!
//! Layout: `X [N, C, D1..Dn]`, `W [C, M/group, k1..kn]`, `B [M]`; float types,
//! accumulated in f64. Each input element scatters `x * w` to output position
//! `i * stride + k * dilation - pad_begin` (dropped when outside the output).
//!
//! Attributes (ONNX names; all optional): `auto_pad`, `dilations`, `group`,
//! `kernel_shape` (must equal `W`'s spatial shape), `output_padding` (default
//! 0), `output_shape` (spatial dims; a leading `[N, C]` is accepted and
//! ignored), `pads`, `strides`.
//!
//! Output size: with `output_shape`, that shape, and a total padding of
//! `max(0, stride*(D-1) + output_padding + span - output_shape)`, split with
//! the odd unit at the end for `SAME_UPPER`, at the start otherwise (as
//! onnxruntime). Without it, `SAME_*` gives `D * stride` (same split), and
//! explicit `pads` give `stride*(D-1) + output_padding + span - begin - end`,
//! where `span = (k-1)*dilation + 1`.

use super::{all_indices, positive_ints, read_pads, Window};
use crate::ops::util::arity;
use crate::{ensure, op_err, Attrs, Registry, Result, Tensor, TensorType};

/// Checked shapes of a ConvTranspose.
struct Shape {
    n: usize,
    c: usize,
    m: usize,
    group: usize,
    input: Vec<usize>,
    win: Window,
}

fn ints_n(attrs: &Attrs, name: &str, n: usize) -> Result<Option<Vec<usize>>> {
    let Some(v) = attrs.opt_ints(name)? else {
        return Ok(None);
    };
    let v = if v.len() == n + 2 { v[2..].to_vec() } else { v };
    ensure!(v.len() == n, "`{name}` needs {n} values, got {v:?}");
    ensure!(
        v.iter().all(|&x| x >= 0),
        "`{name}` must be >= 0, got {v:?}"
    );
    Ok(Some(v.iter().map(|&x| x as usize).collect()))
}

/// The output geometry of a ConvTranspose over `input` (spatial shape) with
/// `kernel`: strides, dilations, the padding at the start of each dimension
/// (`begin`; `end` as resolved) and the output spatial shape (`out`).
#[allow(clippy::needless_range_loop)] // several per-dim arrays in step
pub fn geometry(attrs: &Attrs, input: &[usize], kernel: &[usize]) -> Result<Window> {
    let n = input.len();
    let mut w = Window {
        kernel: kernel.to_vec(),
        strides: positive_ints(attrs, "strides", n)?,
        dilations: positive_ints(attrs, "dilations", n)?,
        begin: vec![0; n],
        end: vec![0; n],
        out: vec![0; n],
    };
    ensure!(kernel.iter().all(|&k| k >= 1), "kernel sizes must be >= 1");
    let out_pad = ints_n(attrs, "output_padding", n)?.unwrap_or(vec![0; n]);
    let auto_pad = attrs.str_or("auto_pad", "NOTSET")?;
    let same = matches!(auto_pad, "SAME_UPPER" | "SAME_LOWER");
    ensure!(
        same || matches!(auto_pad, "NOTSET" | "" | "VALID"),
        "unknown auto_pad `{auto_pad}`"
    );
    let full: Vec<usize> = (0..n)
        .map(|d| w.strides[d] * input[d].saturating_sub(1) + out_pad[d] + w.span(d))
        .collect();
    let wanted = match ints_n(attrs, "output_shape", n)? {
        Some(s) => Some(s),
        None if same => Some((0..n).map(|d| input[d] * w.strides[d]).collect()),
        None => None,
    };
    if let Some(out) = wanted {
        for d in 0..n {
            let total = full[d].saturating_sub(out[d]);
            let small = total / 2;
            (w.begin[d], w.end[d]) = if auto_pad == "SAME_UPPER" {
                (small, total - small)
            } else {
                (total - small, small)
            };
        }
        w.out = out;
        return Ok(w);
    }
    if auto_pad != "VALID" {
        (w.begin, w.end) = read_pads(attrs, n)?;
    }
    for d in 0..n {
        let pads = w.begin[d] + w.end[d];
        ensure!(
            full[d] >= pads,
            "pads {pads} exceed the full output size {} in spatial dimension {d}",
            full[d]
        );
        w.out[d] = full[d] - pads;
    }
    Ok(w)
}

fn shape(attrs: &Attrs, x: &[usize], w: &[usize], b: Option<&[usize]>) -> Result<Shape> {
    ensure!(x.len() >= 3, "input must be [N, C, spatial...], got {x:?}");
    ensure!(
        w.len() == x.len(),
        "weight rank {} differs from input rank {}",
        w.len(),
        x.len()
    );
    let group = attrs.int_or("group", 1)?;
    ensure!(group >= 1, "`group` must be >= 1, got {group}");
    let group = group as usize;
    ensure!(
        w[0] == x[1],
        "weight {w:?} needs {} input channels, input has {}",
        w[0],
        x[1]
    );
    ensure!(
        x[1].is_multiple_of(group),
        "{} input channels are not divisible by group {group}",
        x[1]
    );
    if let Some(ks) = attrs.opt_ints("kernel_shape")? {
        let ws: Vec<i64> = w[2..].iter().map(|&k| k as i64).collect();
        ensure!(
            ks == ws,
            "kernel_shape {ks:?} differs from the weight's {ws:?}"
        );
    }
    let m = w[1] * group;
    if let Some(b) = b {
        ensure!(b == [m], "bias must have shape [{m}], got {b:?}");
    }
    Ok(Shape {
        n: x[0],
        c: x[1],
        m,
        group,
        input: x[2..].to_vec(),
        win: geometry(attrs, &x[2..], &w[2..])?,
    })
}

impl Shape {
    fn out_shape(&self) -> Vec<usize> {
        let mut s = vec![self.n, self.m];
        s.extend(&self.win.out);
        s
    }

    /// Output offset reached from input position `i` through kernel position `k`.
    fn target(&self, i: &[usize], k: &[usize]) -> Option<usize> {
        let w = &self.win;
        let mut off = 0usize;
        for d in 0..i.len() {
            let o = (i[d] * w.strides[d] + k[d] * w.dilations[d]) as isize - w.begin[d] as isize;
            if o < 0 || o >= w.out[d] as isize {
                return None;
            }
            off = off * w.out[d] + o as usize;
        }
        Some(off)
    }

    fn run(&self, x: &[f64], w: &[f64], b: Option<&[f64]>) -> Vec<f64> {
        let in_sz: usize = self.input.iter().product();
        let out_sz: usize = self.win.out.iter().product();
        let k_sz: usize = self.win.kernel.iter().product();
        let (cg, mg) = (self.c / self.group, self.m / self.group);
        let kpos = all_indices(&self.win.kernel);
        let mut y = vec![0.0; self.n * self.m * out_sz];
        for n in 0..self.n {
            for m in 0..self.m {
                let bias = b.map_or(0.0, |b| b[m]);
                let base = (n * self.m + m) * out_sz;
                y[base..base + out_sz].iter_mut().for_each(|v| *v = bias);
            }
        }
        for (ifl, i) in all_indices(&self.input).iter().enumerate() {
            for (kk, k) in kpos.iter().enumerate() {
                let Some(off) = self.target(i, k) else {
                    continue;
                };
                for n in 0..self.n {
                    for c in 0..self.c {
                        let g = c / cg;
                        let xv = x[(n * self.c + c) * in_sz + ifl];
                        for ml in 0..mg {
                            let m = g * mg + ml;
                            y[(n * self.m + m) * out_sz + off] += xv * w[(c * mg + ml) * k_sz + kk];
                        }
                    }
                }
            }
        }
        y
    }
}

fn infer(attrs: &Attrs, ins: &[&TensorType]) -> Result<Vec<TensorType>> {
    arity(ins, 2, 3)?;
    let d = ins[0].dtype;
    ensure!(d.is_float(), "ConvTranspose needs a float input, got {d}");
    for t in &ins[1..] {
        ensure!(t.dtype == d, "inputs must share dtype {d}, got {}", t.dtype);
    }
    let b = ins.get(2).map(|t| t.shape.as_slice());
    let s = shape(attrs, &ins[0].shape, &ins[1].shape, b)?;
    Ok(vec![TensorType::new(d, s.out_shape())])
}

fn eval(attrs: &Attrs, ins: &[&Tensor]) -> Result<Vec<Tensor>> {
    arity(ins, 2, 3)?;
    let ty: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
    let out = infer(attrs, &ty.iter().collect::<Vec<_>>())?;
    let b = ins.get(2).map(|t| t.shape());
    let s = shape(attrs, ins[0].shape(), ins[1].shape(), b)?;
    let bias = ins.get(2).map(|t| t.to_f64_vec());
    let y = s.run(&ins[0].to_f64_vec(), &ins[1].to_f64_vec(), bias.as_deref());
    let y = Tensor::from_vec(out[0].shape.clone(), y).map_err(|e| op_err!("{e}"))?;
    Ok(vec![y.cast(out[0].dtype)])
}

pub fn register(r: &mut Registry) {
    r.add(
        "ConvTranspose",
        |a, ins, _| infer(a, ins),
        |a, ins, _| eval(a, ins),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Attr;

    #[test]
    fn output_shape_larger_than_natural_pads_at_end() {
        let a = Attrs::new()
            .with("strides", Attr::Ints(vec![3]))
            .with("output_shape", Attr::Ints(vec![10]));
        let w = geometry(&a, &[3], &[3]).unwrap();
        assert_eq!((w.begin, w.out), (vec![0], vec![10]));
    }

    #[test]
    fn stride_two_scatters_overlapping_windows() {
        let x = Tensor::from_vec(vec![1, 1, 2], vec![1.0f32, 10.0]).unwrap();
        let w = Tensor::from_vec(vec![1, 1, 3], vec![1.0f32, 2.0, 3.0]).unwrap();
        let a = Attrs::new().with("strides", Attr::Ints(vec![2]));
        let y = eval(&a, &[&x, &w]).unwrap().remove(0);
        assert_eq!(y.as_slice::<f32>().unwrap(), &[1.0, 2.0, 13.0, 20.0, 30.0]);
    }
}
