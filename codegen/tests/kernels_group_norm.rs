//! Group and instance normalization against an f64 reference, AVX-512 path
//! then portable path (one test: the switch is global), 1-3 threads.

use kiln_codegen::cpu::kernels::{force_portable, group_norm_f32, GroupNormDesc};

fn reference(x: &[f32], s: &[f32], b: &[f32], d: GroupNormDesc) -> Vec<f64> {
    let per = d.channels / d.groups;
    let cols = per * d.inner;
    let mut y = vec![0f64; x.len()];
    for r in 0..d.batch * d.groups {
        let row: Vec<f64> = x[r * cols..][..cols].iter().map(|&v| v as f64).collect();
        let mean = row.iter().sum::<f64>() / cols as f64;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / cols as f64;
        for (j, v) in row.iter().enumerate() {
            let c = (r % d.groups) * per + j / d.inner;
            y[r * cols + j] = (v - mean) / (var + d.eps as f64).sqrt() * s[c] as f64 + b[c] as f64;
        }
    }
    y
}

fn check_all() {
    for (batch, channels, groups, inner) in [
        (1, 4, 4, 9),
        (2, 6, 3, 17),
        (1, 32, 8, 64),
        (3, 5, 1, 1),
        (1, 3, 3, 100),
    ] {
        let d = GroupNormDesc {
            batch,
            channels,
            groups,
            inner,
            eps: 1e-5,
        };
        let n = batch * channels * inner;
        let x: Vec<f32> = (0..n)
            .map(|i| ((i as f32) * 0.37).sin() * 3.0 + 2.0)
            .collect();
        let s: Vec<f32> = (0..channels).map(|c| 0.5 + c as f32 * 0.1).collect();
        let b: Vec<f32> = (0..channels).map(|c| c as f32 * -0.2 + 0.1).collect();
        let want = reference(&x, &s, &b, d);
        for threads in [1, 2, 3] {
            let mut y = vec![f32::NAN; n];
            group_norm_f32(&x, &s, &b, &mut y, d, threads).unwrap();
            for (i, (&a, &w)) in y.iter().zip(&want).enumerate() {
                assert!(
                    (a as f64 - w).abs() <= 1e-4 * w.abs().max(1.0),
                    "{d:?} [{i}]: {a} vs {w}"
                );
            }
        }
    }
}

#[test]
fn group_norm_matches_f64_on_every_path() {
    check_all();
    force_portable(true);
    check_all();
    force_portable(false);
    let d = GroupNormDesc {
        batch: 1,
        channels: 4,
        groups: 3,
        inner: 2,
        eps: 1e-5,
    };
    let mut y = vec![0f32; 8];
    assert!(group_norm_f32(&[1.0; 8], &[1.0; 4], &[0.0; 4], &mut y, d, 1).is_err());
    let d = GroupNormDesc { groups: 2, ..d };
    assert!(group_norm_f32(&[1.0; 7], &[1.0; 4], &[0.0; 4], &mut y, d, 1).is_err());
    assert!(group_norm_f32(&[1.0; 8], &[1.0; 3], &[0.0; 4], &mut y, d, 1).is_err());
}
