//! Knobs as data (`kiln_runtime::tuning`): workloads and their spaces, keys
//! that ignore names and weights, tuned configs that change the compiled
//! plan and keep the interpreter's result, and points outside a space
//! rejected by validation.

mod common;

use common::compiled::feeds;
use kiln::ir::Graph;
use kiln_runtime::tuning::{self, Config, Knob, KnobDef, Space, Tuned};
use kiln_runtime::{compile, CompileOptions};

fn seq(n: usize, k: f32) -> String {
    let v: Vec<String> = (0..n)
        .map(|i| format!("{}", (i as f32 * k).sin() + 0.1))
        .collect();
    v.join(", ")
}

/// Depthwise 3×3 + Clip, then a 1×1 conv to 6 channels, then Relu; `tag` renames everything.
fn block(hw: usize, tag: &str, k: f32) -> Graph {
    let src = format!(
        "graph blk {{
  input x{tag}: f32[1,8,{hw},{hw}]
  const wd{tag}: f32[8,1,3,3] = [{wd}]
  const wp{tag}: f32[6,8,1,1] = [{wp}]
  node dw{tag} = Conv{{group=8, pads=[1, 1, 1, 1]}}(x{tag}, wd{tag}) -> d{tag}: f32[1,8,{hw},{hw}]
  node cl{tag} = Clip{{min=0.0, max=6.0}}(d{tag}) -> c{tag}: f32[1,8,{hw},{hw}]
  node pw{tag} = Conv(c{tag}, wp{tag}) -> p{tag}: f32[1,6,{hw},{hw}]
  node r{tag} = Relu(p{tag}) -> y{tag}: f32[1,6,{hw},{hw}]
  output y{tag}
}}",
        wd = seq(72, 0.37 * k),
        wp = seq(48, 0.71 * k),
    );
    kiln::ir::text::parse(&src).unwrap()
}

fn opts(threads: usize) -> CompileOptions {
    CompileOptions::default().with_threads(threads)
}

#[test]
fn workloads_have_spaces_with_defaults_and_the_threads_knob() {
    let g = block(20, "", 1.0);
    let w = tuning::workloads(&g, &opts(2)).unwrap();
    let fusion: Vec<_> = w.iter().filter(|w| w.family == "fusion").collect();
    assert_eq!(fusion.len(), 1, "one conv pair choice: {w:?}");
    assert_eq!(fusion[0].nodes, vec![0, 1, 2, 3]);
    assert_eq!(fusion[0].space.default_config()["fuse"], Knob::Bool(true));
    for k in w.iter().filter(|w| w.family != "fusion") {
        let t = k.space.knobs.iter().find(|d| d.name == "threads").unwrap();
        assert_eq!(t.choices, vec![Knob::Int(1), Knob::Int(2)]);
        assert_eq!(t.default, Knob::Int(2));
    }
    // One thread: no threads knob, and this small plane is not paired by default.
    let w1 = tuning::workloads(&g, &opts(1)).unwrap();
    assert!(w1
        .iter()
        .all(|w| w.space.knobs.iter().all(|k| k.name != "threads")));
    let f1 = w1.iter().find(|w| w.family == "fusion").unwrap();
    assert_eq!(f1.space.default_config()["fuse"], Knob::Bool(false));
}

#[test]
fn canonical_keys_ignore_names_and_weights_but_not_shapes() {
    let (a, b, c) = (
        block(20, "", 1.0),
        block(20, "_other", 0.3),
        block(21, "", 1.0),
    );
    let key = |g: &Graph| tuning::canonical(g, &[0, 1, 2, 3], "conv pair");
    assert_eq!(key(&a), key(&b));
    assert_ne!(key(&a), key(&c));
    assert_ne!(key(&a), tuning::canonical(&a, &[0, 1, 2, 3], "fusion"));
}

