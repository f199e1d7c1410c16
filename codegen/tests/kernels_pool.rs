//! The pooling kernel against a straightforward f64 reference: max, average
//! (with and without the padding count) and Lp pools over 1-D, 2-D and 3-D
//! inputs, many kernels, strides, dilations, asymmetric pads and ceil modes,
//! on both the AVX-512 and the portable path, at 1, 2 and 3 threads.

mod kernels_util;

use kernels_util::Rng;
use kiln_codegen::cpu::kernels::{force_portable, Pool, PoolDesc, PoolKind, PoolTuning};

/// One window geometry: input dims, kernel, strides, dilations, begin, end, ceil.
struct Case {
    input: Vec<usize>,
    kernel: Vec<usize>,
    strides: Vec<usize>,
    dil: Vec<usize>,
    begin: Vec<usize>,
    end: Vec<usize>,
    ceil: bool,
}

fn case(input: &[usize], k: &[usize], s: &[usize], d: &[usize], b: &[usize], e: &[usize]) -> Case {
    Case {
        input: input.to_vec(),
        kernel: k.to_vec(),
        strides: s.to_vec(),
        dil: d.to_vec(),
        begin: b.to_vec(),
        end: e.to_vec(),
        ceil: false,
    }
}

/// Output size of one dim, as ONNX (and `kiln_ir::ops::conv::window`) computes it.
fn out_dim(c: &Case, a: usize) -> usize {
    let padded = c.input[a] + c.begin[a] + c.end[a];
    let span = (c.kernel[a] - 1) * c.dil[a] + 1;
    let s = c.strides[a];
    let mut o = if c.ceil {
        (padded - span).div_ceil(s) + 1
    } else {
        (padded - span) / s + 1
    };
    if c.ceil && (o - 1) * s >= c.input[a] + c.begin[a] {
        o -= 1;
    }
    o
}

fn cases() -> Vec<Case> {
    let mut v = vec![
        case(&[112, 112], &[3, 3], &[2, 2], &[1, 1], &[0, 0], &[0, 0]),
        case(&[28, 28], &[3, 3], &[1, 1], &[1, 1], &[1, 1], &[1, 1]),
        case(&[13, 37], &[3, 3], &[2, 2], &[1, 1], &[1, 0], &[0, 2]),
        case(&[9, 70], &[2, 5], &[1, 3], &[1, 1], &[0, 2], &[1, 1]),
        case(&[10, 33], &[3, 3], &[2, 2], &[2, 2], &[1, 2], &[2, 1]),
        case(&[7, 7], &[7, 7], &[1, 1], &[1, 1], &[0, 0], &[0, 0]),
        case(&[6, 17], &[1, 1], &[1, 1], &[1, 1], &[0, 0], &[0, 0]),
        case(&[5, 100], &[2, 4], &[2, 4], &[1, 1], &[1, 3], &[0, 0]),
        case(&[8, 130], &[3, 2], &[1, 2], &[1, 3], &[2, 1], &[2, 1]),
        case(&[31], &[4], &[1], &[1], &[2], &[1]),
        case(&[50], &[3], &[2], &[2], &[0], &[2]),
        // Long last-axis windows: 3 and 5 vectors per 16-output block.
        case(&[4, 60], &[2, 20], &[1, 1], &[1, 1], &[0, 3], &[1, 2]),
        case(&[3, 90], &[1, 13], &[1, 2], &[1, 3], &[0, 5], &[0, 4]),
        case(
            &[5, 6, 19],
            &[2, 3, 3],
            &[1, 2, 2],
            &[1, 1, 1],
            &[0, 1, 1],
            &[1, 1, 0],
        ),
        case(
            &[4, 5, 9],
            &[3, 2, 2],
            &[2, 1, 3],
            &[1, 2, 1],
            &[1, 0, 1],
            &[1, 0, 1],
        ),
    ];
    for (i, o) in [2usize, 3, 4, 10].into_iter().enumerate() {
        let mut c = case(
            &[11 + i, 21 + o],
            &[3, 3],
            &[2, 2],
            &[1, 1],
            &[0, 1],
            &[0, 0],
        );
        c.ceil = true;
        v.push(c);
    }
    let mut c = case(&[10], &[3], &[3], &[1], &[1], &[0]);
    c.ceil = true;
    v.push(c);
    v
}

fn desc(c: &Case, kind: PoolKind, planes: usize) -> PoolDesc {
    PoolDesc {
        kind,
        planes,
        input: c.input.clone(),
        kernel: c.kernel.clone(),
        strides: c.strides.clone(),
        dilations: c.dil.clone(),
        begin: c.begin.clone(),
        end: c.end.clone(),
        out: (0..c.input.len()).map(|a| out_dim(c, a)).collect(),
    }
}

/// Advances a row-major multi-index; false after the last.
fn next(idx: &mut [usize], shape: &[usize]) -> bool {
    for d in (0..shape.len()).rev() {
        idx[d] += 1;
        if idx[d] < shape[d] {
            return true;
        }
        idx[d] = 0;
    }
    false
}

