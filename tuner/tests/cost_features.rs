//! Feature vectors of loop nests and kernel descriptors: fixed length,
//! hand-checked counts, and sensitivity to what a schedule changes.

use kiln_ir::expr::{apply, lower, LoopNest, Schedule, Step, TensorExpr};
use kiln_ir::{text, Graph};
use kiln_tuner::cost::features::{
    kernel_features, lg, nest_features, KERNEL_LEN, NEST_LEN, STORE_LEN,
};
use kiln_tuner::cost::{features, CacheSizes, Candidate, KernelDescriptor, FEATURE_LEN};

/// `c[i, j] = sum(k) a[i, k] * b[k, j]` with a 64x32 by 32x48 product.
fn matmul() -> TensorExpr {
    let g: Graph = text::parse(
        "graph t {
  input a: f32[64,32]
  input b: f32[32,48]
  node mm = MatMul(a, b) -> c: f32[64,48]
  output c
}",
    )
    .unwrap();
    lower(&g, &g.nodes()[0]).unwrap().unwrap()
}

fn split(iter: &str, factor: usize) -> Step {
    Step::Split {
        iter: iter.into(),
        factor,
    }
}

fn nest(e: &TensorExpr, steps: Vec<Step>) -> (LoopNest, Schedule) {
    let s = Schedule::new(steps);
    (apply(e, &s).unwrap(), s)
}

fn nest_vec(e: &TensorExpr, steps: Vec<Step>) -> Vec<f32> {
    let (n, s) = nest(e, steps);
    nest_features(&n, &s, &CacheSizes::default())
}

#[test]
fn nest_counts_by_hand() {
    let e = matmul();
    let v = nest_vec(&e, vec![]);
    assert_eq!(v.len(), NEST_LEN);
    let total = 64.0 * 48.0 * 32.0;
    // Sum over the single store: mul and add (reduction combine) counts,
    // two loads per iteration of 4 bytes, one store per output point.
    assert_eq!(v[1], lg(total), "muls");
    assert_eq!(v[7], lg(total), "reduction adds");
    assert_eq!(v[8], lg(2.0 * total), "all float ops");
    assert_eq!(v[10], lg(2.0 * total), "loads");
    assert_eq!(v[11], lg(8.0 * total), "load bytes");
    assert_eq!(v[12], lg(64.0 * 48.0), "stores");
    // Innermost loop k: a[i, k] is contiguous, b[k, j] strided (48).
    assert_eq!(&v[14..18], &[0.0, 1.0, 1.0, 0.0], "stride classes");
    // Loops i, j, k; one reduction loop; innermost extent 32, a reduction.
    assert_eq!(v[26], lg(3.0));
    assert_eq!(v[27], lg(1.0));
    assert_eq!(v[30], lg(32.0));
    assert_eq!(v[31], 1.0);
    // No vectorization, unrolling or parallelism.
    assert_eq!(&v[32..36], &[0.0; 4]);
    assert_eq!(v[36], lg(1.0));
    assert_eq!(v[38], 0.0);
    // With one store, the max half equals the sum half.
    assert_eq!(&v[..STORE_LEN], &v[STORE_LEN..2 * STORE_LEN]);
}

#[test]
fn vectorization_unrolling_and_parallelism_change_features() {
    let e = matmul();
    let base = vec![
        split("j", 16),
        Step::Reorder {
            order: vec!["j.o".into(), "i".into()],
        },
    ];
    let plain = nest_vec(&e, base.clone());
    let vector = nest_vec(
        &e,
        [
            base.clone(),
            vec![Step::Vectorize {
                iter: "j.i".into(),
                lanes: 16,
            }],
        ]
        .concat(),
    );
    assert_ne!(plain, vector, "vectorized and plain nests must differ");
    assert_eq!(plain[32], 0.0);
    assert_eq!(vector[32], lg(16.0), "lanes");
    assert_eq!(vector[35], 1.0, "the output store is contiguous along j.i");
    // The only difference in the store is the vector slots and the tokens.
    let diff: Vec<usize> = (0..STORE_LEN).filter(|&k| plain[k] != vector[k]).collect();
    assert!(
        diff.iter()
            .all(|k| (18..22).contains(k) || (32..36).contains(k)),
        "{diff:?}"
    );

    let unrolled = nest_vec(
        &e,
        [
            base.clone(),
            vec![Step::Unroll {
                iter: "j.i".into(),
                factor: 4,
            }],
        ]
        .concat(),
    );
    assert_eq!(unrolled[36], lg(4.0));
    assert_ne!(plain, unrolled);
    let par = nest_vec(
        &e,
        [base, vec![Step::Parallel { iter: "j.o".into() }]].concat(),
    );
    assert_eq!(par[38], lg(3.0), "parallel extent 48 / 16");
}

