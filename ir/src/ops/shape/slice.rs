//! Slicing and padding.
//!
//! - `Slice`: `starts`, `ends` (ints), `axes` (optional, default all leading
//!   axes), `steps` (optional, default 1; negative walks backwards). Bounds are
//!   clamped as ONNX does, so `i64::MAX` / `i64::MIN` mean "to the end".
//! - `Pad`: `pads` (ints: all begins then all ends, negative crops), `axes`
//!   (optional), `mode` (`constant` | `reflect` | `edge` | `wrap`, default
//!   constant), `constant_value` (float, default 0). Negative pads crop first;
//!   the other modes then pad the cropped tensor.
//! - `CenterCropPad`: `shape` (target sizes, one per axis), `axes` (optional):
//!   crops or zero-pads each axis around its centre.

use super::{check_numel, offset, remap_fill, to_dims};
use crate::ops::util::{arity, norm_axes};
use crate::{ensure, strides, Attrs, Registry, Result, Tensor, TensorType};

/// The axes an op's per-axis lists apply to (`axes` attribute or `0..n`).
fn axes_of(a: &Attrs, n: usize, rank: usize) -> Result<Vec<usize>> {
    match a.opt_ints("axes")? {
        Some(ax) => {
            ensure!(ax.len() == n, "axes {ax:?} must have {n} entries");
            norm_axes(&ax, rank)
        }
        None => {
            ensure!(n <= rank, "{n} entries for rank {rank}");
            Ok((0..n).collect())
        }
    }
}

/// Per dim: (first input index, step, output length).
pub(super) fn slice_plan(a: &Attrs, x: &[usize]) -> Result<Vec<(i128, i128, usize)>> {
    let (starts, ends) = (a.ints("starts")?, a.ints("ends")?);
    ensure!(
        starts.len() == ends.len(),
        "starts and ends differ in length"
    );
    let axes = axes_of(a, starts.len(), x.len())?;
    let steps = a.opt_ints("steps")?.unwrap_or(vec![1; starts.len()]);
    ensure!(steps.len() == starts.len(), "steps differ in length");
    let mut plan: Vec<(i128, i128, usize)> = x.iter().map(|&d| (0, 1, d)).collect();
    for (k, &ax) in axes.iter().enumerate() {
        let (d, step) = (x[ax] as i128, steps[k] as i128);
        ensure!(step != 0, "slice step cannot be 0");
        let fix = |v: i64| if v < 0 { v as i128 + d } else { v as i128 };
        let (mut s, mut e) = (fix(starts[k]), fix(ends[k]));
        let len = if d == 0 {
            0
        } else if step > 0 {
            s = s.clamp(0, d);
            e = e.clamp(0, d);
            if e > s {
                (e - s + step - 1) / step
            } else {
                0
            }
        } else {
            s = s.clamp(0, d - 1);
            e = e.clamp(-1, d - 1);
            if s > e {
                (s - e - step - 1) / -step
            } else {
                0
            }
        };
        plan[ax] = (s, step, len as usize);
    }
    Ok(plan)
}

fn slice(a: &Attrs, x: &Tensor) -> Result<Tensor> {
    let plan = slice_plan(a, x.shape())?;
    let st = strides(x.shape());
    let out = plan.iter().map(|p| p.2).collect();
    remap_fill(x, out, 0.0, |i| {
        let mut k = 0i128;
        for ((&o, &(s, step, _)), &stride) in i.iter().zip(&plan).zip(&st) {
            k += (s + o as i128 * step) * stride as i128;
        }
        Ok(Some(k as usize))
    })
}

/// Per dim: for each output coordinate, the input coordinate (or `None` for the constant).
pub(super) fn pad_maps(a: &Attrs, x: &[usize]) -> Result<Vec<Vec<Option<usize>>>> {
    let pads = a.ints("pads")?;
    ensure!(
        pads.len() % 2 == 0,
        "pads {pads:?} must have an even length"
    );
    let n = pads.len() / 2;
    let axes = axes_of(a, n, x.len())?;
    let mode = a.str_or("mode", "constant")?;
    ensure!(
        ["constant", "reflect", "edge", "wrap"].contains(&mode),
        "unknown Pad mode `{mode}`"
    );
    let mut maps: Vec<Vec<Option<usize>>> = x.iter().map(|&d| (0..d).map(Some).collect()).collect();
    for (k, &ax) in axes.iter().enumerate() {
        let (b, e, d) = (pads[k] as i128, pads[k + n] as i128, x[ax] as i128);
        let (cb, ce) = ((-b).max(0), (-e).max(0));
        let inner = d - cb - ce;
        let out = d + b + e;
        ensure!(
            inner >= 0 && out >= 0,
            "pads {pads:?} crop more than dim {d}"
        );
        let (pb, padded) = (b.max(0), out > inner);
        ensure!(
            mode == "constant" || !padded || inner > 0,
            "Pad mode {mode} cannot pad an empty axis"
        );
        ensure!(out < 1 << 40, "pads {pads:?} make dim {d} too large");
        maps[ax] = (0..out)
            .map(|o| {
                let j = o - pb;
                let src = if (0..inner).contains(&j) {
                    Some(j)
                } else {
                    match mode {
                        "edge" => Some(j.clamp(0, inner - 1)),
                        "wrap" => Some(j.rem_euclid(inner)),
                        "reflect" if inner == 1 => Some(0),
                        "reflect" => {
                            let p = 2 * (inner - 1);
                            let m = j.rem_euclid(p);
                            Some(if m >= inner { p - m } else { m })
                        }
                        _ => None,
                    }
                };
                src.map(|s| (s + cb) as usize)
            })
            .collect();
    }
    Ok(maps)
}

