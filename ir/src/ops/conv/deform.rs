//! DeformConv(X, W, offset [, B [, mask]]): convolution whose kernel taps are
//! moved by learned offsets and read with bilinear interpolation (zero
//! outside the input), each tap optionally scaled by `mask`.
//!
//! Layout: `X [N, C, D1..Dn]`, `W [M, C/group, k1..kn]`,
//! `offset [N, offset_group*K*n, O1..On]` (per offset group and kernel tap,
//! one displacement per spatial dim, outer dim first), `B [M]`,
//! `mask [N, offset_group*K, O1..On]`, with `K = prod(k)` and `O` the usual
//! convolution output shape. Attributes: `dilations`, `group`,
//! `kernel_shape`, `offset_group` (default 1), `pads`, `strides`. Float
//! types, accumulated in f64.

use super::{all_indices, next_index, window, Window};
use crate::ops::util::arity;
use crate::{ensure, Attrs, Registry, Result, Tensor, TensorType};

struct Shape {
    n: usize,
    c: usize,
    m: usize,
    group: usize,
    og: usize,
    input: Vec<usize>,
    win: Window,
}

fn shape(attrs: &Attrs, ins: &[&TensorType]) -> Result<Shape> {
    arity(ins, 3, 5)?;
    let (x, w, off) = (&ins[0].shape, &ins[1].shape, &ins[2].shape);
    let d = ins[0].dtype;
    ensure!(d.is_float(), "DeformConv needs a float input, got {d}");
    for t in &ins[1..] {
        ensure!(t.dtype == d, "inputs must share dtype {d}, got {}", t.dtype);
    }
    ensure!(
        x.len() >= 3 && w.len() == x.len(),
        "bad shapes X {x:?}, W {w:?}"
    );
    let group = attrs.int_or("group", 1)?.max(0) as usize;
    let og = attrs.int_or("offset_group", 1)?.max(0) as usize;
    ensure!(group >= 1 && og >= 1, "group and offset_group must be >= 1");
    let (c, m) = (x[1], w[0]);
    ensure!(
        w[1] * group == c && m % group == 0 && c % og == 0,
        "channels inconsistent: X {x:?}, W {w:?}, group {group}, offset_group {og}"
    );
    if let Some(ks) = attrs.opt_ints("kernel_shape")? {
        let ws: Vec<i64> = w[2..].iter().map(|&k| k as i64).collect();
        ensure!(
            ks == ws,
            "kernel_shape {ks:?} differs from the weight's {ws:?}"
        );
    }
    let win = window(attrs, &x[2..], &w[2..], false)?;
    let (r, k) = (x.len() - 2, w[2..].iter().product::<usize>());
    let mut want = vec![x[0], og * k * r];
    want.extend(&win.out);
    ensure!(*off == want, "offset must have shape {want:?}, got {off:?}");
    if let Some(b) = ins.get(3) {
        ensure!(
            b.shape == [m],
            "bias must have shape [{m}], got {:?}",
            b.shape
        );
    }
    if let Some(mask) = ins.get(4) {
        want[1] = og * k;
        ensure!(
            mask.shape == want,
            "mask must have shape {want:?}, got {:?}",
            mask.shape
        );
    }
    Ok(Shape {
        n: x[0],
        c,
        m,
        group,
        og,
        input: x[2..].to_vec(),
        win,
    })
}

impl Shape {
    /// Bilinear read of one image at fractional position `p` (zero outside).
    fn bilinear(&self, img: &[f64], p: &[f64]) -> f64 {
        let r = p.len();
        let lo: Vec<f64> = p.iter().map(|v| v.floor()).collect();
        let two = vec![2; r];
        let mut corner = vec![0; r];
        let mut sum = 0.0;
        loop {
            let mut off = Some(0usize);
            let mut w = 1.0;
            for d in 0..r {
                let i = lo[d] + corner[d] as f64;
                w *= 1.0 - (p[d] - i).abs();
                let ok = i >= 0.0 && i < self.input[d] as f64;
                off = off.filter(|_| ok).map(|o| o * self.input[d] + i as usize);
            }
            if let Some(o) = off {
                sum += w * img[o];
            }
            if !next_index(&mut corner, &two) {
                return sum;
            }
        }
    }

    fn run(
        &self,
        x: &[f64],
        w: &[f64],
        off: &[f64],
        b: Option<&[f64]>,
        mask: Option<&[f64]>,
    ) -> Vec<f64> {
        let r = self.input.len();
        let in_sz: usize = self.input.iter().product();
        let out_sz: usize = self.win.out.iter().product();
        let kpos = all_indices(&self.win.kernel);
        let k = kpos.len();
        let (cg, mg, cog) = (self.c / self.group, self.m / self.group, self.c / self.og);
        let mut y = vec![0.0; self.n * self.m * out_sz];
        let mut p = vec![0.0; r];
        for n in 0..self.n {
            for (of, o) in all_indices(&self.win.out).iter().enumerate() {
                for c in 0..self.c {
                    let g = c / cog;
                    let img = &x[(n * self.c + c) * in_sz..][..in_sz];
                    for (kk, kp) in kpos.iter().enumerate() {
                        for d in 0..r {
                            let ch = ((n * self.og + g) * k + kk) * r + d;
                            let base =
                                (o[d] * self.win.strides[d] + kp[d] * self.win.dilations[d]) as f64;
                            p[d] = base - self.win.begin[d] as f64 + off[ch * out_sz + of];
                        }
                        let scale =
                            mask.map_or(1.0, |mk| mk[((n * self.og + g) * k + kk) * out_sz + of]);
                        let v = self.bilinear(img, &p) * scale;
                        let grp = c / cg;
                        for m in grp * mg..(grp + 1) * mg {
                            y[(n * self.m + m) * out_sz + of] += v * w[(m * cg + c % cg) * k + kk];
                        }
                    }
                }
                for m in 0..self.m {
                    y[(n * self.m + m) * out_sz + of] += b.map_or(0.0, |b| b[m]);
                }
            }
        }
        y
    }
}

fn infer(attrs: &Attrs, ins: &[&TensorType]) -> Result<Vec<TensorType>> {
    let s = shape(attrs, ins)?;
    let mut out = vec![s.n, s.m];
    out.extend(&s.win.out);
    Ok(vec![TensorType::new(ins[0].dtype, out)])
}

fn eval(attrs: &Attrs, ins: &[&Tensor]) -> Result<Vec<Tensor>> {
    let tys: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
    let refs: Vec<&TensorType> = tys.iter().collect();
    let ty = infer(attrs, &refs)?.remove(0);
    let s = shape(attrs, &refs)?;
    let v: Vec<Vec<f64>> = ins.iter().map(|t| t.to_f64_vec()).collect();
    let y = s.run(
        &v[0],
        &v[1],
        &v[2],
        v.get(3).map(|b| b.as_slice()),
        v.get(4).map(|m| m.as_slice()),
    );
    Ok(vec![Tensor::from_vec(ty.shape, y)?.cast(ty.dtype)])
}

pub fn register(r: &mut Registry) {
    r.add("DeformConv", |a, i, _| infer(a, i), |a, i, _| eval(a, i));
}
