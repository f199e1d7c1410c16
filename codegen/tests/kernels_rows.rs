//! Softmax and layer norm against f64 references, the vector exp's range, and checks.

mod kernels_util;

use kernels_util::*;
use kiln_codegen::cpu::kernels::*;

#[test]
fn rows_match_reference() {
    check_rows(&mut Rng::new(4));
}

#[test]
fn softmax_handles_extremes() {
    // Large spreads exercise exp's clamping: -inf-like inputs underflow to 0.
    let x = [
        0.0f32, -200.0, 80.0, 88.0, -1e30, 1e-30, 3.0, 87.5, -87.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0,
        11.0, 12.0,
    ];
    let mut y = [0f32; 17];
    softmax_rows_f32(&x, &mut y, 1, 17, 1).unwrap();
    let want = softmax_ref(&x, 17);
    assert_close("softmax extremes", &y, &want, &[0.0; 17]);
}

#[test]
fn softmax_masked_rows_and_nan() {
    // Attention masks add -3.4e38: those lanes are exactly 0, the rest a softmax.
    let mut x = vec![-3.4e38f32; 20];
    x[..12]
        .iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v = i as f32 * 0.1);
    let mut y = vec![0f32; 20];
    softmax_rows_f32(&x, &mut y, 1, 20, 1).unwrap();
    assert!(y[12..].iter().all(|&v| v == 0.0));
    assert_close("masked softmax", &y, &softmax_ref(&x, 20), &[0.0; 20]);
    // A NaN input makes its row NaN, never a finite value.
    x[3] = f32::NAN;
    softmax_rows_f32(&x, &mut y, 1, 20, 1).unwrap();
    assert!(y[..12].iter().all(|v| v.is_nan()), "{y:?}");
}

#[test]
fn rows_reject_bad_arguments() {
    let (x, mut y) = (vec![1.0; 12], vec![0.0; 12]);
    assert!(softmax_rows_f32(&x, &mut y, 3, 4, 0).is_err());
    assert!(softmax_rows_f32(&x[..11], &mut y, 3, 4, 1).is_err());
    assert!(softmax_rows_f32(&x, &mut y[..11], 3, 4, 1).is_err());
    let g = [1.0; 4];
    assert!(layer_norm_rows_f32(&x, &g, None, 1e-5, &mut y, 3, 4, 1).is_ok());
    assert!(layer_norm_rows_f32(&x, &g[..3], None, 1e-5, &mut y, 3, 4, 1).is_err());
    assert!(layer_norm_rows_f32(&x, &g, Some(&g[..3]), 1e-5, &mut y, 3, 4, 1).is_err());
    assert!(layer_norm_rows_f32(&x, &g, None, 1e-5, &mut y[..8], 3, 4, 1).is_err());
    assert!(softmax_rows_f32(&x, &mut y, usize::MAX, 2, 1).is_err());
}

#[test]
fn row_means_match_reference() {
    let mut rng = Rng::new(9);
    for (rows, cols) in [
        (1, 1),
        (3, 15),
        (5, 16),
        (7, 49),
        (40, 64),
        (9, 200),
        (1280, 49),
    ] {
        let x = rng.vec(rows * cols);
        let want: Vec<f64> = x
            .chunks(cols)
            .map(|r| r.iter().map(|&v| v as f64).sum::<f64>() / cols as f64)
            .collect();
        let scale: Vec<f64> = x
            .chunks(cols)
            .map(|r| r.iter().map(|v| v.abs() as f64).sum::<f64>() / cols as f64)
            .collect();
        for threads in [1, 2, 3] {
            let mut y = vec![f32::NAN; rows];
            mean_rows_f32(&x, &mut y, rows, cols, threads).unwrap();
            assert_close(&format!("mean {rows}x{cols} t{threads}"), &y, &want, &scale);
        }
    }
}

#[test]
fn row_means_reject_bad_arguments() {
    let (x, mut y) = (vec![1.0; 12], vec![0.0; 3]);
    assert!(mean_rows_f32(&x, &mut y, 3, 4, 1).is_ok());
    assert!(mean_rows_f32(&x, &mut y, 3, 4, 0).is_err());
    assert!(mean_rows_f32(&x[..11], &mut y, 3, 4, 1).is_err());
    assert!(mean_rows_f32(&x, &mut y[..2], 3, 4, 1).is_err());
    assert!(mean_rows_f32(&x, &mut y, 3, 0, 1).is_err());
    assert!(mean_rows_f32(&x, &mut y, usize::MAX, 2, 1).is_err());
}
