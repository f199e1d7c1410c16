//! im2col for one (batch, group): row `(ci·kh + ky)·kw + kx` of the column matrix
//! holds, for every output pixel, the input value under that kernel tap (0 in the
//! padding). Rows are independent, so threads split them.

use super::conv::Conv2dDesc;
use super::par::{split, tasks_for, SendPtr};

/// Column-matrix elements one extra task must have (the copy is cheap per element).
const PAR_MIN_ELEMS: usize = 64 * 1024;

/// Fills `col` (c_in/groups·kh·kw rows × out_h·out_w) from `x` (c_in/groups channels, h×w).
pub(crate) fn fill(d: &Conv2dDesc, x: &[f32], col: &mut [f32], threads: usize) {
    let ohw = d.out_h() * d.out_w();
    let rows = d.c_in / d.groups * d.kh * d.kw;
    let tasks = tasks_for(threads, rows * ohw / PAR_MIN_ELEMS * super::PAR_MIN_FLOPS);
    let ptr = SendPtr(col.as_mut_ptr());
    split(rows, tasks, |range| {
        for r in range {
            // SAFETY: row r of `col` is written by this task only.
            let dst = unsafe { std::slice::from_raw_parts_mut(ptr.get().add(r * ohw), ohw) };
            fill_row(d, x, r, dst);
        }
    });
}

/// Row `r` of the column matrix.
fn fill_row(d: &Conv2dDesc, x: &[f32], r: usize, dst: &mut [f32]) {
    let (ow, sw) = (d.out_w(), d.stride_w);
    let (ci, ky, kx) = (r / (d.kh * d.kw), (r / d.kw) % d.kh, r % d.kw);
    let chan = &x[ci * d.h * d.w..][..d.h * d.w];
    // Output columns whose input column lies inside the image: lo..hi.
    let shift = kx * d.dilation_w; // ix = ox·sw + shift − pad_left
    let lo = d.pad_left.saturating_sub(shift).div_ceil(sw).min(ow);
    let hi = (d.w + d.pad_left)
        .saturating_sub(shift)
        .div_ceil(sw)
        .clamp(lo, ow);
    for (oy, out) in dst.chunks_exact_mut(ow).enumerate() {
        let iy = (oy * d.stride_h + ky * d.dilation_h).wrapping_sub(d.pad_top);
        if iy >= d.h {
            out.fill(0.0);
            continue;
        }
        let src = &chan[iy * d.w..][..d.w];
        out[..lo].fill(0.0);
        out[hi..].fill(0.0);
        if lo == hi {
            continue;
        }
        let first = lo * sw + shift - d.pad_left;
        if sw == 1 {
            out[lo..hi].copy_from_slice(&src[first..first + hi - lo]);
        } else {
            for (o, s) in out[lo..hi].iter_mut().zip(src[first..].iter().step_by(sw)) {
                *o = *s;
            }
        }
    }
}
