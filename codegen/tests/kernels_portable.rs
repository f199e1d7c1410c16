//! The portable (non-SIMD) paths of every kernel, on the same cases as the SIMD tests.
//! Every test here switches the portable path on, so they may run concurrently.

mod kernels_util;

use kernels_util::*;
use kiln_codegen::cpu::kernels::*;

#[test]
fn portable_matmul() {
    force_portable(true);
    let mut rng = Rng::new(11);
    for d in matmul_cases()
        .into_iter()
        .filter(|d| d.m * d.n * d.k < 1 << 20)
    {
        check_matmul(&mut rng, d);
    }
}

#[test]
fn portable_conv() {
    force_portable(true);
    let mut rng = Rng::new(12);
    for d in conv_cases() {
        check_conv(&mut rng, d);
    }
}

#[test]
fn portable_rows() {
    force_portable(true);
    check_rows(&mut Rng::new(13));
}