/// The f64 reference: every window position of every output, one at a time.
#[allow(clippy::needless_range_loop)] // per-dim arrays in step
fn reference(d: &PoolDesc, x: &[f32]) -> Vec<f64> {
    let n = d.input.len();
    let in_plane: usize = d.input.iter().product();
    let mut y = vec![];
    for p in 0..d.planes {
        let mut o = vec![0; n];
        loop {
            let (mut vals, mut incl, mut k) = (vec![], 1usize, vec![0; n]);
            for a in 0..n {
                let start = (o[a] * d.strides[a]) as isize - d.begin[a] as isize;
                let hi = (d.input[a] + d.end[a]) as isize;
                incl *= (0..d.kernel[a])
                    .filter(|&t| {
                        let i = start + (t * d.dilations[a]) as isize;
                        i >= -(d.begin[a] as isize) && i < hi
                    })
                    .count();
            }
            loop {
                let mut flat = 0isize;
                let mut inside = true;
                for a in 0..n {
                    let i = (o[a] * d.strides[a]) as isize - d.begin[a] as isize
                        + (k[a] * d.dilations[a]) as isize;
                    inside &= i >= 0 && i < d.input[a] as isize;
                    flat = flat * d.input[a] as isize + i;
                }
                if inside {
                    vals.push(x[p * in_plane + flat as usize] as f64);
                }
                if !next(&mut k, &d.kernel) {
                    break;
                }
            }
            y.push(match d.kind {
                PoolKind::Max => vals.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v)),
                PoolKind::Average { count_include_pad } => {
                    let c = if count_include_pad { incl } else { vals.len() };
                    vals.iter().sum::<f64>() / c as f64
                }
                PoolKind::Lp { p } => {
                    let p = p as f64;
                    vals.iter()
                        .map(|v| v.abs().powf(p))
                        .sum::<f64>()
                        .powf(1.0 / p)
                }
            });
            if !next(&mut o, &d.out) {
                break;
            }
        }
    }
    y
}

const KINDS: [PoolKind; 6] = [
    PoolKind::Max,
    PoolKind::Average {
        count_include_pad: false,
    },
    PoolKind::Average {
        count_include_pad: true,
    },
    PoolKind::Lp { p: 2.0 },
    PoolKind::Lp { p: 1.0 },
    PoolKind::Lp { p: 3.0 },
];

fn check_all(rng: &mut Rng, what: &str) {
    for (ci, c) in cases().iter().enumerate() {
        // The direct schedule (AVX-512, max/average, stride ≤ 2) by default
        // (threads split planes, or row bands);
        // without it, few planes run by rows and 9 planes on the plane
        // schedule unless its byte limit is 0.
        let indirect = PoolTuning {
            direct: false,
            ..PoolTuning::default()
        };
        let rows_only = PoolTuning {
            plane_bytes: 0,
            ..indirect
        };
        let banded = PoolTuning {
            bands: true,
            ..PoolTuning::default()
        };
        let schedules = [
            (0, PoolTuning::default()),
            (4, banded),
            (0, indirect),
            (8, indirect),
            (8, rows_only),
        ];
        for ((ki, &kind), (extra, tuning)) in KINDS
            .iter()
            .enumerate()
            .flat_map(|k| schedules.into_iter().map(move |s| (k, s)))
        {
            let planes = 1 + (ci + ki) % 3 + extra;
            let d = desc(c, kind, planes);
            let pool = Pool::new(&d, tuning).unwrap();
            let (ni, no) = pool.sizes();
            // Non-zero values, offset so sums do not cancel to ~0.
            let x: Vec<f32> = rng.vec(ni).iter().map(|v| v * 2.0 + 0.25).collect();
            let want = reference(&d, &x);
            assert_eq!(want.len(), no, "{what} case {ci}");
            for threads in [1, 2, 3] {
                let mut y = vec![f32::NAN; no];
                pool.run(&x, &mut y, threads).unwrap();
                for (i, (&g, &w)) in y.iter().zip(&want).enumerate() {
                    let ok = (g as f64 - w).abs() <= 1e-5 * (w.abs() + 1.0);
                    assert!(ok, "{what} case {ci} {kind:?} t{threads} [{i}]: {g} vs {w}");
                }
            }
        }
    }
}

/// One test runs both paths in turn (the portable switch is process-wide).
#[test]
fn pool_matches_f64_reference_on_simd_and_portable_paths() {
    check_all(&mut Rng::new(41), "simd");
    force_portable(true);
    check_all(&mut Rng::new(42), "portable");
    force_portable(false);
}

#[test]
fn max_pool_never_selects_nan_and_keeps_infinities() {
    let c = case(&[1, 20], &[1, 3], &[1, 1], &[1, 1], &[0, 1], &[0, 1]);
    let d = desc(&c, PoolKind::Max, 1);
    let pool = Pool::new(&d, PoolTuning::default()).unwrap();
    let mut x: Vec<f32> = (0..20).map(|i| i as f32 * 0.5 - 3.0).collect();
    x[4] = f32::NAN;
    x[10] = f32::NEG_INFINITY;
    x[15] = f32::INFINITY;
    let mut y = vec![0.0; 20];
    pool.run(&x, &mut y, 1).unwrap();
    let want = reference(&d, &x);
    for i in 0..20 {
        assert_eq!(y[i] as f64, want[i], "column {i}");
    }
}

#[test]
fn bad_descriptions_and_short_buffers_are_errors() {
    let c = case(&[4, 4], &[2, 2], &[1, 1], &[1, 1], &[0, 0], &[0, 0]);
    let mut d = desc(&c, PoolKind::Lp { p: 0.0 }, 1);
    assert!(Pool::new(&d, PoolTuning::default()).is_err());
    d.kind = PoolKind::Max;
    d.strides = vec![0, 1];
    assert!(Pool::new(&d, PoolTuning::default()).is_err());
    d.strides = vec![1];
    assert!(Pool::new(&d, PoolTuning::default()).is_err());
    let pool = Pool::new(&desc(&c, PoolKind::Max, 2), PoolTuning::default()).unwrap();
    let mut y = vec![0.0; 18];
    assert!(pool.run(&[1.0; 31], &mut y, 1).is_err());
    assert!(pool.run(&[1.0; 32], &mut y[..17], 1).is_err());
    assert!(pool.run(&[1.0; 32], &mut y, 0).is_err());
    assert!(pool.run(&[1.0; 32], &mut y, 1).is_ok());
}
