//! Schedules applied to a hand-built expression: the printed loop nest
//! against a golden file, and each kind of bad step refused with an error.

use kiln_ir::expr::{
    apply, AffineExpr as A, Iter, Operand, ReduceKind, Reduction, ScalarExpr as S,
};
use kiln_ir::expr::{BinaryOp, Schedule, Step, TensorExpr};
use kiln_ir::{DType, TensorType};

/// `y[i, j] = sum(k) x[i, k] * w[k, j] / 7`, x: 5x7, w: 7x6.
fn matmul() -> TensorExpr {
    let ty = |s: &[usize]| TensorType::new(DType::F32, s.to_vec());
    let body = S::binary(
        BinaryOp::Mul,
        S::access(0, vec![A::iter(0), A::iter(2)]),
        S::access(1, vec![A::iter(2), A::iter(1)]),
    );
    TensorExpr {
        name: "y".into(),
        output: ty(&[5, 6]),
        inputs: vec![
            Operand {
                name: "x".into(),
                ty: ty(&[5, 7]),
            },
            Operand {
                name: "w".into(),
                ty: ty(&[7, 6]),
            },
        ],
        iters: vec![Iter::new("i", 5), Iter::new("j", 6)],
        reduce: Some(Reduction {
            kind: ReduceKind::Sum,
            iters: vec![Iter::new("k", 7)],
        }),
        body,
        epilogue: Some(S::binary(BinaryOp::Div, S::Acc, S::Const(7.0))),
    }
}

fn step_split(iter: &str, factor: usize) -> Step {
    Step::Split {
        iter: iter.into(),
        factor,
    }
}

#[test]
fn printed_nest_matches_golden() {
    let s = Schedule::new(vec![
        Step::Fuse {
            outer: "i".into(),
            inner: "j".into(),
        },
        step_split("i_j", 4),
        step_split("k", 3),
        Step::Vectorize {
            iter: "i_j.i".into(),
            lanes: 4,
        },
        Step::Unroll {
            iter: "k.i".into(),
            factor: 3,
        },
        Step::Parallel {
            iter: "i_j.o".into(),
        },
    ]);
    let got = apply(&matmul(), &s).unwrap().to_string();
    assert_eq!(got, include_str!("golden/matmul_nest.txt"), "\n{got}");
}

#[test]
fn printed_staging_matches_golden() {
    let e = matmul();
    let s = Schedule::new(vec![
        step_split("j", 4),
        step_split("k", 3),
        Step::Reorder {
            order: vec!["j.o".into(), "i".into()],
        },
        Step::Pack {
            input: 0,
            axis: 1,
            block: 3,
        },
        Step::CacheRead {
            input: 1,
            at: "j.o".into(),
        },
    ]);
    let got = apply(&e, &s).unwrap().to_string();
    assert_eq!(got, include_str!("golden/staging_nest.txt"), "\n{got}");
    let c = Schedule::new(vec![Step::ComputeAt {
        producer: "x".into(),
        at: "i".into(),
    }]);
    let n = apply(&e, &c).unwrap();
    let r = n.region(&n.stages[0]);
    assert_eq!(r.extent, vec![1, 7]);
}

#[test]
fn bad_steps_are_errors() {
    let e = matmul();
    let cases = [
        vec![step_split("nope", 2)],
        vec![step_split("i", 0)],
        vec![Step::Fuse {
            outer: "j".into(),
            inner: "k".into(),
        }],
        vec![Step::Fuse {
            outer: "j".into(),
            inner: "i".into(),
        }],
        vec![
            step_split("j", 4),
            Step::Fuse {
                outer: "j.o".into(),
                inner: "j.i".into(),
            },
        ],
        vec![Step::Reorder {
            order: vec!["k".into(), "i".into()],
        }],
        vec![
            step_split("j", 4),
            Step::Reorder {
                order: vec!["j.i".into(), "j.o".into()],
            },
        ],
        vec![Step::Vectorize {
            iter: "j".into(),
            lanes: 3,
        }],
        vec![
            Step::Vectorize {
                iter: "j".into(),
                lanes: 4,
            },
            Step::Vectorize {
                iter: "k".into(),
                lanes: 4,
            },
        ],
        vec![
            step_split("j", 4),
            Step::Vectorize {
                iter: "j.o".into(),
                lanes: 4,
            },
        ],
        vec![Step::Unroll {
            iter: "k".into(),
            factor: 0,
        }],
        vec![Step::Parallel { iter: "j".into() }],
        vec![Step::Parallel { iter: "k".into() }],
        vec![
            Step::Vectorize {
                iter: "j".into(),
                lanes: 4,
            },
            step_split("j", 2),
        ],
        vec![Step::Pack {
            input: 2,
            axis: 1,
            block: 4,
        }],
        vec![Step::Pack {
            input: 1,
            axis: 2,
            block: 4,
        }],
        vec![Step::Pack {
            input: 1,
            axis: 1,
            block: 0,
        }],
        vec![Step::CacheRead {
            input: 0,
            at: "nope".into(),
        }],
        vec![Step::CacheRead {
            input: 3,
            at: "i".into(),
        }],
        vec![
            Step::CacheRead {
                input: 0,
                at: "i".into(),
            },
            Step::Pack {
                input: 0,
                axis: 0,
                block: 2,
            },
        ],
        vec![
            Step::CacheRead {
                input: 0,
                at: "j".into(),
            },
            step_split("j", 2),
        ],
        vec![
            Step::Vectorize {
                iter: "j".into(),
                lanes: 4,
            },
            Step::CacheRead {
                input: 1,
                at: "j".into(),
            },
        ],
        vec![Step::ComputeAt {
            producer: "p".into(),
            at: "i".into(),
        }],
        vec![Step::ComputeAt {
            producer: "x".into(),
            at: "nope".into(),
        }],
    ];
    for steps in cases {
        let err = apply(&e, &Schedule::new(steps.clone()));
        assert!(err.is_err(), "{steps:?} was accepted");
    }
    // Splitting by a factor that divides the extent needs no tail bound.
    let n = apply(&e, &Schedule::new(vec![step_split("j", 3)])).unwrap();
    assert!(n.loops.iter().all(|l| l.bounds.is_empty()));
}
