//! ArgMax/ArgMin along any axis against a scalar reference, with ties,
//! select_last_index and NaN (the first NaN wins).

use kiln_codegen::cpu::kernels::{arg_reduce_f32, ArgSpec, AxisShape};

fn reference(x: &[f32], s: AxisShape, spec: ArgSpec) -> Vec<i64> {
    let mut out = vec![0; s.outer * s.inner];
    for o in 0..s.outer {
        for j in 0..s.inner {
            let at = |i: usize| x[(o * s.len + i) * s.inner + j];
            let mut best = 0;
            for i in 1..s.len {
                let (v, b) = (at(i), at(best));
                if b.is_nan() {
                    break;
                }
                let better = match (spec.max, spec.select_last) {
                    (true, false) => v > b,
                    (true, true) => v >= b,
                    (false, false) => v < b,
                    (false, true) => v <= b,
                };
                if better || v.is_nan() {
                    best = i;
                }
            }
            out[o * s.inner + j] = best as i64;
        }
    }
    out
}

#[test]
fn arg_reduce_matches_the_reference() {
    for (outer, len, inner) in [(1, 9, 1), (3, 5, 7), (2, 1, 4), (4, 33, 17), (1, 300, 300)] {
        let s = AxisShape { outer, len, inner };
        let n = outer * len * inner;
        // Few distinct values, so ties are common; a NaN now and then.
        let x: Vec<f32> = (0..n)
            .map(|i| {
                if i % 97 == 13 {
                    f32::NAN
                } else {
                    ((i * 7919) % 11) as f32 - 5.0
                }
            })
            .collect();
        for max in [true, false] {
            for select_last in [false, true] {
                let spec = ArgSpec { max, select_last };
                for threads in [1, 2, 3] {
                    let mut out = vec![-1i64; outer * inner];
                    arg_reduce_f32(&x, &mut out, s, spec, threads).unwrap();
                    assert_eq!(out, reference(&x, s, spec), "{s:?} {spec:?}");
                }
            }
        }
    }
    let s = AxisShape {
        outer: 1,
        len: 0,
        inner: 1,
    };
    let spec = ArgSpec {
        max: true,
        select_last: false,
    };
    assert!(arg_reduce_f32(&[], &mut [0], s, spec, 1).is_err());
    let s = AxisShape {
        outer: 2,
        len: 2,
        inner: 2,
    };
    assert!(arg_reduce_f32(&[0.0; 7], &mut [0; 4], s, spec, 1).is_err());
}
