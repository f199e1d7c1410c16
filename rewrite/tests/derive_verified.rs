//! Differential verification of the derivations: on lowered MatMul, Gemm
//! and Conv expressions (random legal shapes, strides, pads, dilations,
//! groups, biases) and pairs of matmuls sharing an input, every program each
//! derivation produces must evaluate, on random non-zero inputs, to the
//! original's results. Kernel matches are checked against a naive GEMM /
//! convolution computed from the matched descriptor, and every program of
//! every chain the search finds is checked the same way.

use kiln_ir::expr::lower;
use kiln_ir::{Attr, DType, Graph, Op, Tensor, TensorType};
use kiln_rewrite::derive::{
    self, derivations, match_program, search, Kernel, Program, SearchLimits,
};
use proptest::prelude::*;
use std::collections::HashMap;

fn ty(s: &[usize]) -> TensorType {
    TensorType::new(DType::F32, s.to_vec())
}

/// A program of the lowered nodes of a graph built by `build`.
fn lowered(inputs: &[(&str, Vec<usize>)], nodes: &[(Op, Vec<&str>, &str)]) -> Program {
    let mut g = Graph::new("t");
    for (n, s) in inputs {
        g.add_input(n, ty(s)).unwrap();
    }
    for (k, (op, ins, out)) in nodes.iter().enumerate() {
        let ids: Vec<_> = ins.iter().map(|n| g.find(n).unwrap()).collect();
        g.add_node(&format!("n{k}"), op.clone(), &ids, &[out])
            .unwrap();
    }
    let exprs = g
        .nodes()
        .iter()
        .map(|n| lower(&g, n).unwrap().unwrap())
        .collect();
    Program::new(exprs)
}

fn feeds(p: &Program, seed: u64) -> HashMap<String, Tensor> {
    let mut s = seed | 1;
    p.inputs
        .iter()
        .map(|o| {
            let data: Vec<f32> = (0..o.ty.numel())
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    let v = ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
                    if v.abs() < 0.05 {
                        0.5
                    } else {
                        v
                    }
                })
                .collect();
            (
                o.name.clone(),
                Tensor::from_vec(o.ty.shape.clone(), data).unwrap(),
            )
        })
        .collect()
}

fn close(a: &Tensor, b: &Tensor) -> bool {
    let (x, y) = (a.to_f64_vec(), b.to_f64_vec());
    a.shape() == b.shape()
        && x.iter()
            .zip(&y)
            .all(|(p, q)| (p - q).abs() <= 1e-4 * (1.0 + p.abs().max(q.abs())))
}

fn same(orig: &Program, derived: &Program, seed: u64) -> Result<(), String> {
    let f = feeds(orig, seed);
    let want = orig.eval(&f).map_err(|e| e.to_string())?;
    let got = derived.eval(&f).map_err(|e| format!("{e}\n{derived}"))?;
    if want.len() == got.len() && want.iter().zip(&got).all(|(a, b)| close(a, b)) {
        Ok(())
    } else {
        Err(format!("differs:\n{orig}\n---\n{derived}"))
    }
}

/// Applies every derivation at every site (and once more on each result);
/// returns the count of results per rule.
fn check_all(p: &Program, seed: u64) -> Result<HashMap<&'static str, usize>, String> {
    let mut fired = HashMap::new();
    for r in derivations() {
        for d in (r.apply)(p) {
            same(p, &d.program, seed).map_err(|e| format!("{} ({}): {e}", r.name, d.detail))?;
            *fired.entry(r.name).or_insert(0) += 1;
            for r2 in derivations() {
                for d2 in (r2.apply)(&d.program).into_iter().take(4) {
                    same(p, &d2.program, seed)
                        .map_err(|e| format!("{} then {}: {e}", r.name, r2.name))?;
                }
            }
        }
    }
    Ok(fired)
}

fn conv_op(stride: i64, pad: i64, dil: i64, group: i64) -> Op {
    Op::new("Conv")
        .with("strides", Attr::Ints(vec![stride, stride]))
        .with("pads", Attr::Ints(vec![pad, pad, pad, pad]))
        .with("dilations", Attr::Ints(vec![dil, dil]))
        .with("group", Attr::Int(group))
}

#[allow(clippy::too_many_arguments)]
fn conv_program(
    n: usize,
    g: usize,
    cg: usize,
    mg: usize,
    hw: usize,
    k: usize,
    st: i64,
    pad: i64,
    dil: i64,
    bias: bool,
) -> Option<Program> {
    let (c, m) = (g * cg, g * mg);
    if hw + 2 * pad as usize <= dil as usize * (k - 1) {
        return None;
    }
    let mut ins = vec![("x", vec![n, c, hw, hw + 1]), ("w", vec![m, cg, k, k])];
    let mut names = vec!["x", "w"];
    if bias {
        ins.push(("b", vec![m]));
        names.push("b");
    }
    Some(lowered(
        &ins,
        &[(conv_op(st, pad, dil, g as i64), names, "y")],
    ))
}