/// Compiles `g` with `config` for the workload of `family`, checks it against
/// the interpreter, and returns the kernel descriptions.
fn compiled_with(g: &Graph, family: &str, config: Config) -> (Vec<String>, usize) {
    let w = tuning::workloads(g, &opts(2)).unwrap();
    let wl = w.iter().find(|w| w.family == family).unwrap();
    wl.space.validate(&config).unwrap();
    let mut t = Tuned::default();
    t.insert(wl.canonical.clone(), config);
    let exe = compile(g, &opts(2).with_tuned(t)).unwrap();
    let f = feeds(g);
    let want = kiln::run(g, &f).unwrap();
    let got = exe.run(&f).unwrap();
    for (x, y) in got[0].to_f64_vec().iter().zip(want[0].to_f64_vec()) {
        assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0), "{x} vs {y}");
    }
    let r = exe.report();
    (
        r.kernels.iter().map(|k| k.kernel.clone()).collect(),
        r.tuned_kernels,
    )
}

#[test]
fn the_fuse_knob_splits_or_joins_the_pair() {
    let g = block(20, "", 1.0);
    let fused =
        |on: bool| compiled_with(&g, "fusion", [("fuse".to_string(), Knob::Bool(on))].into()).0;
    let on = fused(true);
    let off = fused(false);
    assert!(on.iter().any(|k| k.contains('>')), "{on:?}");
    assert!(off.iter().all(|k| !k.contains('>')), "{off:?}");
    assert!(off.len() > on.len());
}

#[test]
fn the_threads_knob_applies_and_is_counted() {
    let g = block(20, "", 1.0);
    let (_, tuned) = compiled_with(
        &g,
        "conv pair",
        [("threads".to_string(), Knob::Int(1))].into(),
    );
    assert_eq!(tuned, 1);
}

#[test]
fn every_point_of_every_space_compiles_to_the_interpreters_result() {
    let g = block(20, "", 1.0);
    for w in tuning::workloads(&g, &opts(2)).unwrap() {
        for i in 0..w.space.size() {
            compiled_with(&g, &w.family, w.space.point(i));
        }
    }
}

#[test]
fn validation_rejects_points_outside_the_space() {
    let s = Space {
        knobs: vec![
            KnobDef::ints("threads", &[1, 2], 2),
            KnobDef::flag("fuse", true),
        ],
    };
    assert_eq!(s.size(), 4);
    assert!(s.validate(&s.default_config()).is_ok());
    let bad: Config = [("threads".to_string(), Knob::Int(3))].into();
    assert!(s.validate(&bad).unwrap_err().contains("threads"));
    let unknown: Config = [("tile".to_string(), Knob::Int(3))].into();
    assert!(s
        .validate(&unknown)
        .unwrap_err()
        .contains("unknown knob `tile`"));
    let all: std::collections::BTreeSet<_> = (0..4).map(|i| format!("{:?}", s.point(i))).collect();
    assert_eq!(all.len(), 4);
}

#[test]
fn subgraph_cuts_out_a_workload_with_its_inputs_and_outputs() {
    let g = block(12, "", 1.0);
    let sub = tuning::subgraph(&g, &[2, 3]).unwrap();
    assert_eq!(sub.inputs().len(), 1, "the clip output becomes an input");
    assert_eq!(sub.outputs().len(), 1);
    assert_eq!(sub.nodes().len(), 2);
    assert_eq!(
        tuning::canonical(&sub, &[0, 1], "conv"),
        tuning::canonical(&g, &[2, 3], "conv")
    );
}

#[test]
fn recurrent_knobs_keep_results() {
    let g = kiln::ir::text::parse(&format!(
        "graph gru {{
  input x: f32[5,1,4]
  const w: f32[1,18,4] = [{w}]
  const r: f32[1,18,6] = [{r}]
  node gru = GRU{{hidden_size=6}}(x, w, r) -> y: f32[5,1,1,6], h: f32[1,1,6]
  output y
}}",
        w = seq(72, 0.3),
        r = seq(108, 0.2)
    ))
    .unwrap();
    let w = tuning::workloads(&g, &opts(2)).unwrap();
    let rec = w.iter().find(|w| w.family == "recurrent").unwrap();
    assert!(rec.space.size() >= 9);
    for i in 0..rec.space.size() {
        compiled_with(&g, "recurrent", rec.space.point(i));
    }
}

