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
