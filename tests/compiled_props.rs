//! Property tests: random small graphs (op chains with broadcasting
//! operands, reductions, transposes, softmax, matmuls and convolutions with
//! fusable epilogues, integer casts) on random shapes; the compiled path
//! must equal the reference interpreter within 1e-4 relative.

use kiln::ir::{Attr, DType, Graph, Op, Tensor, TensorType, ValueId};
use kiln_runtime::{compile, CompileOptions};
use proptest::prelude::*;
use std::collections::HashMap;

/// A deterministic value stream for weights and inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// Non-zero values in about [-1, 1].
    fn tensor(&mut self, shape: Vec<usize>) -> Tensor {
        let v: Vec<f32> = (0..shape.iter().product())
            .map(|_| {
                let u = (self.next() >> 40) as f32 / (1u64 << 24) as f32;
                (0.05 + u) * if self.next() & 1 == 0 { 1.0 } else { -1.0 }
            })
            .collect();
        Tensor::from_vec(shape, v).unwrap()
    }
}

/// Builds a graph from a recipe: each byte picks the next op applied to the
/// current value (ops that do not fit the current shape are skipped).
struct Builder {
    g: Graph,
    rng: Rng,
    feeds: HashMap<String, Tensor>,
    cur: ValueId,
    n: usize,
}

impl Builder {
    fn ty(&self, v: ValueId) -> TensorType {
        self.g.value(v).ty.clone()
    }
    fn node(&mut self, op: Op, inputs: &[ValueId]) {
        self.n += 1;
        let name = format!("n{}", self.n);
        if let Ok(o) = self
            .g
            .add_node(&name, op, inputs, &[&format!("v{}", self.n)])
        {
            self.cur = o[0];
        }
    }
    /// A second operand: a new input or a constant, with some dims broadcast.
    fn operand(&mut self, shape: &[usize]) -> ValueId {
        let drop = self.rng.below(2).min(shape.len());
        let s: Vec<usize> = shape
            .iter()
            .map(|&d| if self.rng.below(3) == 0 { 1 } else { d })
            .skip(drop)
            .collect();
        let t = self.rng.tensor(s.clone());
        self.n += 1;
        let name = format!("x{}", self.n);
        if self.rng.below(2) == 0 {
            self.g.add_const(&name, t).unwrap()
        } else {
            self.feeds.insert(name.clone(), t);
            self.g
                .add_input(&name, TensorType::new(DType::F32, s))
                .unwrap()
        }
    }
    fn step(&mut self, pick: u8) {
        let ty = self.ty(self.cur);
        let shape = ty.shape.clone();
        let rank = shape.len();
        match pick % 14 {
            0 => self.node(Op::new("Relu"), &[self.cur]),
            1 => self.node(Op::new("Tanh"), &[self.cur]),
            2 => self.node(Op::new("Sigmoid"), &[self.cur]),
            3..=5 => {
                let kind = ["Add", "Mul", "Sub", "Max"][self.rng.below(4)];
                let b = self.operand(&shape);
                let ins = if self.rng.below(2) == 0 {
                    [self.cur, b]
                } else {
                    [b, self.cur]
                };
                self.node(Op::new(kind), &ins);
            }
            6 => {
                let op = Op::new("Clip")
                    .with("min", Attr::Float(-0.5))
                    .with("max", Attr::Float(0.7));
                self.node(op, &[self.cur]);
            }
            7 if rank > 0 => {
                let kind = ["ReduceSum", "ReduceMax", "ReduceMean"][self.rng.below(3)];
                let op = Op::new(kind)
                    .with("axes", Attr::Ints(vec![self.rng.below(rank) as i64]))
                    .with("keepdims", Attr::Int(self.rng.below(2) as i64));
                self.node(op, &[self.cur]);
            }
            8 if rank > 1 => {
                let mut perm: Vec<i64> = (0..rank as i64).collect();
                perm.rotate_left(1 + self.rng.below(rank - 1));
                self.node(
                    Op::new("Transpose").with("perm", Attr::Ints(perm)),
                    &[self.cur],
                );
            }
            9 if rank > 0 => self.node(Op::new("Softmax").with("axis", Attr::Int(-1)), &[self.cur]),
            10 | 11 if rank >= 2 => {
                let n = 1 + self.rng.below(9);
                let w = self.rng.tensor(vec![shape[rank - 1], n]);
                self.n += 1;
                let w = self.g.add_const(&format!("w{}", self.n), w).unwrap();
                self.node(Op::new("MatMul"), &[self.cur, w]);
            }
            12 if rank == 4 => self.conv(&shape),
            13 => {
                let to = [DType::I32, DType::I64, DType::Bool][self.rng.below(3)];
                self.node(Op::new("Cast").with("to", Attr::DType(to)), &[self.cur]);
                self.node(
                    Op::new("Cast").with("to", Attr::DType(DType::F32)),
                    &[self.cur],
                );
            }
            _ => self.node(Op::new("Abs"), &[self.cur]),
        }
    }
    fn conv(&mut self, shape: &[usize]) {
        let c = shape[1];
        let group = if self.rng.below(2) == 0 { c } else { 1 };
        let cout = if group == c { c } else { 1 + self.rng.below(6) };
        let k = 1 + self.rng.below(3);
        let w = self.rng.tensor(vec![cout, c / group, k, k]);
        let b = self.rng.tensor(vec![cout]);
        self.n += 1;
        let w = self.g.add_const(&format!("cw{}", self.n), w).unwrap();
        let b = self.g.add_const(&format!("cb{}", self.n), b).unwrap();
        let p = self.rng.below(2) as i64;
        let op = Op::new("Conv")
            .with("group", Attr::Int(group as i64))
            .with("pads", Attr::Ints(vec![p, p, p, p]))
            .with("strides", Attr::Ints(vec![1 + self.rng.below(2) as i64; 2]));
        self.node(op, &[self.cur, w, b]);
    }
}

