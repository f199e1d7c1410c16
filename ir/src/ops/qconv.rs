//! QLinearConv (a child of the quant family): an N-d grouped convolution of
//! 8-bit operands in exact integer arithmetic, then requantized.
//!
//! Inputs `x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale,
//! y_zero_point[, B]` (`B`: i32 bias per output channel). `w_scale` and
//! `w_zero_point` are scalars or one value per output channel. Attributes as
//! ONNX Conv: `auto_pad` (`NOTSET` | `SAME_UPPER` | `SAME_LOWER` | `VALID`),
//! `dilations`, `group` (1), `kernel_shape`, `pads`, `strides`.
//! `y = saturate(round_half_even(conv * (x_scale * w_scale / y_scale)) + y_zp)`.

use super::{int_range, round_to};
use crate::ops::util::arity;
use crate::{dispatch_dtype, ensure, op_err, Attrs, DType, Elem, Result, Tensor, TensorType};

/// Convolution geometry: spatial input / kernel / output sizes and attributes.
struct Geo {
    n: usize,
    c: usize,
    m: usize,
    group: usize,
    ins: Vec<usize>,
    ks: Vec<usize>,
    outs: Vec<usize>,
    strides: Vec<usize>,
    dil: Vec<usize>,
    pad_begin: Vec<usize>,
}

fn positive(v: Option<Vec<i64>>, n: usize, what: &str) -> Result<Vec<usize>> {
    let v = v.unwrap_or_else(|| vec![1; n]);
    ensure!(
        v.len() == n && v.iter().all(|&x| x > 0),
        "{what} {v:?} must hold {n} positive values"
    );
    Ok(v.into_iter().map(|x| x as usize).collect())
}

fn geometry(attrs: &Attrs, x: &[usize], w: &[usize]) -> Result<Geo> {
    ensure!(
        x.len() >= 3 && w.len() == x.len(),
        "QLinearConv needs x [N, C, ...] and w [M, C/group, ...] of one rank, got {x:?} and {w:?}"
    );
    let sp = x.len() - 2;
    let group = attrs.int_or("group", 1)?;
    ensure!(group > 0, "group must be positive");
    let group = group as usize;
    let (c, m) = (x[1], w[0]);
    ensure!(
        c % group == 0 && m % group == 0 && w[1] * group == c,
        "channels of x {x:?} / w {w:?} do not fit group {group}"
    );
    let ks = w[2..].to_vec();
    ensure!(
        ks.iter().chain(&x[2..]).all(|&d| d > 0),
        "QLinearConv needs non-empty spatial dimensions, got x {x:?}, w {w:?}"
    );
    if let Some(k) = attrs.opt_ints("kernel_shape")? {
        ensure!(
            k.iter().map(|&v| v as usize).eq(ks.iter().copied()),
            "kernel_shape {k:?} differs from w {w:?}"
        );
    }
    let strides = positive(attrs.opt_ints("strides")?, sp, "strides")?;
    let dil = positive(attrs.opt_ints("dilations")?, sp, "dilations")?;
    let ins = x[2..].to_vec();
    let (mut pad_begin, mut outs) = (vec![0; sp], vec![0; sp]);
    let pads = attrs.opt_ints("pads")?.unwrap_or_else(|| vec![0; 2 * sp]);
    ensure!(
        pads.len() == 2 * sp && pads.iter().all(|&p| p >= 0),
        "pads {pads:?} must hold {} non-negative values",
        2 * sp
    );
    let auto = attrs.str_or("auto_pad", "NOTSET")?;
    for i in 0..sp {
        let ek = (ks[i] - 1) * dil[i] + 1;
        let (pb, pe) = match auto {
            "NOTSET" => (pads[i] as usize, pads[i + sp] as usize),
            "VALID" => (0, 0),
            "SAME_UPPER" | "SAME_LOWER" => {
                let out = ins[i].div_ceil(strides[i]);
                let total = ((out - 1) * strides[i] + ek).saturating_sub(ins[i]);
                let small = total / 2;
                if auto == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                }
            }
            a => return Err(op_err!("unknown auto_pad `{a}`")),
        };
        let padded = ins[i] + pb + pe;
        ensure!(
            padded >= ek,
            "kernel {ks:?} is larger than the padded input"
        );
        pad_begin[i] = pb;
        outs[i] = (padded - ek) / strides[i] + 1;
    }
    Ok(Geo {
        n: x[0],
        c,
        m,
        group,
        ins,
        ks,
        outs,
        strides,
        dil,
        pad_begin,
    })
}

pub(super) fn infer(attrs: &Attrs, ins: &[&TensorType]) -> Result<TensorType> {
    arity(ins, 8, 9)?;
    for k in [0, 3] {
        ensure!(
            matches!(ins[k].dtype, DType::I8 | DType::U8),
            "QLinearConv needs int8/uint8 operands, got {}",
            ins[k].dtype
        );
    }
    int_range(ins[7].dtype)?;
    let g = geometry(attrs, &ins[0].shape, &ins[3].shape)?;
    if let Some(b) = ins.get(8) {
        ensure!(
            b.dtype == DType::I32 && b.shape == [g.m],
            "QLinearConv bias must be i32 [{}], got {b}",
            g.m
        );
    }
    let mut s = vec![g.n, g.m];
    s.extend(&g.outs);
    Ok(TensorType::new(ins[7].dtype, s))
}

