//! The AVX2+FMA GEMM tiles (and the portable paths of the other kernels), forced
//! on this machine whatever it supports; skipped without AVX2+FMA.

mod kernels_util;

use kernels_util::*;
use kiln_codegen::cpu::kernels::*;

fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[test]
fn avx2_matmul() {
    if !avx2() {
        return;
    }
    force_avx2(true);
    let mut rng = Rng::new(21);
    for d in matmul_cases() {
        check_matmul(&mut rng, d);
    }
}

#[test]
fn avx2_conv() {
    if !avx2() {
        return;
    }
    force_avx2(true);
    let mut rng = Rng::new(22);
    for d in conv_cases() {
        check_conv(&mut rng, d);
    }
}
