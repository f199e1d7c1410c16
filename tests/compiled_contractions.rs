//! Contractions outside the hand-written matmul cases (Einsum, broadcast
//! MatMul batches, transposed or scaled Gemm) routed by the derivation
//! search to the GEMM kernels plus generated memory-bound stages, against
//! the interpreter.

mod common;

use common::compiled::{check, kernels};

/// A graph of one node over inputs `xs` (name, type) and constants `cs`
/// (name, type, element count: filled with a positive sine sequence, so
/// sums do not cancel below the check's tolerance).
fn graph(xs: &[&str], cs: &[(&str, &str, usize)], node: &str, y: &str) -> kiln::ir::Graph {
    let mut src = String::from("graph t {\n");
    let mut names = vec![];
    for (k, x) in xs.iter().enumerate() {
        src += &format!("  input x{k}: {x}\n");
        names.push(format!("x{k}"));
    }
    for (name, ty, n) in cs {
        let v: Vec<String> = (0..*n)
            .map(|i| format!("{}", (i as f32 * 0.37).sin() * 0.5 + 1.0))
            .collect();
        src += &format!("  const {name}: {ty} = [{}]\n", v.join(", "));
        names.push(name.to_string());
    }
    src += &format!(
        "  node n = {node}({}) -> y: {y}\n  output y\n}}",
        names.join(", ")
    );
    kiln::ir::text::parse(&src).unwrap()
}

fn einsum(eq: &str, xs: &[&str], y: &str) -> Vec<String> {
    let exe = check(&graph(xs, &[], &format!("Einsum{{equation=\"{eq}\"}}"), y));
    kernels(&exe)
}

#[test]
fn einsums_that_are_gemms_run_on_the_gemm_kernels() {
    let cases = [
        (
            "bij,bjk->bik",
            &["f32[4,32,48]", "f32[4,48,40]"][..],
            "f32[4,32,40]",
            "batched-gemm",
        ),
        (
            "bhqd,bhkd->bhqk",
            &["f32[2,4,16,32]", "f32[2,4,16,32]"],
            "f32[2,4,16,16]",
            "batched-gemm",
        ),
        (
            "bqhd,bkhd->bhqk",
            &["f32[2,16,4,32]", "f32[2,16,4,32]"],
            "f32[2,4,16,16]",
            "batched-gemm",
        ),
        (
            "bqhd,bkhd->bhqk",
            &["f32[1,32,4,16]", "f32[1,32,4,16]"],
            "f32[1,4,32,32]",
            "batched-gemm",
        ),
        (
            "bid,jd->bij",
            &["f32[2,24,64]", "f32[96,64]"],
            "f32[2,24,96]",
            "gemm",
        ),
        (
            "bij,bjk->ik",
            &["f32[3,20,30]", "f32[3,30,10]"],
            "f32[20,10]",
            "gemm",
        ),
        (
            "ji,jk->ik",
            &["f32[50,40]", "f32[50,30]"],
            "f32[40,30]",
            "gemm",
        ),
        (
            "...ij,...jk->...ik",
            &["f32[2,3,8,16]", "f32[16,12]"],
            "f32[2,3,8,12]",
            "gemm",
        ),
    ];
    for (eq, xs, y, kind) in cases {
        let k = einsum(eq, xs, y);
        assert!(
            k.iter()
                .any(|k| k.starts_with("derived[") && k.ends_with(&format!("=> {kind}]"))),
            "{eq}: {k:?}"
        );
    }
}

#[test]
fn other_einsums_compile_on_generated_code() {
    let cases = [
        ("i,i->", &["f32[300]", "f32[300]"][..], "f32[]"),
        ("ij,j->i", &["f32[64,80]", "f32[80]"], "f32[64]"),
        ("i,j->ij", &["f32[20]", "f32[30]"], "f32[20,30]"),
        ("ii->i", &["f32[7,7]"], "f32[7]"),
        ("ij->ji", &["f32[5,9]"], "f32[9,5]"),
        ("ij->", &["f32[6,11]"], "f32[]"),
        (
            "ij,jk,kl->il",
            &["f32[4,5]", "f32[5,6]", "f32[6,3]"],
            "f32[4,3]",
        ),
        ("bij,bkj", &["f32[2,3,4]", "f32[2,5,4]"], "f32[3,5]"),
    ];
    for (eq, xs, y) in cases {
        // Compiled (checked against the interpreter inside `einsum`), on
        // generated code or a derived GEMM route, never the fallback.
        let k = einsum(eq, xs, y);
        assert!(!k.is_empty(), "{eq}");
        assert!(
            k.iter()
                .all(|k| k.starts_with("jit[") || k.starts_with("derived[")),
            "{eq}: {k:?}"
        );
    }
}

#[test]
fn einsum_with_constant_weights_uses_the_packed_gemm() {
    let g = graph(
        &["f32[2,24,64]"],
        &[("w", "f32[96,64]", 96 * 64)],
        "Einsum{equation=\"bid,jd->bij\"}",
        "f32[2,24,96]",
    );
    let k = kernels(&check(&g));
    assert_eq!(k, ["derived[fuse-iters => gemm]"], "{k:?}");
}

#[test]
fn matmuls_and_gemms_outside_the_matmul_builder_are_derived() {
    let cases = [
        (&["f32[2,1,8,16]", "f32[3,16,4]"], "MatMul", "f32[2,3,8,4]"),
        (
            &["f32[12,10]", "f32[12,7]"],
            "Gemm{transA=1, alpha=0.5}",
            "f32[10,7]",
        ),
    ];
    for (xs, node, y) in cases {
        let k = kernels(&check(&graph(xs, &[], node, y)));
        assert!(k.iter().any(|k| k.starts_with("derived[")), "{node}: {k:?}");
    }
}

#[test]
fn the_route_is_a_knob_the_tuner_can_turn_off() {
    use kiln_runtime::tuning::{self, Config, Knob, Tuned};
    use kiln_runtime::{compile, CompileOptions};
    let g = graph(
        &["f32[4,32,48]", "f32[4,48,40]"],
        &[],
        "Einsum{equation=\"bij,bjk->bik\"}",
        "f32[4,32,40]",
    );
    let opts = CompileOptions::default().with_threads(2);
    let w = tuning::workloads(&g, &opts).unwrap();
    let derived = w.iter().find(|w| w.family == "derived").expect("{w:?}");
    assert_eq!(derived.space.default_config()["derive"], Knob::Bool(true));
    let mut off = Config::new();
    off.insert("derive".into(), Knob::Bool(false));
    let mut t = Tuned::default();
    t.insert(tuning::canonical(&g, &[0], "derived"), off);
    let exe = compile(&g, &opts.with_tuned(t)).unwrap();
    let k = kernels(&exe);
    assert_eq!(k, ["jit[reduce]"], "{k:?}");
    let f = common::compiled::feeds(&g);
    let (got, want) = (exe.run(&f).unwrap(), kiln::run(&g, &f).unwrap());
    for (x, y) in got[0].to_f64_vec().iter().zip(want[0].to_f64_vec()) {
        assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0), "{x} vs {y}");
    }
}
