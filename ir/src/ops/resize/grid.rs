//! Grid sampling: GridSample and AffineGrid (float types, computed in f64).
//!
//! - `GridSample(X [N, C, D1..Dr], grid [N, H1..Hr, r])` -> `[N, C, H1..Hr]`.
//!   `grid`'s last axis holds normalised coordinates in `[-1, 1]`, innermost
//!   spatial axis first (x, y, z). Attributes: `mode` `linear` (default) /
//!   `nearest` (round half to even) / `cubic` (Keys, a = -0.75);
//!   `padding_mode` `zeros` (default) / `border` / `reflection`;
//!   `align_corners` (0: -1 and 1 are the outer pixel edges; 1: the outer
//!   pixel centres).
//! - `AffineGrid(theta [N, r, r+1])` with attribute `size` (`[N, C, D1..Dr]`,
//!   r = 2 or 3) and `align_corners` -> grid `[N, D1..Dr, r]`: `theta` applied
//!   to the normalised base grid `(x, y[, z], 1)`.

use crate::ops::conv::{all_indices, next_index};
use crate::ops::util::arity;
use crate::{ensure, op_err, Attrs, Registry, Result, Tensor, TensorType};

/// Reflects `x` into `[lo, hi]` by bouncing off the borders.
fn reflect(x: f64, lo: f64, hi: f64) -> f64 {
    let range = hi - lo;
    if range <= 0.0 {
        return lo;
    }
    let bounce = |dx: f64, near: f64, far: f64, sign: f64| {
        let n = (dx / range).trunc();
        let r = dx - n * range;
        if n % 2.0 == 0.0 {
            near + sign * r
        } else {
            far - sign * r
        }
    };
    if x < lo {
        bounce(lo - x, lo, hi, 1.0)
    } else if x > hi {
        bounce(x - hi, hi, lo, -1.0)
    } else {
        x
    }
}

fn keys(t: f64) -> [f64; 4] {
    let a = -0.75;
    let near = |x: f64| ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    let far = |x: f64| ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}

struct Sampler {
    mode: String,
    padding: String,
    align: bool,
}

impl Sampler {
    fn new(a: &Attrs) -> Result<Sampler> {
        let mode = match a.str_or("mode", "linear")? {
            "linear" | "bilinear" => "linear",
            "nearest" => "nearest",
            "cubic" | "bicubic" => "cubic",
            m => return Err(op_err!("unknown GridSample mode `{m}`")),
        };
        let padding = a.str_or("padding_mode", "zeros")?;
        ensure!(
            ["zeros", "border", "reflection"].contains(&padding),
            "unknown padding_mode `{padding}`"
        );
        Ok(Sampler {
            mode: mode.into(),
            padding: padding.into(),
            align: a.int_or("align_corners", 0)? != 0,
        })
    }

    fn borders(&self, len: usize) -> (f64, f64) {
        let l = len as f64;
        if self.align {
            (0.0, l - 1.0)
        } else {
            (-0.5, l - 0.5)
        }
    }

    /// The pixel coordinate of normalised `g` along an axis of `len`.
    fn coord(&self, g: f64, len: usize) -> f64 {
        let l = len as f64;
        let x = if self.align {
            (g + 1.0) / 2.0 * (l - 1.0)
        } else {
            ((g + 1.0) * l - 1.0) / 2.0
        };
        let x = if self.mode == "nearest" {
            x.round_ties_even()
        } else {
            x
        };
        let (lo, hi) = self.borders(len);
        match self.padding.as_str() {
            "border" if x < lo || x > hi => x.clamp(0.0, l - 1.0),
            "reflection" if x < lo || x > hi => reflect(x, lo, hi),
            _ => x,
        }
    }

    /// The index actually read for integer tap `i`, or `None` for a zero.
    fn tap(&self, i: i64, len: usize) -> Option<usize> {
        let last = len as i64 - 1;
        match self.padding.as_str() {
            "zeros" => (0..=last).contains(&i).then_some(i as usize),
            "border" => Some(i.clamp(0, last) as usize),
            _ => {
                let (lo, hi) = self.borders(len);
                Some((reflect(i as f64, lo, hi).trunc() as i64).clamp(0, last) as usize)
            }
        }
    }

    /// Taps (index or zero, weight) along one axis for coordinate `x`.
    fn axis_taps(&self, x: f64, len: usize) -> Vec<(Option<usize>, f64)> {
        let f = x.floor();
        let (first, w): (i64, Vec<f64>) = match self.mode.as_str() {
            "nearest" => (x as i64, vec![1.0]),
            "linear" => (f as i64, vec![1.0 - (x - f), x - f]),
            _ => (f as i64 - 1, keys(x - f).to_vec()),
        };
        w.into_iter()
            .enumerate()
            .map(|(j, c)| (self.tap(first + j as i64, len), c))
            .collect()
    }

    /// Samples one image `x` (spatial shape `dims`) at normalised point `g` (x, y, z order).
    fn sample(&self, x: &[f64], dims: &[usize], g: &[f64]) -> f64 {
        let r = dims.len();
        let taps: Vec<_> = (0..r)
            .map(|d| self.axis_taps(self.coord(g[r - 1 - d], dims[d]), dims[d]))
            .collect();
        let counts: Vec<usize> = taps.iter().map(Vec::len).collect();
        let mut sum = 0.0;
        let mut k = vec![0; r];
        loop {
            let mut off = Some(0usize);
            let mut w = 1.0;
            for d in 0..r {
                let (i, c) = taps[d][k[d]];
                w *= c;
                off = off.zip(i).map(|(o, i)| o * dims[d] + i);
            }
            if let Some(o) = off {
                sum += w * x[o];
            }
            if !next_index(&mut k, &counts) {
                return sum;
            }
        }
    }
}