fn matmul_program(batch: Vec<usize>, m: usize, k: usize, n: usize, b_batched: bool) -> Program {
    let mut sa = batch.clone();
    sa.extend([m, k]);
    let mut sb = if b_batched { batch } else { vec![] };
    sb.extend([k, n]);
    lowered(
        &[("a", sa), ("b", sb)],
        &[(Op::new("MatMul"), vec!["a", "b"], "c")],
    )
}

fn gemm_program(m: usize, k: usize, n: usize, ta: bool, tb: bool) -> Program {
    let sa = if ta { vec![k, m] } else { vec![m, k] };
    let sb = if tb { vec![n, k] } else { vec![k, n] };
    let op = Op::new("Gemm")
        .with("transA", Attr::Int(ta as i64))
        .with("transB", Attr::Int(tb as i64));
    lowered(
        &[("a", sa), ("b", sb), ("c", vec![n])],
        &[(op, vec!["a", "b", "c"], "y")],
    )
}

fn shared_program(s: usize, k: usize, n1: usize, n2: usize, n3: usize) -> Program {
    let mm = || Op::new("MatMul");
    lowered(
        &[
            ("h", vec![1, s, k]),
            ("wq", vec![k, n1]),
            ("wk", vec![k, n2]),
            ("wv", vec![k, n3]),
        ],
        &[
            (mm(), vec!["h", "wq"], "q"),
            (mm(), vec!["h", "wk"], "k"),
            (mm(), vec!["h", "wv"], "v"),
        ],
    )
}

/// Naive f64 GEMM / conv from a matched descriptor vs the matched stage.
fn check_kernel(p: &Program, seed: u64) -> Result<(), String> {
    let Some(m) = match_program(p) else {
        return Ok(());
    };
    let env = m
        .program
        .eval_all(&feeds(p, seed))
        .map_err(|e| e.to_string())?;
    let e = &m.program.stages[m.stage];
    let get = |n: &str| env[n].to_f64_vec();
    let want = env[&e.name].to_f64_vec();
    let got = match &m.kernel {
        Kernel::Gemm(g) => naive_gemm(g, &get(&g.a), &get(&g.b), g.bias.as_deref().map(get)),
        Kernel::Conv(c) => naive_conv(c, &get(&c.x), &get(&c.weight), c.bias.as_deref().map(get)),
    };
    let ok = want.len() == got.len()
        && want
            .iter()
            .zip(&got)
            .all(|(a, b)| (a - b).abs() <= 1e-4 * (1.0 + a.abs()));
    if ok {
        Ok(())
    } else {
        Err(format!("kernel {} disagrees with\n{}", m.kernel, m.program))
    }
}

fn naive_gemm(g: &derive::Gemm, a: &[f64], b: &[f64], bias: Option<Vec<f64>>) -> Vec<f64> {
    let mut c = vec![0.0; g.batch * g.m * g.n];
    for bt in 0..g.batch {
        for i in 0..g.m {
            for j in 0..g.n {
                let mut s = bias.as_ref().map_or(0.0, |v| v[j]);
                for k in 0..g.k {
                    let bv = if g.b_transposed {
                        b[bt * g.b_batch_stride + j * g.k + k]
                    } else {
                        b[bt * g.b_batch_stride + k * g.n + j]
                    };
                    s += a[bt * g.a_batch_stride + i * g.k + k] * bv;
                }
                c[(bt * g.m + i) * g.n + j] = s;
            }
        }
    }
    c
}

