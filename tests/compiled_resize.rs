//! `Resize` nodes compile to the resize kernel, not the interpreter
//! fallback, and give the interpreter's result at 1, 2 and 3 threads:
//! nearest (several nearest modes), linear and cubic, several coordinate
//! transformations, scales and sizes.

use kiln::ir::{Graph, Tensor};
use kiln_runtime::{compile, CompileOptions};
use std::collections::HashMap;

fn list<T: ToString>(v: &[T]) -> String {
    v.iter().map(T::to_string).collect::<Vec<_>>().join(",")
}

/// A one-node graph: Resize with `attrs` (text form) from `input` to `out`.
fn graph(attrs: &str, input: &[usize], out: &[usize]) -> Graph {
    let src = format!(
        "graph rs {{
  input x: f32[{}]
  node r = Resize{{{attrs}}}(x) -> y: f32[{}]
  output y
}}",
        list(input),
        list(out)
    );
    kiln::ir::text::parse(&src).unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn feeds(g: &Graph) -> HashMap<String, Tensor> {
    let v = g.value(g.inputs()[0]);
    let data = (0..v.ty.numel())
        .map(|k| ((k as f32) * 0.61).sin() * 2.0 + 0.3)
        .collect();
    let t = Tensor::from_vec(v.ty.shape.clone(), data).unwrap();
    HashMap::from([(v.name.clone(), t)])
}

#[test]
fn resize_nodes_run_on_the_resize_kernel_and_match_the_interpreter() {
    let cases: [(&str, &[usize], &[usize]); 8] = [
        ("scales=[1.0, 1.0, 2.0, 2.0]", &[1, 3, 8, 11], &[1, 3, 16, 22]),
        (
            "mode=\"nearest\", nearest_mode=\"floor\", coordinate_transformation_mode=\"asymmetric\", scales=[1.0, 1.0, 2.0, 2.0]",
            &[2, 2, 5, 17],
            &[2, 2, 10, 34],
        ),
        (
            "mode=\"linear\", coordinate_transformation_mode=\"align_corners\", scales=[1.0, 1.0, 2.0, 2.0]",
            &[1, 4, 9, 9],
            &[1, 4, 18, 18],
        ),
        ("mode=\"linear\", scales=[1.0, 1.0, 0.5, 0.5]", &[1, 2, 20, 37], &[1, 2, 10, 18]),
        (
            "mode=\"cubic\", scales=[1.0, 1.0, 1.5, 1.5], sizes=[1, 2, 9, 31]",
            &[1, 2, 6, 21],
            &[1, 2, 9, 31],
        ),
        (
            "mode=\"cubic\", cubic_coeff_a=-0.5, exclude_outside=1, coordinate_transformation_mode=\"pytorch_half_pixel\", scales=[1.0, 1.0, 0.75, 1.25]",
            &[1, 3, 8, 8],
            &[1, 3, 6, 10],
        ),
        ("mode=\"linear\", scales=[1.0, 1.0, 2.0, 2.0, 2.0]", &[1, 2, 3, 4, 5], &[1, 2, 6, 8, 10]),
        (
            "nearest_mode=\"round_prefer_ceil\", scales=[1.0, 3.0]",
            &[4, 7],
            &[4, 21],
        ),
    ];
    for (attrs, input, out) in cases {
        let g = graph(attrs, input, out);
        let f = feeds(&g);
        let want = kiln::run(&g, &f).unwrap();
        let want = want[0].as_slice::<f32>().unwrap();
        for threads in [1, 2, 3] {
            let what = format!("{{{attrs}}} {input:?} t{threads}");
            let exe = compile(&g, &CompileOptions::default().with_threads(threads)).unwrap();
            let kernels: Vec<String> = exe
                .report()
                .kernels
                .iter()
                .map(|k| k.kernel.clone())
                .collect();
            assert_eq!(kernels.len(), 1, "{what}: {kernels:?}");
            assert!(kernels[0].starts_with("resize["), "{what}: {kernels:?}");
            let got = exe.run(&f).unwrap();
            let got = got[0].as_slice::<f32>().unwrap();
            assert_eq!(got.len(), want.len(), "{what}");
            for (i, (a, b)) in got.iter().zip(want).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * (b.abs() + 1.0),
                    "{what} [{i}]: {a} vs {b}"
                );
            }
        }
    }
}
