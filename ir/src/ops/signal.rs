//! Signal processing (a child of the misc family): DFT, STFT, MelWeightMatrix.
//! Naive O(n^2) transforms in f64, following the ONNX reference.
//!
//! - `DFT(x)`: `x` is `[..., n, 1]` (real) or `[..., n, 2]` (complex).
//!   Attributes `axis` (int, the transformed axis, not the last one),
//!   `dft_length` (int, optional: pad / truncate to it), `inverse`, `onesided`
//!   (int, 0). Forward output `[..., L, 2]` (`L = dft_length`, or `L/2 + 1`
//!   when one-sided). Inverse one-sided is `irfft`: output `[..., L, 1]`.
//! - `STFT(signal[, window])`: `signal` `[batch, len, 1|2]`, attributes
//!   `frame_step`, `frame_length` (int), `onesided` (int, 1). Output
//!   `[batch, frames, bins, 2]`, `frames = 1 + (len - frame_length) / step`.
//! - `MelWeightMatrix()`: no inputs; attributes `num_mel_bins`, `dft_length`,
//!   `sample_rate` (int), `lower_edge_hertz`, `upper_edge_hertz` (float),
//!   `output_datatype` (dtype, f32), `edge_dtype` (dtype the edges were
//!   given in, f32). Output `[dft_length / 2 + 1, num_mel_bins]`.

use crate::ops::util::{arity, norm_axis};
use crate::{ensure, Attrs, DType, Elem, Registry, Result, Tensor, TensorType};
use std::f64::consts::PI;

/// Complex DFT of `x` (length n) to `len` bins (`x` padded / truncated to `len`).
fn dft1(x: &[(f64, f64)], len: usize, inverse: bool) -> Vec<(f64, f64)> {
    let sign = if inverse { 1.0 } else { -1.0 };
    (0..len)
        .map(|k| {
            let (mut re, mut im) = (0.0, 0.0);
            for (t, &(a, b)) in x.iter().enumerate().take(len) {
                let ang = sign * 2.0 * PI * ((k * t) % len) as f64 / len as f64;
                let (s, c) = ang.sin_cos();
                re += a * c - b * s;
                im += a * s + b * c;
            }
            if inverse {
                (re / len as f64, im / len as f64)
            } else {
                (re, im)
            }
        })
        .collect()
}

/// numpy `irfft`: one-sided spectrum to `n` real samples.
fn irfft(x: &[(f64, f64)], n: usize) -> Vec<f64> {
    let get = |k: usize| x.get(k).copied().unwrap_or((0.0, 0.0));
    let full: Vec<(f64, f64)> = (0..n)
        .map(|k| {
            if k == 0 || (n.is_multiple_of(2) && k == n / 2) {
                (get(k).0, 0.0)
            } else if k <= n / 2 {
                get(k)
            } else {
                let (a, b) = get(n - k);
                (a, -b)
            }
        })
        .collect();
    dft1(&full, n, true).into_iter().map(|c| c.0).collect()
}

struct DftCfg {
    axis: usize,
    n_in: usize,
    len: usize,
    out_len: usize,
    inverse: bool,
    onesided: bool,
}

fn dft_cfg(attrs: &Attrs, x: &TensorType) -> Result<DftCfg> {
    let r = x.rank();
    ensure!(
        r >= 2 && matches!(x.shape[r - 1], 1 | 2),
        "DFT input must end in a dimension of 1 (real) or 2 (complex), got {x}"
    );
    ensure!(
        x.dtype.is_float(),
        "DFT needs a float input, got {}",
        x.dtype
    );
    let axis = norm_axis(attrs.int_or("axis", 1)?, r)?;
    ensure!(
        axis != r - 1,
        "DFT axis cannot be the last (complex) dimension"
    );
    let inverse = attrs.int_or("inverse", 0)? != 0;
    let onesided = attrs.int_or("onesided", 0)? != 0;
    let n_in = x.shape[axis];
    let len = match attrs.opt_int("dft_length")? {
        Some(l) => {
            ensure!(l > 0, "dft_length must be positive, got {l}");
            l as usize
        }
        None if inverse && onesided => 2 * n_in.saturating_sub(1),
        None => n_in,
    };
    ensure!(len > 0, "DFT length is 0");
    let out_len = if onesided && !inverse {
        len / 2 + 1
    } else {
        len
    };
    Ok(DftCfg {
        axis,
        n_in,
        len,
        out_len,
        inverse,
        onesided,
    })
}

