//! Col2Im(X [N, C*prod(block_shape), L]) -> `[N, C, image_shape...]`: sums
//! sliding blocks back into an image (the inverse layout of im2col).
//!
//! Attributes: `image_shape` and `block_shape` (ONNX inputs, required),
//! `dilations`, `pads`, `strides` (defaults 1 / 0 / 1). `L` must equal the
//! number of block positions, `prod((D + pads - span) / stride + 1)`. Float
//! types, summed in f64.

use super::{all_indices, window};
use crate::ops::util::arity;
use crate::{ensure, Attrs, Registry, Result, Tensor, TensorType};

fn positive(attrs: &Attrs, name: &str) -> Result<Vec<usize>> {
    let v = attrs.ints(name)?;
    ensure!(
        !v.is_empty() && v.iter().all(|&x| x >= 1),
        "`{name}` must be non-empty and positive, got {v:?}"
    );
    Ok(v.iter().map(|&x| x as usize).collect())
}

fn infer(attrs: &Attrs, ins: &[&TensorType]) -> Result<Vec<TensorType>> {
    arity(ins, 1, 1)?;
    let x = ins[0];
    ensure!(
        x.dtype.is_float(),
        "Col2Im needs a float input, got {}",
        x.dtype
    );
    ensure!(
        x.rank() == 3,
        "input must be [N, C*block, L], got {:?}",
        x.shape
    );
    let (image, block) = (
        positive(attrs, "image_shape")?,
        positive(attrs, "block_shape")?,
    );
    let k: usize = block.iter().product();
    ensure!(
        x.shape[1].is_multiple_of(k),
        "input dim 1 ({}) is not divisible by the block size {k}",
        x.shape[1]
    );
    let win = window(attrs, &image, &block, false)?;
    let blocks: usize = win.out.iter().product();
    ensure!(
        x.shape[2] == blocks,
        "input has {} blocks, the geometry gives {:?} = {blocks}",
        x.shape[2],
        win.out
    );
    let mut s = vec![x.shape[0], x.shape[1] / k];
    s.extend(image);
    Ok(vec![TensorType::new(x.dtype, s)])
}

fn eval(attrs: &Attrs, ins: &[&Tensor]) -> Result<Vec<Tensor>> {
    arity(ins, 1, 1)?;
    let ty = infer(attrs, &[&ins[0].ty()])?.remove(0);
    let (image, block) = (
        positive(attrs, "image_shape")?,
        positive(attrs, "block_shape")?,
    );
    let w = window(attrs, &image, &block, false)?;
    let x = ins[0].to_f64_vec();
    let (nc, l) = (ty.shape[0] * ty.shape[1], ins[0].shape()[2]);
    let img: usize = image.iter().product();
    let kpos = all_indices(&block);
    let mut y = vec![0.0; nc * img];
    for (bf, b) in all_indices(&w.out).iter().enumerate() {
        'k: for (kf, k) in kpos.iter().enumerate() {
            let mut off = 0usize;
            for d in 0..b.len() {
                let i =
                    (b[d] * w.strides[d] + k[d] * w.dilations[d]) as isize - w.begin[d] as isize;
                if i < 0 || i >= image[d] as isize {
                    continue 'k;
                }
                off = off * image[d] + i as usize;
            }
            for c in 0..nc {
                y[c * img + off] += x[(c * kpos.len() + kf) * l + bf];
            }
        }
    }
    Ok(vec![Tensor::from_vec(ty.shape, y)?.cast(ty.dtype)])
}

pub fn register(r: &mut Registry) {
    r.add("Col2Im", |a, i, _| infer(a, i), |a, i, _| eval(a, i));
}
