//! Differential tests of `kiln_ir::expr`: for each lowered op, a one-node
//! graph on deterministic random inputs (never zero), `eval(lower(node))`
//! against the reference interpreter within 1e-5 relative.

use kiln_ir::expr::{eval, lower, TensorExpr};
use kiln_ir::{interp, Attr, DType, Graph, Op, Tensor, TensorType};
use std::collections::HashMap;

/// How input values are drawn.
#[derive(Clone, Copy)]
enum Gen {
    /// Magnitude in [0.1, 1], random sign.
    Signed,
    /// In [0.1, 2].
    Positive,
    /// One of -2, -1, 1, 2 (ties for comparisons).
    SmallInt,
    Bool,
    /// In [-6, 6], every other value a multiple of 1/2 (ties for Round).
    Wide,
    /// NaN, ±inf and finite values.
    Special,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn value(&mut self, g: Gen) -> f64 {
        let u = self.next();
        match g {
            Gen::Signed => (0.1 + 0.9 * u) * if self.next() < 0.5 { -1.0 } else { 1.0 },
            Gen::Positive => 0.1 + 1.9 * u,
            Gen::SmallInt => [-2.0, -1.0, 1.0, 2.0][(u * 4.0) as usize % 4],
            Gen::Bool => (u < 0.5) as u8 as f64,
            Gen::Wide => {
                let v = 12.0 * u - 6.0;
                let v = if self.next() < 0.5 {
                    (v * 2.0).round() / 2.0
                } else {
                    v
                };
                if v == 0.0 {
                    0.5
                } else {
                    v
                }
            }
            Gen::Special => {
                [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.5, -2.0][(u * 5.0) as usize % 5]
            }
        }
    }
    fn tensor(&mut self, d: DType, shape: &[usize], g: Gen) -> Tensor {
        let v: Vec<f64> = (0..shape.iter().product()).map(|_| self.value(g)).collect();
        Tensor::from_vec(shape.to_vec(), v).unwrap().cast(d)
    }
}

/// An input of the test graph: dtype, shape and value generator.
type In<'a> = (DType, &'a [usize], Gen);

/// Builds `op` over `ins`, checks the lowering against the interpreter and
/// returns the expression.
fn check(op: Op, ins: &[In]) -> TensorExpr {
    let mut g = Graph::new("t");
    let mut ids = vec![];
    for (k, (d, s, _)) in ins.iter().enumerate() {
        ids.push(
            g.add_input(&format!("x{k}"), TensorType::new(*d, s.to_vec()))
                .unwrap(),
        );
    }
    let kind = op.kind.clone();
    let out = g.add_node("n", op, &ids, &["y"]).unwrap();
    g.set_outputs(out);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ins.len() as u64);
    let feeds: Vec<Tensor> = ins
        .iter()
        .map(|(d, s, gen)| rng.tensor(*d, s, *gen))
        .collect();
    let map: HashMap<String, Tensor> = feeds
        .iter()
        .enumerate()
        .map(|(k, t)| (format!("x{k}"), t.clone()))
        .collect();
    let want = interp::run(&g, &map).unwrap().remove(0);
    let e = lower(&g, &g.nodes()[0])
        .unwrap()
        .unwrap_or_else(|| panic!("{kind} did not lower"));
    let refs: Vec<&Tensor> = feeds.iter().collect();
    let got = eval(&e, &refs).unwrap_or_else(|err| panic!("{kind}: {err}\n{e}"));
    assert_eq!(got.ty(), want.ty(), "{kind}\n{e}");
    for (i, (a, b)) in got.to_f64_vec().iter().zip(want.to_f64_vec()).enumerate() {
        let ok = (a - b).abs() <= 1e-5 * b.abs() + 1e-12 || (a.is_nan() && b.is_nan());
        assert!(ok, "{kind} element {i}: expr {a}, interpreter {b}\n{e}");
    }
    e
}

const F: DType = DType::F32;
const S: Gen = Gen::Signed;

#[test]
fn unary_ops() {
    for k in [
        "Relu",
        "Sigmoid",
        "Tanh",
        "Exp",
        "Neg",
        "Abs",
        "Erf",
        "Reciprocal",
        "Floor",
        "Ceil",
        "Sin",
        "Cos",
    ] {
        check(Op::new(k), &[(F, &[2, 3, 5], S)]);
    }
    for k in ["Log", "Sqrt"] {
        check(Op::new(k), &[(F, &[7], Gen::Positive)]);
        check(Op::new(k), &[(DType::F64, &[3, 1], Gen::Positive)]);
    }
}