fn dft_infer(attrs: &Attrs, x: &TensorType) -> Result<TensorType> {
    let c = dft_cfg(attrs, x)?;
    let mut s = x.shape.clone();
    s[c.axis] = c.out_len;
    let r = s.len();
    s[r - 1] = if c.inverse && c.onesided { 1 } else { 2 };
    Ok(TensorType::new(x.dtype, s))
}

fn dft_eval(attrs: &Attrs, x: &Tensor) -> Result<Tensor> {
    let ty = dft_infer(attrs, &x.ty())?;
    let c = dft_cfg(attrs, &x.ty())?;
    let v = x.to_f64_vec();
    let sh = x.shape();
    let comp = sh[sh.len() - 1];
    let outer: usize = sh[..c.axis].iter().product();
    let inner: usize = sh[c.axis + 1..sh.len() - 1].iter().product();
    let oc = ty.shape[ty.rank() - 1];
    let mut out = vec![0.0; ty.numel()];
    for o in 0..outer {
        for i in 0..inner {
            let sig: Vec<(f64, f64)> = (0..c.n_in)
                .map(|t| {
                    let base = ((o * c.n_in + t) * inner + i) * comp;
                    (v[base], if comp == 2 { v[base + 1] } else { 0.0 })
                })
                .collect();
            let at = |k: usize| ((o * c.out_len + k) * inner + i) * oc;
            if c.inverse && c.onesided {
                for (k, r) in irfft(&sig, c.len).into_iter().enumerate() {
                    out[at(k)] = r;
                }
            } else {
                let res = dft1(&sig, c.len, c.inverse);
                for (k, (re, im)) in res.into_iter().take(c.out_len).enumerate() {
                    out[at(k)] = re;
                    out[at(k) + 1] = im;
                }
            }
        }
    }
    Ok(Tensor::from_vec(ty.shape, out)?.cast(ty.dtype))
}

fn stft_infer(attrs: &Attrs, ins: &[&TensorType]) -> Result<TensorType> {
    arity(ins, 1, 2)?;
    let x = ins[0];
    ensure!(
        x.rank() == 3 && matches!(x.shape[2], 1 | 2) && x.dtype.is_float(),
        "STFT signal must be float [batch, length, 1|2], got {x}"
    );
    let step = attrs.int("frame_step")?;
    let fl = attrs.int("frame_length")?;
    ensure!(
        step > 0 && fl > 0,
        "STFT frame_step and frame_length must be positive"
    );
    let (step, fl) = (step as usize, fl as usize);
    ensure!(
        fl <= x.shape[1],
        "STFT frame_length {fl} exceeds the signal length"
    );
    if let Some(w) = ins.get(1) {
        ensure!(
            w.shape == [fl] && w.dtype == x.dtype,
            "STFT window must be {} [{fl}], got {w}",
            x.dtype
        );
    }
    let frames = 1 + (x.shape[1] - fl) / step;
    let bins = if attrs.int_or("onesided", 1)? != 0 {
        fl / 2 + 1
    } else {
        fl
    };
    Ok(TensorType::new(x.dtype, vec![x.shape[0], frames, bins, 2]))
}

fn stft_eval(attrs: &Attrs, ins: &[&Tensor]) -> Result<Tensor> {
    let tys: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
    let ty = stft_infer(attrs, &tys.iter().collect::<Vec<_>>())?;
    let (step, fl) = (
        attrs.int("frame_step")? as usize,
        attrs.int("frame_length")? as usize,
    );
    let x = ins[0].to_f64_vec();
    let (len, comp) = (ins[0].shape()[1], ins[0].shape()[2]);
    let w = ins.get(1).map_or_else(|| vec![1.0; fl], |t| t.to_f64_vec());
    let (frames, bins) = (ty.shape[1], ty.shape[2]);
    let mut out = Vec::with_capacity(ty.numel());
    for b in 0..ty.shape[0] {
        for f in 0..frames {
            let sig: Vec<(f64, f64)> = (0..fl)
                .map(|n| {
                    let base = (b * len + f * step + n) * comp;
                    let im = if comp == 2 { x[base + 1] } else { 0.0 };
                    (x[base] * w[n], im * w[n])
                })
                .collect();
            for (re, im) in dft1(&sig, fl, false).into_iter().take(bins) {
                out.push(re);
                out.push(im);
            }
        }
    }
    Ok(Tensor::from_vec(ty.shape, out)?.cast(ty.dtype))
}