#[test]
fn cache_sizes_and_staging_change_features() {
    let e = matmul();
    let (n, s) = nest(&e, vec![split("j", 16)]);
    let big = nest_features(&n, &s, &CacheSizes::default());
    let tiny = CacheSizes {
        l1: 256.0,
        l2: 1024.0,
        l3: 4096.0,
    };
    let small = nest_features(&n, &s, &tiny);
    assert!(
        small[39] > big[39],
        "working set over a smaller L1 is larger"
    );
    // Total bytes: a 8 KiB + b 6 KiB + c 12 KiB = 26 KiB, over 32 KiB L1.
    assert!(
        (big[39] - (26.0f32 / 32.0).log2()).abs() < 1e-5,
        "{}",
        big[39]
    );
    let (packed, ps) = nest(
        &e,
        vec![Step::Pack {
            input: 1,
            axis: 1,
            block: 16,
        }],
    );
    let p = nest_features(&packed, &ps, &CacheSizes::default());
    let plain = nest_vec(&e, vec![]);
    // A pack adds a store: the store count and the summed loads grow.
    assert_eq!(p[2 * STORE_LEN], lg(2.0));
    assert!(p[10] > plain[10]);
}

fn gemm(variant: &str, knobs: Vec<(String, f64)>) -> KernelDescriptor {
    KernelDescriptor {
        family: "gemm".into(),
        variant: variant.into(),
        flops: 2e6,
        bytes_read: 1e5,
        bytes_written: 4e4,
        working_set: 64.0 * 1024.0,
        threads: 2,
        knobs,
    }
}

#[test]
fn kernel_features_by_hand() {
    let c = CacheSizes::default();
    let k = gemm("tiled", vec![("tile".into(), 8.0)]);
    let v = kernel_features(&k, &c);
    assert_eq!(v.len(), KERNEL_LEN);
    assert_eq!(v[..32].iter().sum::<f32>(), 2.0, "two name one-hots");
    let num = &v[32..45];
    assert_eq!(num[0], lg(2e6));
    assert_eq!(num[4], lg(2.0));
    assert_eq!(num[5], lg(2e6 / 1.4e5), "arithmetic intensity");
    assert_eq!(num[7], 1.0, "64 KiB is twice the 32 KiB L1");
    assert_eq!(&num[10..13], &[0.0, 1.0, 1.0], "fits L2 and L3, not L1");
    assert_eq!(v[45..77].iter().sum::<f32>(), lg(8.0));
    // Another variant, knob value, or cache changes the vector.
    assert_ne!(
        v,
        kernel_features(&gemm("packed", vec![("tile".into(), 8.0)]), &c)
    );
    assert_ne!(
        v,
        kernel_features(&gemm("tiled", vec![("tile".into(), 16.0)]), &c)
    );
    let small = CacheSizes {
        l2: 32.0 * 1024.0,
        ..c
    };
    assert_ne!(v, kernel_features(&k, &small));
    // Non-finite knob values are ignored, not propagated.
    let nan = kernel_features(&gemm("tiled", vec![("tile".into(), f64::NAN)]), &c);
    assert!(nan.iter().all(|x| x.is_finite()));
}

#[test]
fn candidate_layout() {
    let e = matmul();
    let (n, s) = nest(&e, vec![]);
    let c = CacheSizes::default();
    let target = [1.5f32, -2.0];
    let a = features(
        &Candidate::Nest {
            nest: &n,
            schedule: &s,
        },
        &c,
        &target,
    );
    let k = gemm("tiled", vec![]);
    let b = features(&Candidate::Kernel(&k), &c, &target);
    assert_eq!(a.len(), FEATURE_LEN + 2);
    assert_eq!(b.len(), FEATURE_LEN + 2);
    assert_eq!((a[0], b[0]), (1.0, 0.0));
    assert!(a[1 + NEST_LEN..FEATURE_LEN].iter().all(|&x| x == 0.0));
    assert!(b[1..1 + NEST_LEN].iter().all(|&x| x == 0.0));
    assert_eq!(&a[FEATURE_LEN..], &target);
    assert!(a.iter().chain(&b).all(|x| x.is_finite()));
}

/// A cache read filled per iteration of `i` copies one row of `a` (32
/// floats) 64 times; scalar and loop-less nests do not panic.
#[test]
fn stages_and_degenerate_nests() {
    let e = matmul();
    let (n, s) = nest(
        &e,
        vec![Step::CacheRead {
            input: 0,
            at: "i".into(),
        }],
    );
    let v = nest_features(&n, &s, &CacheSizes::default());
    let plain = nest_vec(&e, vec![]);
    // Summed stores grow by the copy (64 x 32 elements) in loads.
    let copy = 64.0 * 32.0;
    let loads = 2.0 * 64.0 * 48.0 * 32.0;
    assert_eq!(plain[10], lg(loads));
    assert!((v[10] - (lg(loads) + lg(copy))).abs() < 1e-4, "{}", v[10]);
    // The max half's per-fill bytes is the copy's 128 bytes or more.
    assert!(v[STORE_LEN + 25] >= lg(128.0));
    let g: Graph = text::parse(
        "graph t {
  input a: f32[]
  input b: f32[]
  input x: f32[5,7]
  node ad = Add(a, b) -> c: f32[]
  node rs = ReduceSum{keepdims=0}(x) -> r: f32[]
  output c
  output r
}",
    )
    .unwrap();
    for node in g.nodes() {
        let e = lower(&g, node).unwrap().unwrap();
        let v = nest_vec(&e, vec![]);
        assert_eq!(v.len(), NEST_LEN);
        assert!(v.iter().all(|x| x.is_finite()), "{v:?}");
    }
}

/// The layout documented in `cost/mod.rs`.
#[test]
fn documented_lengths() {
    assert_eq!(
        (STORE_LEN, NEST_LEN, KERNEL_LEN, FEATURE_LEN),
        (44, 143, 109, 253)
    );
}