fn grid_sample_infer(a: &Attrs, ins: &[&TensorType]) -> Result<Vec<TensorType>> {
    arity(ins, 2, 2)?;
    let (x, g) = (ins[0], ins[1]);
    ensure!(
        x.dtype.is_float(),
        "GridSample needs a float input, got {}",
        x.dtype
    );
    ensure!(g.dtype.is_float(), "grid must be float, got {}", g.dtype);
    let r = x.rank().saturating_sub(2);
    ensure!(
        r >= 1,
        "input must be [N, C, spatial...], got {:?}",
        x.shape
    );
    ensure!(
        g.rank() == r + 2 && g.shape[0] == x.shape[0] && g.shape[r + 1] == r,
        "grid must be [{}, spatial..., {r}] for input {:?}, got {:?}",
        x.shape[0],
        x.shape,
        g.shape
    );
    ensure!(
        x.shape[2..].iter().all(|&d| d >= 1),
        "GridSample needs non-empty spatial dims, got {:?}",
        x.shape
    );
    Sampler::new(a)?;
    let mut s = x.shape[..2].to_vec();
    s.extend(&g.shape[1..=r]);
    Ok(vec![TensorType::new(x.dtype, s)])
}

fn grid_sample_eval(a: &Attrs, ins: &[&Tensor]) -> Result<Vec<Tensor>> {
    arity(ins, 2, 2)?;
    let ty = grid_sample_infer(a, &[&ins[0].ty(), &ins[1].ty()])?.remove(0);
    let sm = Sampler::new(a)?;
    let (xs, gs) = (ins[0].shape(), ins[1].shape());
    let r = xs.len() - 2;
    let (x, g) = (ins[0].to_f64_vec(), ins[1].to_f64_vec());
    let img: usize = xs[2..].iter().product();
    let pts: usize = gs[1..=r].iter().product();
    let mut y = Vec::with_capacity(ty.numel());
    for n in 0..xs[0] {
        for c in 0..xs[1] {
            let im = &x[(n * xs[1] + c) * img..][..img];
            for p in 0..pts {
                let gp = &g[(n * pts + p) * r..][..r];
                y.push(sm.sample(im, &xs[2..], gp));
            }
        }
    }
    Ok(vec![Tensor::from_vec(ty.shape, y)?.cast(ty.dtype)])
}

fn affine_infer(a: &Attrs, ins: &[&TensorType]) -> Result<Vec<TensorType>> {
    arity(ins, 1, 1)?;
    let t = ins[0];
    ensure!(t.dtype.is_float(), "theta must be float, got {}", t.dtype);
    let size = a.ints("size")?;
    ensure!(
        (size.len() == 4 || size.len() == 5) && size.iter().all(|&v| v >= 1),
        "size must be [N, C, H, W] or [N, C, D, H, W], got {size:?}"
    );
    let r = size.len() - 2;
    let want = [size[0] as usize, r, r + 1];
    ensure!(
        t.shape == want,
        "theta must have shape {want:?}, got {:?}",
        t.shape
    );
    let mut s: Vec<usize> = std::iter::once(size[0])
        .chain(size[2..].iter().copied())
        .map(|v| v as usize)
        .collect();
    s.push(r);
    Ok(vec![TensorType::new(t.dtype, s)])
}

fn affine_eval(a: &Attrs, ins: &[&Tensor]) -> Result<Vec<Tensor>> {
    arity(ins, 1, 1)?;
    let ty = affine_infer(a, &[&ins[0].ty()])?.remove(0);
    let align = a.int_or("align_corners", 0)? != 0;
    let r = ty.shape.len() - 2;
    let dims = &ty.shape[1..=r];
    let base = |i: usize, l: usize| {
        let (i, l) = (i as f64, l as f64);
        match (align, l <= 1.0) {
            (true, true) => -1.0,
            (true, false) => -1.0 + 2.0 * i / (l - 1.0),
            (false, _) => -1.0 + (2.0 * i + 1.0) / l,
        }
    };
    let theta = ins[0].to_f64_vec();
    let mut y: Vec<f64> = Vec::with_capacity(ty.numel());
    for n in 0..ty.shape[0] {
        let th = &theta[n * r * (r + 1)..][..r * (r + 1)];
        for p in all_indices(dims) {
            // Homogeneous point, innermost axis first: (x, y[, z], 1).
            let mut h: Vec<f64> = (0..r)
                .map(|k| base(p[r - 1 - k], dims[r - 1 - k]))
                .collect();
            h.push(1.0);
            for row in 0..r {
                y.push((0..=r).map(|k| th[row * (r + 1) + k] * h[k]).sum());
            }
        }
    }
    Ok(vec![Tensor::from_vec(ty.shape, y)?.cast(ty.dtype)])
}

pub fn register(r: &mut Registry) {
    r.add(
        "GridSample",
        |a, i, _| grid_sample_infer(a, i),
        |a, i, _| grid_sample_eval(a, i),
    );
    r.add(
        "AffineGrid",
        |a, i, _| affine_infer(a, i),
        |a, i, _| affine_eval(a, i),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_bounces_between_borders() {
        assert_eq!(reflect(-1.5, -0.5, 2.5), 0.5);
        assert_eq!(reflect(3.0, -0.5, 2.5), 2.0);
        assert_eq!(reflect(6.0, -0.5, 2.5), 0.0);
    }
}
