//! The `Attention` and `Split` kernels against the reference interpreter, on
//! random shapes and random inputs (never zeros), with and without a mask,
//! each mask broadcast form, and a scale attribute or its default.

use kiln_ir::{Attr, DType, Graph, Op, Tensor, TensorType};
use kiln_runtime::{compile, CompileOptions};
use std::collections::HashMap;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn dim(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
    fn tensor(&mut self, shape: Vec<usize>) -> Tensor {
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0 + 0.01)
            .collect();
        Tensor::from_vec(shape, v).unwrap()
    }
}

fn f32s(shape: &[usize]) -> TensorType {
    TensorType::new(DType::F32, shape.to_vec())
}

/// Compiles `g`, checks that `kernel` computes it (no fallback) and that it
/// matches the interpreter on `feeds`.
fn check(g: &Graph, feeds: &HashMap<String, Tensor>, kernel: &str) {
    let exe = compile(g, &CompileOptions::default()).unwrap();
    let r = exe.report();
    assert_eq!(r.fallback_count(), 0, "{:?}", r.fallbacks);
    assert!(
        r.kernels.iter().any(|k| k.kernel.starts_with(kernel)),
        "{:?}",
        r.kernels
    );
    let got = exe.run(feeds).unwrap();
    let want = kiln_ir::interp::run(g, feeds).unwrap();
    for (a, b) in got.iter().zip(&want) {
        assert_eq!(a.shape(), b.shape());
        let (a, b) = (a.to_f64_vec(), b.to_f64_vec());
        let scale = b.iter().fold(1e-30f64, |m, v| m.max(v.abs()));
        let err = a
            .iter()
            .zip(&b)
            .fold(0f64, |m, (x, y)| m.max((x - y).abs()));
        assert!(err <= 1e-5 * scale, "max error {err} (scale {scale})");
    }
}

#[test]
fn attention_kernel_matches_the_interpreter() {
    let mut rng = Rng(0x5eed_1234_abcd);
    for case in 0..24 {
        let (b, h, s, t, d, dv) = (
            rng.dim(1, 2),
            rng.dim(1, 4),
            rng.dim(1, 33),
            rng.dim(1, 40),
            rng.dim(1, 24),
            rng.dim(1, 20),
        );
        let mut g = Graph::new("attention");
        let mut feeds = HashMap::new();
        let mut args = Vec::new();
        let mask_shapes = [
            vec![],
            vec![b, 1, 1, t],
            vec![b, h, s, t],
            vec![t],
            vec![s, t],
        ];
        let mask = (case % 6 != 5).then(|| mask_shapes[case % 5].clone());
        let shapes = [vec![b, h, s, d], vec![b, h, t, d], vec![b, h, t, dv]];
        for (i, shape) in shapes.iter().chain(mask.iter()).enumerate() {
            let name = format!("in{i}");
            args.push(g.add_input(&name, f32s(shape)).unwrap());
            feeds.insert(name, rng.tensor(shape.clone()));
        }
        let mut op = Op::new("Attention");
        if case % 2 == 0 {
            op = op.with("scale", Attr::Float(0.3 + case as f64 * 0.01));
        }
        let y = g.add_node("att", op, &args, &["y"]).unwrap();
        g.set_outputs(y);
        check(&g, &feeds, "attention");
    }
}

#[test]
fn split_kernel_matches_the_interpreter() {
    let mut rng = Rng(0x0dd_ba11);
    for case in 0..12 {
        let shape: Vec<usize> = (0..3).map(|_| rng.dim(1, 6)).collect();
        let axis = case % 3;
        let n = shape[axis];
        let first = rng.dim(0, n);
        let mut g = Graph::new("split");
        let x = g.add_input("x", f32s(&shape)).unwrap();
        let op = Op::new("Split")
            .with("axis", Attr::Int(axis as i64 - 3 * (case as i64 % 2)))
            .with("split", Attr::Ints(vec![first as i64, (n - first) as i64]));
        let ys = g.add_node("split", op, &[x], &["a", "b"]).unwrap();
        g.set_outputs(ys);
        let feeds = HashMap::from([("x".to_string(), rng.tensor(shape))]);
        check(&g, &feeds, "split");
    }
}