#[test]
fn clip_bounds() {
    let x: In = (F, &[4, 5], S);
    check(
        Op::new("Clip")
            .with("min", Attr::Float(-0.3))
            .with("max", Attr::Float(0.6)),
        &[x],
    );
    check(Op::new("Clip").with("min", Attr::Float(0.0)), &[x]);
    check(Op::new("Clip").with("max", Attr::Float(6.0)), &[x]);
    check(Op::new("Clip"), &[x]);
}

#[test]
fn binary_ops_broadcast() {
    let shapes: [(&[usize], &[usize]); 5] = [
        (&[2, 3], &[2, 3]),
        (&[2, 1, 4], &[3, 1]),
        (&[5], &[3, 1, 5]),
        (&[], &[2, 3]),
        (&[1, 1], &[7]),
    ];
    for k in ["Add", "Sub", "Mul", "Div", "Max", "Min"] {
        for (a, b) in shapes {
            check(Op::new(k), &[(F, a, S), (F, b, S)]);
        }
    }
    check(Op::new("Pow"), &[(F, &[2, 3], Gen::Positive), (F, &[3], S)]);
    check(
        Op::new("Max"),
        &[(F, &[3, 1], S), (F, &[4], S), (F, &[2, 1, 1], S)],
    );
    check(
        Op::new("Sum"),
        &[(F, &[3, 1], S), (F, &[4], S), (F, &[3, 4], S)],
    );
}

#[test]
fn comparisons_where_cast() {
    let (a, b): (&[usize], &[usize]) = (&[3, 4], &[4]);
    for k in ["Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"] {
        check(Op::new(k), &[(F, a, Gen::SmallInt), (F, b, Gen::SmallInt)]);
        check(
            Op::new(k),
            &[
                (DType::I32, a, Gen::SmallInt),
                (DType::I32, b, Gen::SmallInt),
            ],
        );
    }
    check(
        Op::new("Where"),
        &[
            (DType::Bool, &[3, 1], Gen::Bool),
            (F, &[4], S),
            (F, &[2, 1, 1], S),
        ],
    );
    let to = |d| Op::new("Cast").with("to", Attr::DType(d));
    check(to(DType::I32), &[(F, &[5, 2], Gen::SmallInt)]);
    check(to(DType::F64), &[(F, &[5, 2], S)]);
    check(to(DType::F32), &[(DType::I32, &[3], Gen::SmallInt)]);
    check(to(DType::Bool), &[(F, &[6], Gen::SmallInt)]);
    check(to(DType::F16), &[(F, &[6], S)]);
    check(to(DType::Bool), &[(DType::I64, &[6], Gen::SmallInt)]);
}

#[test]
fn logic_and_expand() {
    let b = DType::Bool;
    for k in ["And", "Or", "Xor"] {
        check(Op::new(k), &[(b, &[3, 1], Gen::Bool), (b, &[4], Gen::Bool)]);
    }
    check(Op::new("Not"), &[(b, &[5, 2], Gen::Bool)]);
    let ex = |s: Vec<i64>| Op::new("Expand").with("shape", Attr::Ints(s));
    check(ex(vec![2, 3, 4]), &[(F, &[3, 1], S)]);
    check(ex(vec![2, 1, 1]), &[(b, &[1, 5], Gen::Bool)]);
    check(ex(vec![3, 1]), &[(DType::I32, &[4], Gen::SmallInt)]);
}

#[test]
fn matmul_shapes() {
    let cases: [(&[usize], &[usize]); 7] = [
        (&[3, 4], &[4, 5]),
        (&[2, 3, 4], &[4, 5]),
        (&[2, 1, 3, 4], &[3, 4, 2]),
        (&[4], &[4, 5]),
        (&[3, 4], &[4]),
        (&[7], &[7]),
        (&[1, 3, 5], &[2, 5, 1]),
    ];
    for (a, b) in cases {
        check(Op::new("MatMul"), &[(F, a, S), (F, b, S)]);
    }
}

#[test]
fn gemm_attrs() {
    check(Op::new("Gemm"), &[(F, &[3, 4], S), (F, &[4, 5], S)]);
    let t = Op::new("Gemm")
        .with("transA", Attr::Int(1))
        .with("transB", Attr::Int(1));
    let t = t
        .with("alpha", Attr::Float(0.5))
        .with("beta", Attr::Float(-2.0));
    check(t, &[(F, &[4, 3], S), (F, &[5, 4], S), (F, &[5], S)]);
    check(
        Op::new("Gemm").with("transB", Attr::Int(1)),
        &[(F, &[2, 6], S), (F, &[3, 6], S), (F, &[2, 3], S)],
    );
    check(
        Op::new("Gemm"),
        &[(F, &[2, 6], S), (F, &[6, 3], S), (F, &[], S)],
    );
}