fn mel_type(attrs: &Attrs) -> Result<TensorType> {
    let bins = attrs.int("num_mel_bins")?;
    let n = attrs.int("dft_length")?;
    ensure!(
        bins > 0 && n > 0,
        "num_mel_bins and dft_length must be positive"
    );
    ensure!(
        attrs.int("sample_rate")? > 0,
        "sample_rate must be positive"
    );
    let d = attrs.opt_dtype("output_datatype")?.unwrap_or(DType::F32);
    Ok(TensorType::new(d, vec![n as usize / 2 + 1, bins as usize]))
}

fn mel(attrs: &Attrs) -> Result<Tensor> {
    let ty = mel_type(attrs)?;
    let (spec, bins) = (ty.shape[0], ty.shape[1]);
    let n = attrs.int("dft_length")? as f64;
    let sr = attrs.int("sample_rate")? as f64;
    let ed = attrs.opt_dtype("edge_dtype")?.unwrap_or(DType::F32);
    let round = |v: f64| crate::dispatch_float!(ed, T => T::from_f64(v).to_f64(), _ => v);
    let to_mel = |hz: f64| round(2595.0 * round(round(1.0 + round(hz / 700.0)).log10()));
    let lo = to_mel(attrs.float("lower_edge_hertz")?);
    let hi = to_mel(attrs.float("upper_edge_hertz")?);
    let step = round((hi - lo) / (bins + 2) as f64);
    let fb: Vec<i64> = (0..bins + 2)
        .map(|i| {
            let m = i as f64 * step + lo;
            let hz = 700.0 * (10f64.powf(m / 2595.0) - 1.0);
            ((n + 1.0) * hz / sr).floor() as i64
        })
        .collect();
    let mut out = vec![0.0; spec * bins];
    let mut set = |j: i64, i: usize, v: f64| -> Result<()> {
        ensure!(
            j >= 0 && (j as usize) < spec,
            "mel filter edge {j} is outside the spectrum (0..{spec})"
        );
        out[j as usize * bins + i] = v;
        Ok(())
    };
    for i in 0..bins {
        let (l, c, h) = (fb[i], fb[i + 1], fb[i + 2]);
        if c == l {
            set(c, i, 1.0)?;
        } else {
            for j in l..=c {
                set(j, i, (j - l) as f64 / (c - l) as f64)?;
            }
        }
        if h > c {
            for j in c..h {
                set(j, i, (h - j) as f64 / (h - c) as f64)?;
            }
        }
    }
    Ok(Tensor::from_vec(ty.shape, out)?.cast(ty.dtype))
}

pub fn register(r: &mut Registry) {
    r.add(
        "DFT",
        |a, ins, _| {
            arity(ins, 1, 1)?;
            Ok(vec![dft_infer(a, ins[0])?])
        },
        |a, ins, _| {
            arity(ins, 1, 1)?;
            Ok(vec![dft_eval(a, ins[0])?])
        },
    );
    r.add(
        "STFT",
        |a, ins, _| Ok(vec![stft_infer(a, ins)?]),
        |a, ins, _| Ok(vec![stft_eval(a, ins)?]),
    );
    r.add(
        "MelWeightMatrix",
        |a, ins, _| {
            arity(ins, 0, 0)?;
            Ok(vec![mel_type(a)?])
        },
        |a, ins, _| {
            arity(ins, 0, 0)?;
            Ok(vec![mel(a)?])
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irfft_inverts_rfft() {
        let x = [(1.0, 0.0), (2.0, 0.0), (-1.0, 0.0), (0.5, 0.0)];
        let spec: Vec<_> = dft1(&x, 4, false).into_iter().take(3).collect();
        let back = irfft(&spec, 4);
        for (a, b) in back.iter().zip(&x) {
            assert!((a - b.0).abs() < 1e-12);
        }
    }
}
