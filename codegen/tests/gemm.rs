//! `cpu::gemm_f32` against a naive f64-accumulated reference: odd sizes,
//! transposed and padded strides, alpha/beta, threads, and argument errors.

use kiln_codegen::cpu::{features, gemm_f32, Isa, Strides};
use kiln_codegen::CodegenError;

/// Deterministic non-zero values in ±[0.25, 1.25).
fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (state >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
            let sign = if state & (1 << 20) == 0 { 1.0 } else { -1.0 };
            sign * (0.25 + u)
        })
        .collect()
}

/// One GEMM problem: sizes, layouts (`trans_*`: stored transposed), padding of
/// the leading dimension, scalars and thread count.
#[derive(Clone, Copy)]
struct Case {
    m: usize,
    n: usize,
    k: usize,
    trans_a: bool,
    trans_b: bool,
    trans_c: bool,
    pad: usize,
    alpha: f32,
    beta: f32,
    threads: usize,
}

impl Case {
    fn new(m: usize, n: usize, k: usize) -> Self {
        Case {
            m,
            n,
            k,
            trans_a: false,
            trans_b: false,
            trans_c: false,
            pad: 0,
            alpha: 1.0,
            beta: 0.0,
            threads: 1,
        }
    }
}

/// Strides of a rows×cols matrix, row-major (or column-major if `trans`), with
/// `pad` extra elements per leading dimension; returns strides and slice length.
fn layout(rows: usize, cols: usize, trans: bool, pad: usize) -> (Strides, usize) {
    if trans {
        let s = Strides::col_major(rows + pad);
        (s, (rows + pad) * cols)
    } else {
        let s = Strides::row_major(cols + pad);
        (s, rows * (cols + pad))
    }
}

fn at(v: &[f32], s: Strides, i: usize, j: usize) -> f64 {
    v[i * s.row + j * s.col] as f64
}

/// Runs the case and checks every element against the f64 reference with a
/// relative tolerance on the magnitude `|alpha|·Σ|a·b| + |beta·c|`.
fn check(case: Case) {
    let Case { m, n, k, .. } = case;
    let (sa, la) = layout(m, k, case.trans_a, case.pad);
    let (sb, lb) = layout(k, n, case.trans_b, case.pad);
    let (sc, lc) = layout(m, n, case.trans_c, case.pad);
    let a = random(la, 1 + (m * 31 + n * 7 + k) as u64);
    let b = random(lb, 2 + (m + n * 13 + k * 5) as u64);
    let c0 = random(lc, 3 + (m * 3 + n + k * 11) as u64);
    let mut c = c0.clone();
    gemm_f32(
        m,
        n,
        k,
        &a,
        sa,
        &b,
        sb,
        &mut c,
        sc,
        case.alpha,
        case.beta,
        case.threads,
    )
    .unwrap();
    let (alpha, beta) = (case.alpha as f64, case.beta as f64);
    for i in 0..m {
        for j in 0..n {
            let (mut dot, mut mag) = (0.0f64, 0.0f64);
            for p in 0..k {
                let x = at(&a, sa, i, p) * at(&b, sb, p, j);
                dot += x;
                mag += x.abs();
            }
            let old = at(&c0, sc, i, j);
            let want = alpha * dot + if beta == 0.0 { 0.0 } else { beta * old };
            let scale = alpha.abs() * mag + (beta * old).abs();
            let got = at(&c, sc, i, j);
            assert!(
                (got - want).abs() <= 1e-4 * scale.max(1e-30),
                "m{m} n{n} k{k} ({i},{j}): got {got}, want {want}"
            );
        }
    }
    // Padding is never written.
    for (idx, (&x, &y)) in c.iter().zip(&c0).enumerate() {
        let (i, j) = if case.trans_c {
            (idx % (m + case.pad), idx / (m + case.pad))
        } else {
            (idx / (n + case.pad), idx % (n + case.pad))
        };
        if i >= m || j >= n {
            assert_eq!(x.to_bits(), y.to_bits(), "padding at {idx} written");
        }
    }
}

const SIZES: [(usize, usize, usize); 6] = [
    (1, 1, 1),
    (7, 13, 5),
    (65, 33, 129),
    (1, 100, 37),
    (100, 1, 3),
    (17, 17, 300),
];

#[test]
fn odd_sizes_row_major() {
    for (m, n, k) in SIZES {
        check(Case::new(m, n, k));
    }
}

#[test]
fn every_transposition() {
    for (m, n, k) in [(7, 13, 5), (65, 33, 129)] {
        for bits in 0..8 {
            check(Case {
                trans_a: bits & 1 != 0,
                trans_b: bits & 2 != 0,
                trans_c: bits & 4 != 0,
                ..Case::new(m, n, k)
            });
        }
    }
}

#[test]
fn alpha_beta_and_padding() {
    for (m, n, k) in SIZES {
        for (alpha, beta) in [(1.0, 1.0), (-0.5, 2.0), (2.5, -1.0), (0.75, 0.0)] {
            check(Case {
                alpha,
                beta,
                pad: 3,
                trans_b: true,
                ..Case::new(m, n, k)
            });
        }
    }
}