#[test]
fn pool_schedule_knobs_keep_results() {
    for (kind, attrs) in [
        (
            "MaxPool",
            "kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]",
        ),
        (
            "AveragePool",
            "kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], count_include_pad=1",
        ),
    ] {
        let out = if attrs.contains("strides=[2, 2]") {
            10
        } else {
            19
        };
        let g = kiln::ir::text::parse(&format!(
            "graph p {{
  input x: f32[1,9,19,19]
  node p = {kind}{{{attrs}}}(x) -> y: f32[1,9,{out},{out}]
  output y
}}"
        ))
        .unwrap();
        let w = tuning::workloads(&g, &opts(2)).unwrap();
        let pool = w.iter().find(|w| w.family == "pool").unwrap();
        assert_eq!(
            pool.space.size(),
            2 * 2 * 2 * 2,
            "direct × bands × planes × threads"
        );
        for i in 0..pool.space.size() {
            let (kernels, tuned) = compiled_with(&g, "pool", pool.space.point(i));
            assert_eq!(tuned, 1, "{kernels:?}");
        }
    }
}

#[test]
fn jit_knobs_keep_results_over_the_space() {
    let g = kiln::ir::text::parse(
        "graph m {
  input x: f32[3,1000]
  node e = Exp(x) -> a: f32[3,1000]
  node t = Tanh(a) -> b: f32[3,1000]
  node m = Mul(b, x) -> y: f32[3,1000]
  output y
}",
    )
    .unwrap();
    let w = tuning::workloads(&g, &opts(2)).unwrap();
    let jit = w.iter().find(|w| w.family == "jit").unwrap();
    let names: Vec<&str> = jit.space.knobs.iter().map(|k| k.name.as_str()).collect();
    assert!(
        names.contains(&"avx512") && names.contains(&"chunk"),
        "{names:?}"
    );
    for i in (0..jit.space.size()).step_by(7) {
        compiled_with(&g, "jit", jit.space.point(i));
    }
}

/// A 5×5 depthwise convolution with ReLU (not paired: nothing follows), then
/// a dense 3×3 convolution that Winograd can run.
fn convs() -> Graph {
    let src = format!(
        "graph convs {{
  input x: f32[1,8,9,9]
  const wd: f32[8,1,5,5] = [{wd}]
  const wc: f32[4,8,3,3] = [{wc}]
  node dw = Conv{{group=8, pads=[2, 2, 2, 2]}}(x, wd) -> d: f32[1,8,9,9]
  node r = Relu(d) -> e: f32[1,8,9,9]
  node c = Conv{{pads=[1, 1, 1, 1]}}(e, wc) -> y: f32[1,4,9,9]
  output y
}}",
        wd = seq(200, 0.29),
        wc = seq(288, 0.53),
    );
    kiln::ir::text::parse(&src).unwrap()
}

