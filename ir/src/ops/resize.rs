//! Resize(X): nearest / linear / cubic interpolation over any axes (also the
//! target of ONNX Upsample). Separable: one axis at a time, in f64; integer
//! outputs are rounded half to even and saturated (onnx's reference).
//!
//! Attributes (ONNX names, with ONNX's scales/sizes/roi *inputs* normalised
//! by the importer into full-rank attributes):
//! - `scales` (floats, one per axis, required): the coordinate scale factors.
//! - `sizes` (ints, one per axis; default `floor(D * scale)`): output shape.
//! - `roi` (floats `[starts.., ends..]`, default `[0..., 1...]`): only read by
//!   `tf_crop_and_resize`.
//! - `mode`: `nearest` (default), `linear`, `cubic`.
//! - `coordinate_transformation_mode`: `half_pixel` (default),
//!   `half_pixel_symmetric`, `pytorch_half_pixel`, `align_corners`,
//!   `asymmetric`, `tf_crop_and_resize`, `tf_half_pixel_for_nn` (opset 11).
//! - `nearest_mode`: `round_prefer_floor` (default), `round_prefer_ceil`,
//!   `floor`, `ceil`, and Kiln's `simple` (Resize-10 / Upsample: `ceil` on
//!   axes that shrink, `floor` otherwise, as onnxruntime).
//! - `cubic_coeff_a` (-0.75), `exclude_outside` (0), `extrapolation_value`
//!   (0.0, for points outside the roi), `antialias` (0; widens linear and
//!   cubic filters by `1/scale` when downsampling).
//!
//! GridSample and AffineGrid live in `resize/grid.rs`.

mod grid;

use super::util::arity;
use crate::{dispatch_numeric, ensure, op_err, Attrs, Elem, Registry, Result, Tensor, TensorType};

/// The interpolation settings of one Resize node.
struct Cfg {
    mode: String,
    coord: String,
    nearest: String,
    a: f64,
    exclude: bool,
    extrapolation: f64,
    antialias: bool,
    scales: Vec<f64>,
    sizes: Vec<usize>,
    roi: Vec<f64>,
}

const MODES: [&str; 3] = ["nearest", "linear", "cubic"];
const COORDS: [&str; 7] = [
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
    "tf_crop_and_resize",
    "tf_half_pixel_for_nn",
];
const NEAREST: [&str; 5] = [
    "round_prefer_floor",
    "round_prefer_ceil",
    "floor",
    "ceil",
    "simple",
];

fn one_of(attrs: &Attrs, name: &str, default: &str, allowed: &[&str]) -> Result<String> {
    let v = attrs.str_or(name, default)?;
    ensure!(
        allowed.contains(&v),
        "`{name}` must be one of {allowed:?}, got `{v}`"
    );
    Ok(v.to_string())
}

impl Cfg {
    fn new(attrs: &Attrs, shape: &[usize]) -> Result<Cfg> {
        let r = shape.len();
        let scales = attrs.floats("scales")?;
        ensure!(
            scales.len() == r,
            "`scales` needs {r} values, got {scales:?}"
        );
        ensure!(
            scales.iter().all(|s| s.is_finite() && *s > 0.0),
            "`scales` must be positive, got {scales:?}"
        );
        let sizes = match attrs.opt_ints("sizes")? {
            Some(s) => {
                ensure!(s.len() == r, "`sizes` needs {r} values, got {s:?}");
                ensure!(s.iter().all(|&v| v >= 0), "`sizes` must be >= 0, got {s:?}");
                s.iter().map(|&v| v as usize).collect()
            }
            None => (0..r)
                .map(|d| (shape[d] as f64 * scales[d]).floor() as usize)
                .collect(),
        };
        let roi = match attrs.opt_floats("roi")? {
            Some(v) => {
                ensure!(v.len() == 2 * r, "`roi` needs {} values, got {v:?}", 2 * r);
                v
            }
            None => [vec![0.0; r], vec![1.0; r]].concat(),
        };
        Ok(Cfg {
            mode: one_of(attrs, "mode", "nearest", &MODES)?,
            coord: one_of(
                attrs,
                "coordinate_transformation_mode",
                "half_pixel",
                &COORDS,
            )?,
            nearest: one_of(attrs, "nearest_mode", "round_prefer_floor", &NEAREST)?,
            a: attrs.float_or("cubic_coeff_a", -0.75)?,
            exclude: attrs.int_or("exclude_outside", 0)? != 0,
            extrapolation: attrs.float_or("extrapolation_value", 0.0)?,
            antialias: attrs.int_or("antialias", 0)? != 0,
            scales,
            sizes,
            roi,
        })
    }