#[test]
fn two_threads_large_enough_to_split() {
    for (m, n, k) in [(257, 129, 300), (65, 33, 129)] {
        check(Case {
            threads: 2,
            beta: 0.5,
            alpha: 1.5,
            ..Case::new(m, n, k)
        });
        check(Case {
            threads: 3,
            trans_a: true,
            ..Case::new(m, n, k)
        });
    }
}

#[test]
fn beta_zero_does_not_read_c() {
    let (a, b) = (random(6, 9), random(6, 10));
    let mut c = vec![f32::NAN; 4];
    gemm_f32(
        2,
        2,
        3,
        &a,
        Strides::row_major(3),
        &b,
        Strides::row_major(2),
        &mut c,
        Strides::row_major(2),
        1.0,
        0.0,
        1,
    )
    .unwrap();
    assert!(c.iter().all(|x| x.is_finite()), "{c:?}");
}

#[test]
fn empty_dimensions() {
    // k == 0: C := beta·C.
    let mut c = vec![2.0f32; 6];
    gemm_f32(
        2,
        3,
        0,
        &[],
        Strides::row_major(0),
        &[],
        Strides::row_major(3),
        &mut c,
        Strides::row_major(3),
        1.0,
        0.5,
        1,
    )
    .unwrap();
    assert_eq!(c, vec![1.0; 6]);
    let mut c = vec![f32::NAN; 6];
    gemm_f32(
        2,
        3,
        0,
        &[],
        Strides::row_major(0),
        &[],
        Strides::row_major(3),
        &mut c,
        Strides::row_major(3),
        1.0,
        0.0,
        2,
    )
    .unwrap();
    assert_eq!(c, vec![0.0; 6]);
    // m == 0: nothing to do, empty slices are fine.
    let mut c: Vec<f32> = vec![];
    gemm_f32(
        0,
        3,
        4,
        &[],
        Strides::row_major(4),
        &random(12, 1),
        Strides::row_major(3),
        &mut c,
        Strides::row_major(3),
        1.0,
        0.0,
        1,
    )
    .unwrap();
}

#[test]
fn argument_errors() {
    let rm = Strides::row_major;
    let (a, b) = (random(6, 1), random(6, 2));
    let mut c = vec![1.0f32; 4];
    let before = c.clone();
    let run = |a: &[f32], sb: Strides, c: &mut [f32], sc: Strides, threads| {
        gemm_f32(2, 2, 3, a, rm(3), &b, sb, c, sc, 1.0, 1.0, threads)
    };
    assert_eq!(
        run(&a, rm(2), &mut c, rm(2), 0),
        Err(CodegenError::ZeroThreads)
    );
    assert_eq!(
        run(&a[..5], rm(2), &mut c, rm(2), 1),
        Err(CodegenError::TooShort {
            operand: "a",
            needed: 6,
            len: 5
        })
    );
    assert_eq!(
        run(&a, rm(3), &mut c, rm(2), 1),
        Err(CodegenError::TooShort {
            operand: "b",
            needed: 8,
            len: 6
        })
    );
    assert_eq!(
        run(&a, rm(2), &mut c[..3], rm(2), 1),
        Err(CodegenError::TooShort {
            operand: "c",
            needed: 4,
            len: 3
        })
    );
    assert!(matches!(
        run(&a, rm(2), &mut c, Strides { row: 1, col: 1 }, 1),
        Err(CodegenError::Overlap { operand: "c", .. })
    ));
    assert!(matches!(
        run(&a, rm(2), &mut c, Strides { row: 0, col: 1 }, 1),
        Err(CodegenError::Overlap { operand: "c", .. })
    ));
    assert!(matches!(
        run(
            &a,
            Strides {
                row: usize::MAX / 2,
                col: 1
            },
            &mut c,
            rm(2),
            1
        ),
        Err(CodegenError::Overflow { operand: "b" })
    ));
    assert!(matches!(
        run(
            &a,
            Strides {
                row: usize::MAX,
                col: 1
            },
            &mut c,
            rm(2),
            1
        ),
        Err(CodegenError::Overflow { operand: "b" })
    ));
    assert_eq!(c, before, "c untouched on error");
    // Broadcast (stride 0) inputs are fine: only C must not overlap.
    gemm_f32(
        2,
        2,
        3,
        &a,
        Strides { row: 0, col: 1 },
        &b,
        rm(2),
        &mut c,
        rm(2),
        1.0,
        0.0,
        1,
    )
    .unwrap();
    assert_eq!(c[0..2], c[2..4]);
}

#[test]
fn features_are_consistent() {
    let f = features();
    match f.isa() {
        Isa::Avx512 => assert!(f.avx512f),
        Isa::Avx2Fma => assert!(f.avx2 && f.fma && !f.avx512f),
        Isa::Scalar => assert!(!f.avx512f && (!f.avx2 || !f.fma)),
    }
    assert!(!f.isa().to_string().is_empty());
}