fn naive_conv(c: &derive::Conv, x: &[f64], w: &[f64], bias: Option<Vec<f64>>) -> Vec<f64> {
    let oh = (c.h + c.pads[0] + c.pads[2] - c.dilation[0] * (c.kh - 1) - 1) / c.stride[0] + 1;
    let ow = (c.w + c.pads[1] + c.pads[3] - c.dilation[1] * (c.kw - 1) - 1) / c.stride[1] + 1;
    let (cg, mg) = (c.c_in / c.groups, c.c_out / c.groups);
    let mut y = vec![];
    for n in 0..c.batch {
        for m in 0..c.c_out {
            for p in 0..oh * ow {
                let mut s = bias.as_ref().map_or(0.0, |v| v[m]);
                for ci in 0..cg {
                    for kh in 0..c.kh {
                        for kw in 0..c.kw {
                            let h = (p / ow * c.stride[0] + kh * c.dilation[0]) as i64
                                - c.pads[0] as i64;
                            let wi = (p % ow * c.stride[1] + kw * c.dilation[1]) as i64
                                - c.pads[1] as i64;
                            if h < 0 || wi < 0 || h >= c.h as i64 || wi >= c.w as i64 {
                                continue;
                            }
                            let ch = m / mg * cg + ci;
                            let xv = x[((n * c.c_in + ch) * c.h + h as usize) * c.w + wi as usize];
                            s += xv * w[((m * cg + ci) * c.kh + kh) * c.kw + kw];
                        }
                    }
                }
                y.push(s);
            }
        }
    }
    y
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn derivations_preserve_matmul(nb in 0usize..3, m in 1usize..5, k in 1usize..7, n in 1usize..5, bb: bool, seed: u64) {
        let p = matmul_program(vec![2; nb], m, k, n, bb);
        check_all(&p, seed).map_err(TestCaseError::fail)?;
        check_kernel(&p, seed).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn derivations_preserve_gemm(m in 1usize..5, k in 1usize..10, n in 1usize..5, ta: bool, tb: bool, seed: u64) {
        let p = gemm_program(m, k, n, ta, tb);
        check_all(&p, seed).map_err(TestCaseError::fail)?;
        check_kernel(&p, seed).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn derivations_preserve_conv(
        n in 1usize..3, g in 1usize..3, cg in 1usize..3, mg in 1usize..3, hw in 2usize..6,
        k in 1usize..4, st in 1i64..3, pad in 0i64..2, dil in 1i64..3, bias: bool, seed: u64,
    ) {
        let Some(p) = conv_program(n, g, cg, mg, hw, k, st, pad, dil, bias) else { return Ok(()) };
        check_all(&p, seed).map_err(TestCaseError::fail)?;
        check_kernel(&p, seed).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn derivations_preserve_shared_matmuls(s in 1usize..4, k in 1usize..5, n1 in 1usize..4, n2 in 1usize..4, n3 in 1usize..4, seed: u64) {
        let p = shared_program(s, k, n1, n2, n3);
        check_all(&p, seed).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn search_chains_are_equivalent(hw in 2usize..5, k in 1usize..4, st in 1i64..3, pad in 0i64..2, seed: u64) {
        let Some(p) = conv_program(1, 1, 2, 2, hw, k, st, pad, 1, true) else { return Ok(()) };
        let limits = SearchLimits { max_depth: 4, max_nodes: 400, max_chains: 6 };
        for c in search(&p, &limits).chains {
            for s in &c.steps {
                same(&p, &s.program, seed).map_err(|e| TestCaseError::fail(format!("{:?}: {e}", c.rules())))?;
            }
            same(&p, &c.matched.program, seed).map_err(TestCaseError::fail)?;
            check_kernel(&c.steps.last().map_or(p.clone(), |s| s.program.clone()), seed).map_err(TestCaseError::fail)?;
        }
    }
}

/// Every derivation fires on some fixed case (so the property tests are not vacuous).
#[test]
fn every_derivation_fires() {
    let mut fired: HashMap<&str, usize> = HashMap::new();
    let mm = matmul_program(vec![2], 3, 6, 2, true);
    let relaxed = kiln_rewrite::derive::boundary::apply_relax(&mm)
        .remove(0)
        .program;
    let cases = [
        conv_program(1, 1, 2, 2, 4, 3, 2, 1, 1, true).unwrap(),
        conv_program(1, 1, 4, 2, 4, 1, 1, 0, 1, false).unwrap(),
        mm,
        relaxed,
        shared_program(2, 3, 2, 3, 2),
    ];
    for p in &cases {
        for (r, n) in check_all(p, 7).unwrap() {
            *fired.entry(r).or_default() += n;
        }
    }
    for r in derivations() {
        assert!(
            fired.get(r.name).copied().unwrap_or(0) > 0,
            "{} never fired",
            r.name
        );
    }
}

fn kinds(p: &Program) -> Vec<(Vec<&'static str>, &'static str)> {
    search(p, &SearchLimits::default())
        .chains
        .iter()
        .map(|c| (c.rules(), c.matched.kernel.kind()))
        .collect()
}

#[test]
fn pointwise_conv_becomes_gemm() {
    let p = conv_program(1, 1, 8, 4, 5, 1, 1, 0, 1, true).unwrap();
    let k = kinds(&p);
    assert_eq!(k[0], (vec![], "conv2d"));
    assert!(
        k.iter()
            .any(|(r, kind)| *kind == "gemm" && r.contains(&"fuse-iters")),
        "{k:?}"
    );
}

#[test]
fn strided_conv_becomes_im2col_gemm() {
    let p = conv_program(1, 1, 3, 4, 6, 3, 2, 1, 1, true).unwrap();
    let k = kinds(&p);
    assert!(
        k.iter()
            .any(|(r, kind)| kind.contains("gemm") && r.contains(&"materialize")),
        "{k:?}"
    );
}

#[test]
fn shared_matmuls_merge_into_one() {
    let p = shared_program(3, 4, 2, 3, 2).with_constants(["wq", "wk", "wv"].map(String::from));
    let r = search(&p, &SearchLimits::default());
    let c = r
        .chains
        .iter()
        .find(|c| c.matched.kernel.kind().contains("gemm"))
        .expect("a chain");
    assert_eq!(c.rules(), ["merge-traversal", "merge-traversal"], "{c}");
    let Kernel::Gemm(g) = &c.matched.kernel else {
        panic!()
    };
    assert_eq!((g.m, g.n, g.k), (3, 7, 4));
}
