//! Softmax / LogSoftmax along any axis against an f64 reference: last axis
//! and strided axes, widths around the 16-lane vector, 1-3 threads, the
//! AVX-512 path and then the portable one (one test: the switch is global).

use kiln_codegen::cpu::kernels::{force_portable, softmax_axis_f32, AxisShape, SoftmaxKind};

fn reference(x: &[f32], s: AxisShape, kind: SoftmaxKind) -> Vec<f64> {
    let mut y = vec![0f64; x.len()];
    for o in 0..s.outer {
        for j in 0..s.inner {
            let at = |i: usize| x[(o * s.len + i) * s.inner + j] as f64;
            let max = (0..s.len).map(at).fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = (0..s.len).map(|i| (at(i) - max).exp()).sum();
            for i in 0..s.len {
                y[(o * s.len + i) * s.inner + j] = match kind {
                    SoftmaxKind::Softmax => (at(i) - max).exp() / sum,
                    SoftmaxKind::LogSoftmax => at(i) - max - sum.ln(),
                };
            }
        }
    }
    y
}

fn check_all() {
    let shapes = [
        (1, 7, 1),
        (3, 33, 1),
        (2, 1000, 1),
        (2, 5, 16),
        (3, 4, 17),
        (1, 9, 49),
        (4, 1, 5),
        (2, 64, 3),
    ];
    for (outer, len, inner) in shapes {
        let s = AxisShape { outer, len, inner };
        let n = outer * len * inner;
        let x: Vec<f32> = (0..n)
            .map(|i| ((i as f32) * 0.61).sin() * 6.0 + 0.3)
            .collect();
        for kind in [SoftmaxKind::Softmax, SoftmaxKind::LogSoftmax] {
            let want = reference(&x, s, kind);
            for threads in [1, 2, 3] {
                let mut y = vec![f32::NAN; n];
                softmax_axis_f32(&x, &mut y, s, kind, threads).unwrap();
                for (i, (&a, &b)) in y.iter().zip(&want).enumerate() {
                    let err = (a as f64 - b).abs();
                    assert!(
                        err <= 2e-6 * b.abs().max(1.0),
                        "{s:?} {kind:?} [{i}]: {a} vs {b}"
                    );
                }
            }
        }
    }
}

#[test]
fn softmax_along_any_axis_matches_f64_on_every_path() {
    check_all();
    force_portable(true);
    check_all();
    force_portable(false);
    // Bad arguments are errors, not panics.
    let s = AxisShape {
        outer: 2,
        len: 3,
        inner: 4,
    };
    let mut y = vec![0f32; 24];
    assert!(softmax_axis_f32(&[0.0; 23], &mut y, s, SoftmaxKind::Softmax, 1).is_err());
    assert!(softmax_axis_f32(&[0.0; 24], &mut y[..20], s, SoftmaxKind::Softmax, 1).is_err());
    assert!(softmax_axis_f32(&[0.0; 24], &mut y, s, SoftmaxKind::Softmax, 0).is_err());
}
