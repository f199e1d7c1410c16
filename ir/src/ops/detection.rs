//! Object detection: `NonMaxSuppression`, whose output shape depends on the
//! values, so Kiln only folds it at import (no registered op):
//! [`non_max_suppression`] computes the selected indices of constant inputs.
//!
//! Semantics (ONNX): boxes `[B, N, 4]`, scores `[B, C, N]`; per batch and class,
//! boxes scoring above `score_threshold` (when given) are taken in descending
//! score order (ties: lower index first) and kept unless their IoU with a kept
//! box exceeds `iou_threshold`, up to `max_output_boxes_per_class` boxes.
//! Output `[K, 3]` int64 rows `(batch, class, box)`.

use crate::{ensure, Result, Tensor};

/// Thresholds and box format of a `NonMaxSuppression`.
#[derive(Clone, Copy, Debug)]
pub struct NmsParams {
    pub max_per_class: i64,
    pub iou_threshold: f64,
    /// `None`: no score filtering.
    pub score_threshold: Option<f64>,
    /// 0: `[y1, x1, y2, x2]` (any corner order); 1: `[xc, yc, w, h]`.
    pub center_point_box: i64,
}

/// `(xmin, xmax, ymin, ymax)` of a box.
fn extent(b: &[f64], center: bool) -> (f64, f64, f64, f64) {
    if center {
        let (hw, hh) = (b[2] / 2.0, b[3] / 2.0);
        (b[0] - hw, b[0] + hw, b[1] - hh, b[1] + hh)
    } else {
        (
            b[1].min(b[3]),
            b[1].max(b[3]),
            b[0].min(b[2]),
            b[0].max(b[2]),
        )
    }
}

/// True when the IoU of two boxes exceeds `thr`.
fn suppresses(a: &[f64], b: &[f64], center: bool, thr: f64) -> bool {
    let (ax0, ax1, ay0, ay1) = extent(a, center);
    let (bx0, bx1, by0, by1) = extent(b, center);
    let (ix0, ix1) = (ax0.max(bx0), ax1.min(bx1));
    let (iy0, iy1) = (ay0.max(by0), ay1.min(by1));
    if ix1 <= ix0 || iy1 <= iy0 {
        return false;
    }
    let inter = (ix1 - ix0) * (iy1 - iy0);
    let area_a = (ax1 - ax0) * (ay1 - ay0);
    let area_b = (bx1 - bx0) * (by1 - by0);
    let union = area_a + area_b - inter;
    if inter <= 0.0 || area_a <= 0.0 || area_b <= 0.0 || union <= 0.0 {
        return false;
    }
    inter / union > thr
}

/// Selected box indices `[K, 3]` (int64) of a `NonMaxSuppression`.
pub fn non_max_suppression(boxes: &Tensor, scores: &Tensor, p: NmsParams) -> Result<Tensor> {
    ensure!(
        boxes.dtype().is_float() && scores.dtype().is_float(),
        "NonMaxSuppression needs float boxes and scores"
    );
    let (bs, ss) = (boxes.shape(), scores.shape());
    ensure!(
        bs.len() == 3 && bs[2] == 4,
        "boxes must have shape [B, N, 4], got {bs:?}"
    );
    ensure!(
        ss.len() == 3 && ss[0] == bs[0] && ss[2] == bs[1],
        "scores must have shape [B, C, N] matching boxes {bs:?}, got {ss:?}"
    );
    ensure!(
        p.center_point_box == 0 || p.center_point_box == 1,
        "center_point_box must be 0 or 1, got {}",
        p.center_point_box
    );
    let (nb, nc, n) = (ss[0], ss[1], ss[2]);
    let (bx, sc) = (boxes.to_f64_vec(), scores.to_f64_vec());
    let max = p.max_per_class.max(0) as usize;
    let center = p.center_point_box == 1;
    let mut out: Vec<i64> = Vec::new();
    for b in 0..nb {
        let boxv = |i: usize| &bx[(b * n + i) * 4..(b * n + i) * 4 + 4];
        for c in 0..nc {
            let s = &sc[(b * nc + c) * n..(b * nc + c + 1) * n];
            let mut cand: Vec<usize> = (0..n)
                .filter(|&i| p.score_threshold.is_none_or(|t| s[i] > t))
                .collect();
            // Stable sort: equal scores keep the lower index first.
            cand.sort_by(|&i, &j| s[j].total_cmp(&s[i]));
            let mut kept: Vec<usize> = Vec::new();
            for i in cand {
                if kept.len() >= max {
                    break;
                }
                if kept
                    .iter()
                    .all(|&k| !suppresses(boxv(i), boxv(k), center, p.iou_threshold))
                {
                    kept.push(i);
                    out.extend([b as i64, c as i64, i as i64]);
                }
            }
        }
    }
    Tensor::from_vec(vec![out.len() / 3, 3], out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suppresses_overlap_keeps_disjoint() {
        let boxes = Tensor::from_vec(
            vec![1, 3, 4],
            vec![0.0f32, 0., 1., 1., 0., 0.1, 1., 1.1, 0., 10., 1., 11.],
        )
        .unwrap();
        let scores = Tensor::from_vec(vec![1, 1, 3], vec![0.9f32, 0.95, 0.3]).unwrap();
        let p = NmsParams {
            max_per_class: 3,
            iou_threshold: 0.5,
            score_threshold: None,
            center_point_box: 0,
        };
        let r = non_max_suppression(&boxes, &scores, p).unwrap();
        assert_eq!(r.to_i64_vec().unwrap(), vec![0, 0, 1, 0, 0, 2]);
        let p = NmsParams {
            score_threshold: Some(0.5),
            ..p
        };
        let r = non_max_suppression(&boxes, &scores, p).unwrap();
        assert_eq!(r.shape(), &[1, 3]);
    }
}
