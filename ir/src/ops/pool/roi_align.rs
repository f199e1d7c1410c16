//! RoiAlign(X [N, C, H, W], rois [R, 4], batch_indices [R]) -> `[R, C,
//! output_height, output_width]`: pools each region of interest
//! `(x1, y1, x2, y2)` (scaled by `spatial_scale`) of image `batch_indices[r]`
//! over a grid of bins, each averaging (or taking the max of) bilinear
//! samples on a `sampling_ratio` x `sampling_ratio` sub-grid (0: adaptive,
//! `ceil(roi size / bins)`). Follows onnxruntime, including its `max` mode
//! (the max over samples of the largest weighted corner).
//!
//! Attributes: `coordinate_transformation_mode` (`half_pixel`, default, shifts
//! roi corners by -0.5; `output_half_pixel` does not and makes rois at least
//! 1x1), `mode` (`avg` default, `max`), `output_height`, `output_width`
//! (default 1), `sampling_ratio` (0), `spatial_scale` (1.0). Float types.

use crate::ops::util::arity;
use crate::{ensure, op_err, Attrs, DType, Registry, Result, Tensor, TensorType};

struct Cfg {
    half_pixel: bool,
    max: bool,
    oh: usize,
    ow: usize,
    ratio: usize,
    scale: f64,
}

fn cfg(a: &Attrs) -> Result<Cfg> {
    let half_pixel = match a.str_or("coordinate_transformation_mode", "half_pixel")? {
        "half_pixel" => true,
        "output_half_pixel" => false,
        m => return Err(op_err!("unknown coordinate_transformation_mode `{m}`")),
    };
    let max = match a.str_or("mode", "avg")? {
        "avg" => false,
        "max" => true,
        m => return Err(op_err!("unknown RoiAlign mode `{m}`")),
    };
    let (oh, ow) = (a.int_or("output_height", 1)?, a.int_or("output_width", 1)?);
    let ratio = a.int_or("sampling_ratio", 0)?;
    ensure!(
        oh >= 1 && ow >= 1,
        "output sizes must be >= 1, got {oh}x{ow}"
    );
    ensure!(ratio >= 0, "sampling_ratio must be >= 0, got {ratio}");
    Ok(Cfg {
        half_pixel,
        max,
        oh: oh as usize,
        ow: ow as usize,
        ratio: ratio as usize,
        scale: a.float_or("spatial_scale", 1.0)?,
    })
}

fn infer(a: &Attrs, ins: &[&TensorType]) -> Result<Vec<TensorType>> {
    arity(ins, 3, 3)?;
    let (x, rois, bi) = (ins[0], ins[1], ins[2]);
    ensure!(
        x.dtype.is_float() && rois.dtype == x.dtype,
        "X and rois must share a float type"
    );
    ensure!(
        bi.dtype.is_int(),
        "batch_indices must be integers, got {}",
        bi.dtype
    );
    ensure!(
        x.rank() == 4 && x.shape[2] >= 1 && x.shape[3] >= 1,
        "X must be [N, C, H, W] with H, W >= 1, got {:?}",
        x.shape
    );
    let r = bi.shape.first().copied().unwrap_or(0);
    ensure!(
        bi.shape == [r] && rois.shape == [r, 4],
        "rois must be [R, 4] and batch_indices [R]"
    );
    let c = cfg(a)?;
    Ok(vec![TensorType::new(
        x.dtype,
        vec![r, x.shape[1], c.oh, c.ow],
    )])
}

/// The four (flat index, weight) corners of a bilinear sample, or none
/// outside the image (onnxruntime's clamping rules).
fn corners(y: f64, x: f64, h: usize, w: usize) -> Option<[(usize, f64); 4]> {
    if y < -1.0 || y > h as f64 || x < -1.0 || x > w as f64 {
        return None;
    }
    let axis = |v: f64, n: usize| {
        let v = v.max(0.0);
        let lo = v as usize;
        if lo >= n - 1 {
            (n - 1, n - 1, 0.0)
        } else {
            (lo, lo + 1, v - lo as f64)
        }
    };
    let ((y0, y1, ly), (x0, x1, lx)) = (axis(y, h), axis(x, w));
    let (hy, hx) = (1.0 - ly, 1.0 - lx);
    Some([
        (y0 * w + x0, hy * hx),
        (y0 * w + x1, hy * lx),
        (y1 * w + x0, ly * hx),
        (y1 * w + x1, ly * lx),
    ])
}

fn eval(a: &Attrs, ins: &[&Tensor]) -> Result<Vec<Tensor>> {
    arity(ins, 3, 3)?;
    let ty = infer(a, &[&ins[0].ty(), &ins[1].ty(), &ins[2].ty()])?.remove(0);
    let c = cfg(a)?;
    let (n, ch, h, w) = (
        ins[0].shape()[0],
        ins[0].shape()[1],
        ins[0].shape()[2],
        ins[0].shape()[3],
    );
    let (x, rois) = (ins[0].to_f64_vec(), ins[1].to_f64_vec());
    let bi = ins[2].cast(DType::I64).to_i64_vec()?;
    let mut y = Vec::with_capacity(ty.numel());
    for (r, &b) in bi.iter().enumerate() {
        ensure!(
            b >= 0 && (b as usize) < n,
            "batch index {b} is out of range for {n} images"
        );
        let off = if c.half_pixel { 0.5 } else { 0.0 };
        let roi: Vec<f64> = rois[r * 4..r * 4 + 4]
            .iter()
            .map(|v| v * c.scale - off)
            .collect();
        let (mut rw, mut rh) = (roi[2] - roi[0], roi[3] - roi[1]);
        if !c.half_pixel {
            (rw, rh) = (rw.max(1.0), rh.max(1.0));
        }
        let (bh, bw) = (rh / c.oh as f64, rw / c.ow as f64);
        let gh = if c.ratio > 0 {
            c.ratio
        } else {
            bh.ceil().max(0.0) as usize
        };
        let gw = if c.ratio > 0 {
            c.ratio
        } else {
            bw.ceil().max(0.0) as usize
        };
        let count = (gh * gw).max(1) as f64;
        for k in 0..ch {
            let img = &x[(b as usize * ch + k) * h * w..][..h * w];
            for ph in 0..c.oh {
                for pw in 0..c.ow {
                    let mut acc: Option<f64> = None;
                    for iy in 0..gh {
                        let yy = roi[1] + ph as f64 * bh + (iy as f64 + 0.5) * bh / gh as f64;
                        for ix in 0..gw {
                            let xx = roi[0] + pw as f64 * bw + (ix as f64 + 0.5) * bw / gw as f64;
                            let pts = corners(yy, xx, h, w).unwrap_or([(0, 0.0); 4]);
                            let v = if c.max {
                                pts.iter()
                                    .map(|&(i, wt)| wt * img[i])
                                    .fold(f64::NEG_INFINITY, f64::max)
                            } else {
                                pts.iter().map(|&(i, wt)| wt * img[i]).sum()
                            };
                            acc = Some(match acc {
                                None => v,
                                Some(a) if c.max => a.max(v),
                                Some(a) => a + v,
                            });
                        }
                    }
                    let v = acc.unwrap_or(0.0);
                    y.push(if c.max { v } else { v / count });
                }
            }
        }
    }
    Ok(vec![Tensor::from_vec(ty.shape, y)?.cast(ty.dtype)])
}

pub fn register(r: &mut Registry) {
    r.add("RoiAlign", |a, i, _| infer(a, i), |a, i, _| eval(a, i));
}