#[test]
fn conv_variants_and_depthwise_kernels_are_knobs_that_apply() {
    let g = convs();
    let w = tuning::workloads(&g, &opts(2)).unwrap();
    let conv: Vec<_> = w.iter().filter(|w| w.family == "conv").collect();
    assert_eq!(conv.len(), 2, "{w:?}");
    let names =
        |i: usize| -> Vec<String> { conv[i].space.knobs.iter().map(|k| k.name.clone()).collect() };
    assert!(
        names(0).contains(&"dw_kernel".to_string()),
        "{:?}",
        names(0)
    );
    assert!(names(0).contains(&"variant".to_string()), "{:?}", names(0));
    assert!(
        names(1).contains(&"winograd_block_kib".to_string()),
        "{:?}",
        names(1)
    );
    // Every point of both spaces matches the interpreter, and the chosen
    // variant / depthwise kernel is the one that runs.
    for wl in &conv {
        for i in 0..wl.space.size() {
            let config = wl.space.point(i);
            let mut t = Tuned::default();
            t.insert(wl.canonical.clone(), config.clone());
            let exe = compile(&g, &opts(2).with_tuned(t)).unwrap();
            let f = feeds(&g);
            let want = kiln::run(&g, &f).unwrap()[0].to_f64_vec();
            let got = exe.run(&f).unwrap()[0].to_f64_vec();
            for (x, y) in got.iter().zip(&want) {
                assert!(
                    (x - y).abs() <= 1e-4 * y.abs().max(1.0),
                    "{config:?}: {x} vs {y}"
                );
            }
            let labels: Vec<String> = exe
                .report()
                .kernels
                .iter()
                .map(|k| k.kernel.clone())
                .collect();
            let wanted = match (config.get("variant"), config.get("dw_kernel")) {
                (Some(Knob::Choice(v)), _) if v != "auto" && v != "depthwise" => v.clone(),
                (_, Some(Knob::Choice(k))) if k != "auto" => format!("depthwise/{k}"),
                _ => continue,
            };
            let named = |l: &String| {
                l.contains(&format!(" {wanted}]")) || l.contains(&format!(" {wanted}/"))
            };
            assert!(labels.iter().any(named), "{config:?}: {labels:?}");
            // The im2col GEMM knobs show in the label too.
            if let (Some(Knob::Bool(false)), Some(Knob::Bool(false)), "im2col") = (
                config.get("channel_gemm"),
                config.get("implicit_gemm"),
                wanted.as_str(),
            ) {
                assert!(
                    labels.iter().any(|l| l.contains("im2col/matrix")),
                    "{labels:?}"
                );
            }
        }
    }
}

/// The generated code's schedule choices are knobs of the `jit` family: a
/// transposing copy gets `fuse_loops` and `tile`, a reduction `fuse_loops`
/// and `unroll`, a function-free map `tape_plain_ops`; every point of each
/// space matches the interpreter.
#[test]
fn jit_schedule_choices_are_knobs() {
    let graphs = [
        "graph t {\n  input x: f32[48,40]\n  node n = Transpose(x) -> y: f32[40,48]\n  output y\n}",
        "graph t {\n  input x: f32[6,9,33]\n  node n = ReduceSum{axes=[-1]}(x) -> y: f32[6,9,1]\n  output y\n}",
        "graph t {\n  input x: f32[4,50]\n  node n = Relu(x) -> y: f32[4,50]\n  output y\n}",
    ];
    let wanted = [
        &["fuse_loops", "tile"][..],
        &["fuse_loops", "unroll"],
        &["fuse_loops", "tape_plain_ops"],
    ];
    for (src, want) in graphs.iter().zip(wanted) {
        let g = kiln::ir::text::parse(src).unwrap();
        let w = tuning::workloads(&g, &opts(1)).unwrap();
        let jit = w
            .iter()
            .find(|w| w.family == "jit")
            .expect("a jit workload");
        let names: Vec<&str> = jit.space.knobs.iter().map(|k| k.name.as_str()).collect();
        for n in want {
            assert!(names.contains(n), "{src}: {names:?}");
        }
        let f = feeds(&g);
        let expect = kiln::run(&g, &f).unwrap()[0].to_f64_vec();
        for i in 0..jit.space.size() {
            let config = jit.space.point(i);
            let mut t = Tuned::default();
            t.insert(jit.canonical.clone(), config.clone());
            let exe = compile(&g, &opts(1).with_tuned(t)).unwrap();
            let got = exe.run(&f).unwrap()[0].to_f64_vec();
            for (x, y) in got.iter().zip(&expect) {
                assert!(
                    (x - y).abs() <= 1e-5 * y.abs().max(1.0),
                    "{config:?}: {x} vs {y}"
                );
            }
        }
    }
}