fn pad(a: &Attrs, x: &Tensor) -> Result<Tensor> {
    let maps = pad_maps(a, x.shape())?;
    let out: Vec<usize> = maps.iter().map(Vec::len).collect();
    check_numel(&out)?;
    let st = strides(x.shape());
    let value = a.float_or("constant_value", 0.0)?;
    remap_fill(x, out, value, |i| {
        let mut k = 0;
        for ((&o, m), &s) in i.iter().zip(&maps).zip(&st) {
            match m[o] {
                Some(c) => k += c * s,
                None => return Ok(None),
            }
        }
        Ok(Some(k))
    })
}

/// Per dim: (output size, signed offset from output to input coordinate).
pub(super) fn crop_pad_plan(a: &Attrs, x: &[usize]) -> Result<Vec<(usize, i64)>> {
    let target = to_dims(&a.ints("shape")?, "CenterCropPad shape")?;
    let axes = axes_of(a, target.len(), x.len())?;
    ensure!(
        a.get("axes").is_some() || target.len() == x.len(),
        "shape {target:?} must have one entry per dim"
    );
    let mut plan: Vec<(usize, i64)> = x.iter().map(|&d| (d, 0)).collect();
    for (&t, &ax) in target.iter().zip(&axes) {
        let d = x[ax];
        plan[ax] = if t <= d {
            (t, ((d - t) / 2) as i64)
        } else {
            (t, -(((t - d) / 2) as i64))
        };
    }
    check_numel(&plan.iter().map(|p| p.0).collect::<Vec<_>>())?;
    Ok(plan)
}

fn center_crop_pad(a: &Attrs, x: &Tensor) -> Result<Tensor> {
    let plan = crop_pad_plan(a, x.shape())?;
    let st = strides(x.shape());
    let xs = x.shape().to_vec();
    let out = plan.iter().map(|p| p.0).collect();
    let mut src = vec![0usize; xs.len()];
    remap_fill(x, out, 0.0, |i| {
        for k in 0..i.len() {
            let c = i[k] as i64 + plan[k].1;
            if c < 0 || c >= xs[k] as i64 {
                return Ok(None);
            }
            src[k] = c as usize;
        }
        Ok(Some(offset(&src, &st)))
    })
}

fn add(
    r: &mut Registry,
    name: &'static str,
    shape: fn(&Attrs, &[usize]) -> Result<Vec<usize>>,
    eval: fn(&Attrs, &Tensor) -> Result<Tensor>,
) {
    r.add(
        name,
        move |a, ins, _| {
            arity(ins, 1, 1)?;
            Ok(vec![TensorType::new(
                ins[0].dtype,
                shape(a, &ins[0].shape)?,
            )])
        },
        move |a, ins, _| {
            arity(ins, 1, 1)?;
            Ok(vec![eval(a, ins[0])?])
        },
    );
}

pub fn register(r: &mut Registry) {
    add(
        r,
        "Slice",
        |a, x| Ok(slice_plan(a, x)?.iter().map(|p| p.2).collect()),
        slice,
    );
    add(
        r,
        "Pad",
        |a, x| Ok(pad_maps(a, x)?.iter().map(Vec::len).collect()),
        pad,
    );
    add(
        r,
        "CenterCropPad",
        |a, x| Ok(crop_pad_plan(a, x)?.iter().map(|p| p.0).collect()),
        center_crop_pad,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Attr;

    fn v(x: &Tensor) -> Vec<f64> {
        x.to_f64_vec()
    }

    #[test]
    fn slice_negative_step_and_int_max() {
        let x = Tensor::from_vec(vec![5], (0..5).map(|v| v as f32).collect()).unwrap();
        let a = Attrs::new()
            .with("starts", Attr::Ints(vec![-1]))
            .with("ends", Attr::Ints(vec![i64::MIN]))
            .with("steps", Attr::Ints(vec![-2]));
        assert_eq!(v(&slice(&a, &x).unwrap()), [4., 2., 0.]);
        let a = Attrs::new()
            .with("starts", Attr::Ints(vec![1]))
            .with("ends", Attr::Ints(vec![i64::MAX]));
        assert_eq!(v(&slice(&a, &x).unwrap()), [1., 2., 3., 4.]);
    }

    #[test]
    fn pad_modes() {
        let x = Tensor::from_vec(vec![3], vec![1i64, 2, 3]).unwrap();
        let p = |mode: &str| {
            let a = Attrs::new()
                .with("pads", Attr::Ints(vec![2, 2]))
                .with("mode", Attr::Str(mode.into()));
            v(&pad(&a, &x).unwrap())
        };
        assert_eq!(p("reflect"), [3., 2., 1., 2., 3., 2., 1.]);
        assert_eq!(p("edge"), [1., 1., 1., 2., 3., 3., 3.]);
        assert_eq!(p("wrap"), [2., 3., 1., 2., 3., 1., 2.]);
        assert_eq!(p("constant"), [0., 0., 1., 2., 3., 0., 0.]);
        let a = Attrs::new().with("pads", Attr::Ints(vec![-1, 1]));
        assert_eq!(v(&pad(&a, &x).unwrap()), [2., 3., 0.]);
    }
}
