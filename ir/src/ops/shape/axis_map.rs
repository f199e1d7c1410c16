//! Separable index maps of data-movement ops, for kernels that copy.
//!
//! Slice, Pad (every mode), CenterCropPad, Tile, Expand and Transpose have
//! one property in common: each output axis reads at most one input axis,
//! and the input coordinate on it depends only on the output coordinate on
//! that axis. [`axis_maps`] gives, per output axis, that input axis and a
//! table from output coordinate to input coordinate, `None` meaning "the fill
//! value" (Pad's constant, CenterCropPad's zero). A kernel then computes an
//! element's source as a sum of per-axis offsets, with no division.

use super::slice::{crop_pad_plan, pad_maps, slice_plan};
use super::{expand_shape, tile_shape, transpose_perm};
use crate::{Attrs, Result};

/// Per output axis: the input axis it reads and the coordinate table.
#[derive(Clone, Debug, PartialEq)]
pub struct AxisMaps {
    /// The input axis each output axis reads (`None`: a new broadcast axis;
    /// its coordinate does not move the source).
    pub axis: Vec<Option<usize>>,
    /// For each output axis, the input coordinate of each output coordinate
    /// (`None`: the element is the fill value).
    pub coords: Vec<Vec<Option<usize>>>,
    /// The value of filled elements.
    pub fill: f64,
}

impl AxisMaps {
    /// The output shape.
    pub fn shape(&self) -> Vec<usize> {
        self.coords.iter().map(Vec::len).collect()
    }

    fn same_axes(coords: Vec<Vec<Option<usize>>>, fill: f64) -> AxisMaps {
        AxisMaps {
            axis: (0..coords.len()).map(Some).collect(),
            coords,
            fill,
        }
    }
}

/// The maps of op `kind` with `attrs` over an input of shape `x`; `None`
/// for ops that are not separable movement.
pub fn axis_maps(kind: &str, attrs: &Attrs, x: &[usize]) -> Result<Option<AxisMaps>> {
    let m = match kind {
        "Slice" => {
            let plan = slice_plan(attrs, x)?;
            let coords = plan
                .iter()
                .map(|&(s, step, n)| {
                    (0..n)
                        .map(|o| Some((s + o as i128 * step) as usize))
                        .collect()
                })
                .collect();
            AxisMaps::same_axes(coords, 0.0)
        }
        "Pad" => AxisMaps::same_axes(pad_maps(attrs, x)?, attrs.float_or("constant_value", 0.0)?),
        "CenterCropPad" => {
            let plan = crop_pad_plan(attrs, x)?;
            let coords = plan
                .iter()
                .zip(x)
                .map(|(&(n, shift), &d)| {
                    (0..n as i64)
                        .map(|o| usize::try_from(o + shift).ok().filter(|&c| c < d))
                        .collect()
                })
                .collect();
            AxisMaps::same_axes(coords, 0.0)
        }
        "Tile" => {
            let out = tile_shape(attrs, x)?;
            let coords = out
                .iter()
                .zip(x)
                .map(|(&n, &d)| (0..n).map(|o| Some(o % d)).collect())
                .collect();
            AxisMaps::same_axes(coords, 0.0)
        }
        "Expand" => expand(attrs, x)?,
        "Transpose" => {
            let perm = transpose_perm(attrs, x.len())?;
            AxisMaps {
                axis: perm.iter().map(|&p| Some(p)).collect(),
                coords: perm
                    .iter()
                    .map(|&p| (0..x[p]).map(Some).collect())
                    .collect(),
                fill: 0.0,
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(m))
}

fn expand(attrs: &Attrs, x: &[usize]) -> Result<AxisMaps> {
    let out = expand_shape(attrs, x)?;
    let lead = out.len() - x.len();
    let axis = (0..out.len()).map(|d| d.checked_sub(lead)).collect();
    let coords = out
        .iter()
        .enumerate()
        .map(|(d, &n)| {
            let broadcast = d < lead || x[d - lead] == 1;
            (0..n)
                .map(|o| Some(if broadcast { 0 } else { o }))
                .collect()
        })
        .collect();
    Ok(AxisMaps {
        axis,
        coords,
        fill: 0.0,
    })
}