#[test]
fn reductions() {
    let x: In = (F, &[2, 3, 5], S);
    for k in [
        "ReduceSum",
        "ReduceMean",
        "ReduceMax",
        "ReduceMin",
        "ReduceProd",
    ] {
        check(Op::new(k), &[x]);
        check(Op::new(k).with("axes", Attr::Ints(vec![1])), &[x]);
        check(
            Op::new(k)
                .with("axes", Attr::Ints(vec![-1, 0]))
                .with("keepdims", Attr::Int(0)),
            &[x],
        );
    }
    check(
        Op::new("ReduceSum").with("noop_with_empty_axes", Attr::Int(1)),
        &[x],
    );
    check(Op::new("GlobalAveragePool"), &[(F, &[2, 3, 5, 7], S)]);
    check(Op::new("GlobalAveragePool"), &[(F, &[1, 2, 4], S)]);
    for (k, gen) in [
        ("ReduceL1", S),
        ("ReduceL2", S),
        ("ReduceSumSquare", S),
        ("ReduceLogSum", Gen::Positive),
    ] {
        let x: In = (F, &[2, 3, 5], gen);
        check(Op::new(k), &[x]);
        check(
            Op::new(k)
                .with("axes", Attr::Ints(vec![2]))
                .with("keepdims", Attr::Int(0)),
            &[x],
        );
    }
}

#[test]
fn layout_ops() {
    let x: In = (F, &[2, 3, 4], S);
    check(Op::new("Transpose"), &[x]);
    check(
        Op::new("Transpose").with("perm", Attr::Ints(vec![1, 2, 0])),
        &[x],
    );
    for shape in [
        vec![6, 4],
        vec![4, 6],
        vec![24],
        vec![1, 2, 12, 1],
        vec![3, 8],
        vec![2, 2, 6],
    ] {
        check(Op::new("Reshape").with("shape", Attr::Ints(shape)), &[x]);
    }
    check(Op::new("Flatten").with("axis", Attr::Int(2)), &[x]);
    check(
        Op::new("Unsqueeze").with("axes", Attr::Ints(vec![0, 3])),
        &[x],
    );
    check(Op::new("Squeeze"), &[(F, &[1, 3, 1, 2], S)]);
    check(Op::new("Identity"), &[(DType::I32, &[5], Gen::SmallInt)]);
}

fn conv(attrs: &[(&str, Attr)]) -> Op {
    attrs
        .iter()
        .fold(Op::new("Conv"), |op, (k, v)| op.with(k, v.clone()))
}

#[test]
fn conv_2d() {
    let ints = |v: &[i64]| Attr::Ints(v.to_vec());
    check(conv(&[]), &[(F, &[1, 2, 5, 6], S), (F, &[3, 2, 3, 3], S)]);
    let op = conv(&[
        ("pads", ints(&[1, 2, 0, 1])),
        ("strides", ints(&[2, 1])),
        ("dilations", ints(&[1, 2])),
    ]);
    check(
        op,
        &[(F, &[2, 3, 7, 8], S), (F, &[4, 3, 3, 2], S), (F, &[4], S)],
    );
    let dw = conv(&[("pads", ints(&[1, 1, 1, 1])), ("group", Attr::Int(4))]);
    check(
        dw,
        &[(F, &[1, 4, 5, 5], S), (F, &[4, 1, 3, 3], S), (F, &[4], S)],
    );
    let grouped = conv(&[
        ("group", Attr::Int(2)),
        ("auto_pad", Attr::Str("SAME_UPPER".into())),
        ("strides", ints(&[2, 2])),
    ]);
    check(grouped, &[(F, &[1, 4, 6, 7], S), (F, &[6, 2, 2, 3], S)]);
    check(
        conv(&[("pads", ints(&[2, 1]))]),
        &[(F, &[2, 2, 9], S), (F, &[3, 2, 4], S)],
    );
}

#[test]
fn unlowered_ops_give_none() {
    let mut g = Graph::new("t");
    let x = g.add_input("x", TensorType::new(F, vec![2, 3])).unwrap();
    g.add_node("s", Op::new("Softmax"), &[x], &["y"]).unwrap();
    let i = g
        .add_input("i", TensorType::new(DType::I32, vec![2, 3]))
        .unwrap();
    g.add_node("a", Op::new("Add"), &[i, i], &["z"]).unwrap();
    for n in g.nodes() {
        assert!(lower(&g, n).unwrap().is_none(), "{}", n.op.kind);
    }
}