fn build(shape: Vec<usize>, recipe: &[u8], seed: u64) -> (Graph, HashMap<String, Tensor>) {
    let mut g = Graph::new("prop");
    let x = g
        .add_input("x", TensorType::new(DType::F32, shape.clone()))
        .unwrap();
    let mut b = Builder {
        g,
        rng: Rng(seed | 1),
        feeds: HashMap::new(),
        cur: x,
        n: 0,
    };
    let t = b.rng.tensor(shape);
    b.feeds.insert("x".into(), t);
    for &p in recipe {
        b.step(p);
    }
    let out = b.cur;
    b.g.set_outputs(vec![out]);
    (b.g, b.feeds)
}

fn close(a: &Tensor, b: &Tensor) -> Result<(), String> {
    if a.ty() != b.ty() {
        return Err(format!("{} vs {}", a.ty(), b.ty()));
    }
    for (i, (x, y)) in a.to_f64_vec().iter().zip(b.to_f64_vec()).enumerate() {
        let ok = (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-5 + 1e-4 * y.abs();
        if !ok {
            return Err(format!("element {i}: compiled {x}, interpreter {y}"));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn compiled_equals_interpreter(
        shape in prop::collection::vec(1usize..7, 1..5),
        recipe in prop::collection::vec(any::<u8>(), 1..7),
        seed in any::<u64>(),
        threads in 1usize..3,
    ) {
        let (g, feeds) = build(shape, &recipe, seed);
        let want = kiln::run(&g, &feeds).unwrap();
        let exe = compile(&g, &CompileOptions::default().with_threads(threads)).unwrap();
        let got = exe.run(&feeds).unwrap();
        let text = kiln::ir::text::print(&g);
        for (a, b) in got.iter().zip(&want) {
            prop_assert!(close(a, b).is_ok(), "{}\n{}", close(a, b).unwrap_err(), text);
        }
    }
}
