//! `matmul_f32` and `PackedMatmul` against an f64 reference, and their argument checks.

mod kernels_util;

use kernels_util::*;
use kiln_codegen::cpu::kernels::*;
use kiln_codegen::CodegenError;

#[test]
fn matmul_matches_reference() {
    let mut rng = Rng::new(1);
    for d in matmul_cases() {
        check_matmul(&mut rng, d);
    }
}

#[test]
fn packed_matches_reference() {
    let mut rng = Rng::new(2);
    for &(m, n, k) in &[
        (1, 512, 784),
        (1, 10, 512),
        (1, 1000, 130),
        (1, 270, 500),
        (3, 37, 19),
        (64, 128, 512),
        (9, 130, 7),
    ] {
        for t in [false, true] {
            for act in ACTS {
                let a = rng.vec(m * k);
                let b = rng.vec(k * n);
                let bias = rng.vec(n);
                let res = rng.vec(m * n);
                let p = PackedMatmul::new(k, n, &b, t, Some(&bias), act).unwrap();
                let d = MatmulDesc {
                    batch: 1,
                    m,
                    n,
                    k,
                    a_batch_stride: 0,
                    b_batch_stride: 0,
                    b_transposed: t,
                };
                let e = Epilogue {
                    bias: Some(&bias),
                    residual: Some(&res),
                    activation: act,
                };
                let (want, sc) = matmul_ref(&d, &a, &b, &e);
                for threads in [1, 2] {
                    let mut c = vec![f32::NAN; m * n];
                    p.run(&a, m, Some(&res), &mut c, threads).unwrap();
                    assert_close(&format!("packed {m}x{n}x{k} t{t} {act:?}"), &c, &want, &sc);
                }
            }
        }
    }
}

#[test]
fn matmul_rejects_bad_arguments() {
    let d = MatmulDesc {
        batch: 2,
        m: 3,
        n: 4,
        k: 5,
        a_batch_stride: 15,
        b_batch_stride: 20,
        b_transposed: false,
    };
    let (a, b, mut c) = (vec![1.0; 30], vec![1.0; 40], vec![0.0; 24]);
    let e = Epilogue::default();
    assert!(matmul_f32(&d, &a, &b, &mut c, &e, 1).is_ok());
    assert_eq!(
        matmul_f32(&d, &a, &b, &mut c, &e, 0),
        Err(CodegenError::ZeroThreads)
    );
    assert!(matches!(
        matmul_f32(&d, &a[..29], &b, &mut c, &e, 1),
        Err(CodegenError::TooShort { operand: "a", .. })
    ));
    assert!(matches!(
        matmul_f32(&d, &a, &b[..39], &mut c, &e, 1),
        Err(CodegenError::TooShort { operand: "b", .. })
    ));
    assert!(matches!(
        matmul_f32(&d, &a, &b, &mut c[..23], &e, 1),
        Err(CodegenError::TooShort { operand: "c", .. })
    ));
    let bias = [0.0; 3];
    let bad = Epilogue {
        bias: Some(&bias),
        ..e
    };
    assert!(matches!(
        matmul_f32(&d, &a, &b, &mut c, &bad, 1),
        Err(CodegenError::InvalidArgument { .. })
    ));
    let res = [0.0; 23];
    let bad = Epilogue {
        residual: Some(&res),
        ..e
    };
    assert!(matches!(
        matmul_f32(&d, &a, &b, &mut c, &bad, 1),
        Err(CodegenError::TooShort {
            operand: "residual",
            ..
        })
    ));
    let huge = MatmulDesc { m: usize::MAX, ..d };
    assert!(matches!(
        matmul_f32(&huge, &a, &b, &mut c, &e, 1),
        Err(CodegenError::Overflow { .. })
    ));
    assert!(PackedMatmul::new(5, 4, &b[..19], false, None, Activation::None).is_err());
    assert!(PackedMatmul::new(5, 4, &b, false, Some(&bias), Activation::None).is_err());
    let p = PackedMatmul::new(5, 4, &b, false, None, Activation::None).unwrap();
    assert!(p.run(&a[..14], 3, None, &mut c, 1).is_err());
    assert!(p.run(&a, 3, None, &mut c[..11], 1).is_err());
    assert!(p.run(&a, 3, None, &mut c, 0).is_err());
}