    /// Source coordinate of output index `x` along an axis (input length
    /// `len`, `out` outputs, scale `s`, roi `(r0, r1)`).
    fn source(&self, x: f64, len: usize, out: usize, s: f64, (r0, r1): (f64, f64)) -> f64 {
        let (len_f, width) = (len as f64, s * len as f64);
        match self.coord.as_str() {
            "align_corners" if width == 1.0 => 0.0,
            "align_corners" => x * (len_f - 1.0) / (width - 1.0),
            "asymmetric" => x / s,
            "tf_half_pixel_for_nn" => (x + 0.5) / s,
            "pytorch_half_pixel" if out <= 1 => 0.0,
            "half_pixel_symmetric" => {
                let offset = len_f / 2.0 * (1.0 - out as f64 / width);
                offset + (x + 0.5) / s - 0.5
            }
            "tf_crop_and_resize" => {
                let span = (r1 - r0) * (len_f - 1.0);
                let x = if width == 1.0 {
                    span / 2.0
                } else {
                    x * span / (width - 1.0)
                };
                x + r0 * (len_f - 1.0)
            }
            _ => (x + 0.5) / s - 0.5,
        }
    }

    /// Filter weights for fraction `ratio` in (0, 1] and the offset of the
    /// first tap from `floor`, where taps sit at `floor + start + j`.
    fn coeffs(&self, ratio: f64, s: f64) -> (Vec<f64>, isize) {
        let a = self.a;
        let cubic = |x: f64| {
            let x = x.abs();
            if x <= 1.0 {
                ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
            } else if x < 2.0 {
                ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
            } else {
                0.0
            }
        };
        match self.mode.as_str() {
            "nearest" => {
                let up = match self.nearest.as_str() {
                    _ if ratio == 1.0 => true,
                    "round_prefer_floor" => ratio > 0.5,
                    "round_prefer_ceil" => ratio >= 0.5,
                    "floor" => false,
                    "ceil" => true,
                    _ => s < 1.0,
                };
                (if up { vec![0.0, 1.0] } else { vec![1.0, 0.0] }, 0)
            }
            "linear" if self.antialias && s < 1.0 => {
                let start = (-1.0 / s).floor() as isize + 1;
                let w = (start..2 - start)
                    .map(|i| (1.0 - ((i as f64 - ratio) * s).abs()).clamp(0.0, 1.0));
                (normalise(w.collect()), start)
            }
            "linear" => (vec![1.0 - ratio, ratio], 0),
            _ if self.antialias && s < 1.0 => {
                let start = (-2.0 / s).floor() as isize + 1;
                let w = (start..2 - start).map(|i| cubic(s * (i as f64 - ratio)));
                (normalise(w.collect()), start)
            }
            _ => ((-1..3).map(|i| cubic(i as f64 - ratio)).collect(), -1),
        }
    }

    /// For each output index along `axis`: its (input index, weight) taps,
    /// or `None` where it takes the extrapolation value.
    fn axis_taps(&self, axis: usize, len: usize) -> Vec<Option<Vec<(usize, f64)>>> {
        let (out, s) = (self.sizes[axis], self.scales[axis]);
        let r = self.scales.len();
        let roi = (self.roi[axis], self.roi[axis + r]);
        (0..out)
            .map(|x| {
                let src = self.source(x as f64, len, out, s, roi);
                if self.coord == "tf_crop_and_resize" && (src < 0.0 || src > len as f64 - 1.0) {
                    return None;
                }
                let mut fl = src.floor();
                let mut ratio = src - fl;
                if ratio == 0.0 {
                    fl -= 1.0;
                    ratio = 1.0;
                }
                let (mut w, start) = self.coeffs(ratio, s);
                let first = fl as isize + start;
                let inside = |j: usize| (0..len as isize).contains(&(first + j as isize));
                if self.exclude {
                    w.iter_mut()
                        .enumerate()
                        .filter(|(j, _)| !inside(*j))
                        .for_each(|(_, c)| *c = 0.0);
                    w = normalise(w);
                }
                let last = len.max(1) as isize - 1;
                let taps = w.iter().enumerate().filter(|(_, &c)| c != 0.0);
                Some(
                    taps.map(|(j, &c)| ((first + j as isize).clamp(0, last) as usize, c))
                        .collect(),
                )
            })
            .collect()
    }

    /// True when resizing along `axis` would change nothing.
    fn identity(&self, axis: usize, len: usize) -> bool {
        let r = self.scales.len();
        let roi_id = self.coord != "tf_crop_and_resize"
            || ((self.roi[axis]).abs() < 1e-9 && (self.roi[axis + r] - 1.0).abs() < 1e-9);
        (self.scales[axis] - 1.0).abs() <= 1e-9 && self.sizes[axis] == len && roi_id
    }
}

fn normalise(w: Vec<f64>) -> Vec<f64> {
    let sum: f64 = w.iter().sum();
    let sum = if sum == 0.0 { 1.0 } else { sum };
    w.into_iter().map(|c| c / sum).collect()
}