/// The activation family (`lower/activation.rs`) against the interpreter.
#[test]
fn activations() {
    let x: In = (F, &[2, 3, 7], Gen::Wide);
    for k in [
        "HardSigmoid",
        "HardSwish",
        "Gelu",
        "Mish",
        "Softplus",
        "Softsign",
        "Swish",
        "Elu",
        "Selu",
        "Celu",
        "LeakyRelu",
        "ThresholdedRelu",
        "Shrink",
        "Sign",
        "Round",
    ] {
        check(Op::new(k), &[x]);
        check(Op::new(k), &[(DType::F64, &[5], Gen::Signed)]);
    }
    let f = |k: &str, a: &str, v: f64| Op::new(k).with(a, Attr::Float(v));
    check(
        Op::new("Gelu").with("approximate", Attr::Str("tanh".into())),
        &[x],
    );
    check(
        f("HardSigmoid", "alpha", 0.3).with("beta", Attr::Float(0.4)),
        &[x],
    );
    check(f("LeakyRelu", "alpha", 0.2), &[x]);
    check(f("Elu", "alpha", 0.7), &[x]);
    check(f("Celu", "alpha", 2.5), &[x]);
    check(
        f("Selu", "alpha", 1.5).with("gamma", Attr::Float(0.9)),
        &[x],
    );
    check(f("ThresholdedRelu", "alpha", -0.5), &[x]);
    check(
        f("Shrink", "lambd", 1.5).with("bias", Attr::Float(0.25)),
        &[x],
    );
    check(f("Swish", "alpha", 1.7), &[x]);
    check(Op::new("PRelu"), &[x, (F, &[7], Gen::Signed)]);
    check(Op::new("PRelu"), &[x, (F, &[3, 1], Gen::Signed)]);
    for fmod in [0, 1] {
        let m = Op::new("Mod").with("fmod", Attr::Int(fmod));
        check(m.clone(), &[x, (F, &[7], Gen::Wide)]);
        check(m, &[(F, &[4, 5], Gen::Signed), (F, &[], Gen::Positive)]);
    }
    let s: In = (F, &[4, 5], Gen::Special);
    check(Op::new("IsNaN"), &[s]);
    for (p, n) in [(1, 1), (1, 0), (0, 1), (0, 0)] {
        let op = Op::new("IsInf")
            .with("detect_positive", Attr::Int(p))
            .with("detect_negative", Attr::Int(n));
        check(op, &[s]);
    }
}

/// Bad attributes are errors naming the node, not panics.
#[test]
fn activation_bad_attrs_are_errors() {
    let bad = [
        Op::new("Gelu").with("approximate", Attr::Str("fast".into())),
        Op::new("Celu").with("alpha", Attr::Float(0.0)),
    ];
    for op in bad {
        let mut g = Graph::new("t");
        let x = g.add_input("x", TensorType::new(F, vec![3])).unwrap();
        // The graph checks attributes when a node is added: swap them in
        // afterwards, as a graph loaded without checks could hold them.
        g.add_node("act7", Op::new(&op.kind), &[x], &["y"]).unwrap();
        g.nodes_mut()[0].op = op;
        let err = lower(&g, &g.nodes()[0]).unwrap_err().to_string();
        assert!(err.contains("act7"), "{err}");
    }
}

#[test]
fn batchnorm_inference() {
    let p: In = (F, &[3], Gen::Positive);
    for shape in [&[2, 3][..], &[1, 3, 5], &[2, 3, 4, 5], &[1, 3, 2, 2, 3]] {
        check(
            Op::new("BatchNormalization").with("epsilon", Attr::Float(1e-3)),
            &[(F, shape, S), p, p, (F, &[3], S), p],
        );
    }
    check(
        Op::new("BatchNormalization"),
        &[(DType::F64, &[2, 3, 4], S), p, p, p, p],
    );
}

#[test]
fn depth_to_space_and_back() {
    let x: In = (F, &[2, 8, 3, 5], S);
    for mode in ["DCR", "CRD"] {
        check(
            Op::new("DepthToSpace")
                .with("blocksize", Attr::Int(2))
                .with("mode", Attr::Str(mode.into())),
            &[x],
        );
    }
    check(
        Op::new("SpaceToDepth").with("blocksize", Attr::Int(3)),
        &[(F, &[1, 2, 6, 9], S)],
    );
    check(
        Op::new("SpaceToDepth").with("blocksize", Attr::Int(2)),
        &[(DType::I32, &[2, 3, 4, 2], Gen::SmallInt)],
    );
}
