//! The compiled path against the interpreter on one graph.

use kiln::ir::{Graph, Tensor};
use kiln_runtime::{compile, CompileOptions, Executable};
use std::collections::HashMap;

/// Non-zero inputs for every graph input, of the input's dtype.
pub fn feeds(g: &Graph) -> HashMap<String, Tensor> {
    g.inputs()
        .iter()
        .map(|&i| {
            let v = g.value(i);
            let f: Vec<f64> = (0..v.ty.numel())
                .map(|k| ((k as f64) * 0.77 + v.name.len() as f64).sin() + 1.1)
                .collect();
            let t = Tensor::from_vec(v.ty.shape.clone(), f)
                .unwrap()
                .cast(v.ty.dtype);
            (v.name.clone(), t)
        })
        .collect()
}

/// Compiles at 1, 2 and 3 threads, runs twice each, checks every output
/// against the interpreter (relative 1e-6) and that nothing fell back to
/// it; returns the 2-thread executable.
pub fn check(g: &Graph) -> Executable {
    let f = feeds(g);
    let want = kiln::run(g, &f).unwrap();
    let mut keep = None;
    for threads in [1, 2, 3] {
        let exe = compile(g, &CompileOptions::default().with_threads(threads)).unwrap();
        for _ in 0..2 {
            let got = exe.run(&f).unwrap();
            for (a, b) in got.iter().zip(&want) {
                assert_eq!(a.ty(), b.ty());
                for (x, y) in a.to_f64_vec().iter().zip(b.to_f64_vec()) {
                    assert!((x - y).abs() <= 1e-6 * y.abs().max(1.0), "{x} vs {y}");
                }
            }
        }
        if threads == 2 {
            keep = Some(exe);
        }
    }
    let exe = keep.unwrap();
    let r = exe.report();
    assert!(r.fallbacks.is_empty(), "fallbacks: {:?}", r.fallbacks);
    exe
}

/// The kernel descriptions of an executable's steps.
pub fn kernels(exe: &Executable) -> Vec<String> {
    exe.report()
        .kernels
        .iter()
        .map(|k| k.kernel.clone())
        .collect()
}