/// Resizes `data` (of `shape`) along `axis` with `taps`.
fn along(
    data: &[f64],
    shape: &mut [usize],
    axis: usize,
    taps: &[Option<Vec<(usize, f64)>>],
    extra: f64,
) -> Vec<f64> {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let len = shape[axis];
    let mut y = Vec::with_capacity(outer * taps.len() * inner);
    for o in 0..outer {
        for t in taps {
            for k in 0..inner {
                y.push(match t {
                    None => extra,
                    Some(t) => t
                        .iter()
                        .map(|&(i, c)| data[(o * len + i) * inner + k] * c)
                        .sum(),
                });
            }
        }
    }
    shape[axis] = taps.len();
    y
}

/// One axis of a [`plan`]: per output index its (input index, weight) taps,
/// or `None` where it takes the extrapolation value.
pub type AxisTaps = Vec<Option<Vec<(usize, f64)>>>;

/// What a compiled Resize precomputes, with the interpreter's own rules: the
/// output shape, the extrapolation value, and per axis its taps (`None` for
/// an axis left unchanged). Applying the axes in order is [`eval`].
pub fn plan(attrs: &Attrs, shape: &[usize]) -> Result<(Vec<usize>, f64, Vec<Option<AxisTaps>>)> {
    let cfg = Cfg::new(attrs, shape)?;
    let mut axes = vec![];
    for (axis, &len) in shape.iter().enumerate() {
        if cfg.identity(axis, len) {
            axes.push(None);
            continue;
        }
        ensure!(
            len > 0 || cfg.sizes[axis] == 0,
            "cannot resize an empty axis {axis} to {}",
            cfg.sizes[axis]
        );
        axes.push(Some(cfg.axis_taps(axis, len)));
    }
    Ok((cfg.sizes.clone(), cfg.extrapolation, axes))
}

fn infer(attrs: &Attrs, ins: &[&TensorType]) -> Result<Vec<TensorType>> {
    arity(ins, 1, 1)?;
    let d = ins[0].dtype;
    ensure!(d.is_numeric(), "Resize needs a numeric input, got {d}");
    let cfg = Cfg::new(attrs, &ins[0].shape)?;
    Ok(vec![TensorType::new(d, cfg.sizes)])
}

fn store<T: Elem>(v: &[f64], float: bool) -> Vec<T> {
    v.iter()
        .map(|&x| T::from_f64(if float { x } else { x.round_ties_even() }))
        .collect()
}

fn eval(attrs: &Attrs, ins: &[&Tensor]) -> Result<Vec<Tensor>> {
    arity(ins, 1, 1)?;
    let x = ins[0];
    let ty = infer(attrs, &[&x.ty()])?.remove(0);
    let cfg = Cfg::new(attrs, x.shape())?;
    let mut shape = x.shape().to_vec();
    let mut data = x.to_f64_vec();
    for axis in 0..shape.len() {
        if cfg.identity(axis, shape[axis]) {
            continue;
        }
        ensure!(
            shape[axis] > 0 || cfg.sizes[axis] == 0,
            "cannot resize an empty axis {axis} to {}",
            cfg.sizes[axis]
        );
        let taps = cfg.axis_taps(axis, shape[axis]);
        data = along(&data, &mut shape, axis, &taps, cfg.extrapolation);
    }
    let float = ty.dtype.is_float();
    let y = dispatch_numeric!(ty.dtype, T => Tensor::from_vec(ty.shape.clone(), store::<T>(&data, float))?,
        _ => return Err(op_err!("Resize does not support {}", ty.dtype)));
    Ok(vec![y])
}

pub fn register(r: &mut Registry) {
    r.add(
        "Resize",
        |a, ins, _| infer(a, ins),
        |a, ins, _| eval(a, ins),
    );
    grid::register(r);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Attr;

    fn resize(x: Vec<f32>, attrs: Attrs) -> Vec<f32> {
        let t = Tensor::from_vec(vec![x.len()], x).unwrap();
        eval(&attrs, &[&t]).unwrap()[0]
            .as_slice::<f32>()
            .unwrap()
            .to_vec()
    }

    #[test]
    fn linear_half_pixel_clamps_at_edges() {
        let a = Attrs::new()
            .with("mode", Attr::Str("linear".into()))
            .with("scales", Attr::Floats(vec![2.0]));
        assert_eq!(resize(vec![1.0, 3.0], a), vec![1.0, 1.5, 2.5, 3.0]);
    }

    #[test]
    fn nearest_round_prefer_ceil_vs_floor() {
        let a = Attrs::new()
            .with(
                "coordinate_transformation_mode",
                Attr::Str("asymmetric".into()),
            )
            .with("scales", Attr::Floats(vec![2.0]));
        let floor = a
            .clone()
            .with("nearest_mode", Attr::Str("round_prefer_floor".into()));
        let ceil = a.with("nearest_mode", Attr::Str("round_prefer_ceil".into()));
        assert_eq!(resize(vec![1.0, 2.0], floor), vec![1.0, 1.0, 2.0, 2.0]);
        assert_eq!(resize(vec![1.0, 2.0], ceil), vec![1.0, 2.0, 2.0, 2.0]);
    }
}