/// A scalar or per-output-channel parameter, looked up by channel.
fn per_channel(t: &Tensor, m: usize, what: &str) -> Result<Vec<f64>> {
    let v = t.to_f64_vec();
    ensure!(
        v.len() == 1 || (t.rank() == 1 && v.len() == m),
        "QLinearConv {what} must be a scalar or have {m} values, got {:?}",
        t.shape()
    );
    Ok(if v.len() == 1 { vec![v[0]; m] } else { v })
}

fn scalar(t: &Tensor, what: &str) -> Result<f64> {
    let v = t.to_f64_vec();
    ensure!(v.len() == 1, "QLinearConv {what} must be a scalar");
    Ok(v[0])
}

/// The raw integer convolution of zero-point-corrected operands.
fn conv(g: &Geo, x: &[i64], w: &[i64]) -> Vec<i64> {
    let sp = g.ins.len();
    let (cg, mg) = (g.c / g.group, g.m / g.group);
    let in_sz: usize = g.ins.iter().product();
    let k_sz: usize = g.ks.iter().product();
    let out_sz: usize = g.outs.iter().product();
    let ist = crate::strides(&g.ins);
    let mut out = vec![0i64; g.n * g.m * out_sz];
    let mut kpos = vec![0usize; sp];
    for (oi, o) in out.iter_mut().enumerate() {
        let (b, oc, opos) = (oi / (g.m * out_sz), (oi / out_sz) % g.m, oi % out_sz);
        let grp = oc / mg;
        let mut acc = 0i64;
        for ci in 0..cg {
            let ch = grp * cg + ci;
            for k in 0..k_sz {
                let mut off = 0usize;
                let mut inside = true;
                let mut rem_k = k;
                let mut rem_o = opos;
                for d in (0..sp).rev() {
                    kpos[d] = rem_k % g.ks[d];
                    rem_k /= g.ks[d];
                    let od = rem_o % g.outs[d];
                    rem_o /= g.outs[d];
                    let p = (od * g.strides[d] + kpos[d] * g.dil[d]) as i64 - g.pad_begin[d] as i64;
                    if p < 0 || p as usize >= g.ins[d] {
                        inside = false;
                        break;
                    }
                    off += p as usize * ist[d];
                }
                if inside {
                    let xv = x[(b * g.c + ch) * in_sz + off];
                    let wv = w[(oc * cg + ci) * k_sz + k];
                    acc = acc.wrapping_add(xv.wrapping_mul(wv));
                }
            }
        }
        *o = acc;
    }
    out
}

pub(super) fn eval(attrs: &Attrs, ins: &[&Tensor]) -> Result<Tensor> {
    let tys: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
    let ty = infer(attrs, &tys.iter().collect::<Vec<_>>())?;
    let g = geometry(attrs, ins[0].shape(), ins[3].shape())?;
    let xzp = scalar(ins[2], "x_zero_point")? as i64;
    let wzp = per_channel(ins[5], g.m, "w_zero_point")?;
    let wsc = per_channel(ins[4], g.m, "w_scale")?;
    let (xsc, ysc) = (scalar(ins[1], "x_scale")?, scalar(ins[6], "y_scale")?);
    let yzp = scalar(ins[7], "y_zero_point")?;
    let x: Vec<i64> = ins[0].to_i64_vec()?.iter().map(|v| v - xzp).collect();
    let per_m = ins[3].len() / g.m.max(1);
    let w: Vec<i64> = ins[3]
        .to_i64_vec()?
        .iter()
        .enumerate()
        .map(|(i, v)| v - wzp[i / per_m.max(1)] as i64)
        .collect();
    let bias = match ins.get(8) {
        Some(b) => b.to_i64_vec()?,
        None => vec![0; g.m],
    };
    let raw = conv(&g, &x, &w);
    let out_sz: usize = g.outs.iter().product();
    let sd = ins[1].dtype();
    let (lo, hi) = int_range(ty.dtype)?;
    let y: Vec<f64> = raw
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let oc = (i / out_sz) % g.m;
            let acc = v.wrapping_add(bias[oc]) as i32 as f64;
            let mult = round_to(sd, round_to(sd, xsc * wsc[oc]) / ysc);
            (acc * mult + yzp).clamp(lo, hi).round_ties_even()
        })
        .collect();
    Ok(
        dispatch_dtype!(ty.dtype, T => Tensor::from_vec(ty.shape, y.into_iter().map(T::from_f64).collect::<Vec<T>>())?),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Attr;

    /// 3x3 ones, 2x2 ones kernel, SAME_UPPER: sums of the 2x2 windows that
    /// stay inside the (bottom/right padded) input.
    #[test]
    fn same_upper_padding() {
        let x = Tensor::from_vec(vec![1, 1, 3, 3], vec![1u8; 9]).unwrap();
        let w = Tensor::from_vec(vec![1, 1, 2, 2], vec![1u8; 4]).unwrap();
        let one = Tensor::scalar(1f32);
        let zero = Tensor::scalar(0u8);
        let attrs = Attrs::new().with("auto_pad", Attr::Str("SAME_UPPER".into()));
        let y = eval(&attrs, &[&x, &one, &zero, &w, &one, &zero, &one, &zero]).unwrap();
        assert_eq!(y.shape(), &[1, 1, 3, 3]);
        assert_eq!(y.as_slice::<u8>().unwrap(), &[4, 4, 2, 4, 4, 2, 2, 2, 1]);
    }
}
