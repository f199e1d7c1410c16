//! ONNX conformance, suite x runtime: runs every official node test (fetched
//! by `scripts/fetch-onnx-tests.sh` into `.conformance/node`) through import
//! and two runtimes, the reference interpreter and the compiled CPU path
//! (`kiln_runtime`, 2 threads), compares with the expected outputs using
//! onnx's tolerances (rtol 1e-3, atol 1e-7; exceptions in `tolerance`),
//! prints `conformance[RUNTIME]: P passed, F failed, U unsupported of N` per
//! runtime, writes a per-op report to `target/conformance-report.txt`, and
//! fails if any case listed in `tests/conformance/expected_pass.txt` does not
//! pass on the interpreter, or if any case the interpreter passes fails on
//! the compiled path.
//!
//! `KILN_CONFORMANCE_UPDATE=1` rewrites the expected-pass list with every case
//! that passes now; `KILN_CONFORMANCE_FILTER=substr` runs only matching cases
//! (and then does not check the list).

use kiln_ir::{interp, Tensor};
use kiln_models::onnx::{self, proto::ModelProto, tensor::read_tensor_pb, ImportOptions};
use kiln_models::ImportError;
use prost::Message;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const RTOL: f64 = 1e-3;
const ATOL: f64 = 1e-7;

/// Per-case tolerance exceptions, each with its reason.
/// - DFT/STFT: the expected outputs come from numpy's float32 FFT and carry
///   about 2e-7 of rounding noise where the exact result is 0; the
///   interpreter computes in f64 and gets the exact 0. atol 1e-6 accepts that
///   noise (values around 1 are still checked at rtol 1e-3).
fn tolerance(case: &str) -> (f64, f64) {
    if case.starts_with("test_dft") || case.starts_with("test_stft") {
        (RTOL, 1e-6)
    } else {
        (RTOL, ATOL)
    }
}

#[derive(Debug, Clone)]
enum Outcome {
    Pass,
    Fail(String),
    Unsupported(String),
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What the harness needs of a case's model, decoded once.
struct ModelInfo {
    /// Graph inputs that are not initializers, in order.
    inputs: Vec<String>,
    /// Op types of the nodes, in order.
    ops: Vec<String>,
    /// The first input or output that is not a tensor (sequence, optional, map).
    non_tensor: Option<String>,
}

fn model_info(model_path: &Path) -> Result<ModelInfo, String> {
    use kiln_models::onnx::proto::type_proto::Value;
    let bytes = std::fs::read(model_path).map_err(|e| e.to_string())?;
    let m = ModelProto::decode(bytes.as_slice()).map_err(|e| e.to_string())?;
    let g = m.graph.unwrap_or_default();
    let inits: BTreeSet<&str> = g.initializer.iter().map(|t| t.name()).collect();
    let inputs = g
        .input
        .iter()
        .map(|i| i.name().to_string())
        .filter(|n| !inits.contains(n.as_str()))
        .collect();
    let ops = g.node.iter().map(|n| n.op_type().to_string()).collect();
    let non_tensor =
        g.input
            .iter()
            .chain(&g.output)
            .find_map(|v| match v.r#type.as_ref()?.value.as_ref()? {
                Value::TensorType(_) => None,
                Value::SequenceType(_) => Some(format!("`{}` is a sequence value", v.name())),
                Value::OptionalType(_) => Some(format!("`{}` is an optional value", v.name())),
                _ => Some(format!("`{}` is not a tensor", v.name())),
            });
    Ok(ModelInfo {
        inputs,
        ops,
        non_tensor,
    })
}

fn read_set(dir: &Path, prefix: &str) -> Result<Vec<Tensor>, ImportError> {
    let mut out = Vec::new();
    for k in 0.. {
        let p = dir.join(format!("{prefix}_{k}.pb"));
        if !p.exists() {
            break;
        }
        out.push(read_tensor_pb(&p)?.1);
    }
    Ok(out)
}

fn close(a: &Tensor, b: &Tensor, (rtol, atol): (f64, f64)) -> Result<(), String> {
    if a.dtype() != b.dtype() || a.shape() != b.shape() {
        return Err(format!("got {}, expected {}", a.ty(), b.ty()));
    }
    if let (Ok(x), Ok(y)) = (a.as_strings(), b.as_strings()) {
        return match x.iter().zip(y).position(|(p, q)| p != q) {
            None => Ok(()),
            Some(i) => Err(format!("element {i}: got {:?}, expected {:?}", x[i], y[i])),
        };
    }
    let (x, y) = (a.to_f64_vec(), b.to_f64_vec());
    for (i, (&p, &q)) in x.iter().zip(&y).enumerate() {
        let ok = (p.is_nan() && q.is_nan()) || p == q || (p - q).abs() <= atol + rtol * q.abs();
        if !ok {
            return Err(format!("element {i}: got {p}, expected {q}"));
        }
    }
    Ok(())
}

/// Kernels the compiled runtime used over the whole suite, by family.
static KERNEL_KINDS: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

/// Nodes the compiled runtime left on the interpreter, by op kind.
static FALLBACK_OPS: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

/// The runtimes of the matrix, in report order.
const RUNTIMES: [&str; 2] = ["interpreter", "compiled"];

/// Outcome on each runtime of [`RUNTIMES`].
type Outcomes = [Outcome; 2];

fn both(o: Outcome) -> Outcomes {
    [o.clone(), o]
}

fn compiled_run(
    g: &kiln_ir::Graph,
    feeds: &HashMap<String, Tensor>,
) -> Result<Vec<Tensor>, String> {
    let opts = kiln_runtime::CompileOptions::default().with_threads(2);
    let exe = kiln_runtime::compile(g, &opts).map_err(|e| format!("compile: {e}"))?;
    let mut kinds = KERNEL_KINDS.lock().unwrap_or_else(|e| e.into_inner());
    for k in &exe.report().kernels {
        let family = k.kernel.split('[').next().unwrap_or("?").to_string();
        *kinds.entry(family).or_default() += 1;
    }
    drop(kinds);
    let mut ops = FALLBACK_OPS.lock().unwrap_or_else(|e| e.into_inner());
    for (op, n) in &exe.report().fallbacks {
        *ops.entry(op.clone()).or_default() += n;
    }
    drop(ops);
    exe.run(feeds).map_err(|e| format!("run: {e}"))
}

fn check_outputs(outs: &[Tensor], expected: &[Tensor], case: &str) -> Outcome {
    if outs.len() != expected.len() {
        return Outcome::Fail(format!(
            "{} outputs, expected {}",
            outs.len(),
            expected.len()
        ));
    }
    for (k, (o, e)) in outs.iter().zip(expected).enumerate() {
        if let Err(msg) = close(o, e, tolerance(case)) {
            return Outcome::Fail(format!("output {k}: {msg}"));
        }
    }
    Outcome::Pass
}

fn run_case(dir: &Path, info: &ModelInfo) -> Outcomes {
    let model_path = dir.join("model.onnx");
    if let Some(port) = &info.non_tensor {
        return both(Outcome::Unsupported(format!(
            "{port}: Kiln graphs carry tensors only"
        )));
    }
    let names = &info.inputs;
    let mut sets: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    sets.sort();
    let mut verdict = both(Outcome::Pass);
    if sets.is_empty() {
        return both(Outcome::Fail("no test data set".into()));
    }
    for set in sets {
        let inputs = match read_set(&set, "input") {
            Ok(v) => v,
            Err(e) => return both(Outcome::Unsupported(format!("input data: {e}"))),
        };
        let expected = match read_set(&set, "output") {
            Ok(v) => v,
            Err(e) => return both(Outcome::Unsupported(format!("output data: {e}"))),
        };
        let feeds: HashMap<String, Tensor> = names.iter().cloned().zip(inputs).collect();
        let opts = ImportOptions {
            input_values: feeds.clone(),
            ..Default::default()
        };
        let model = match onnx::load(&model_path, &opts) {
            Ok(m) => m,
            Err(e @ ImportError::Unsupported { .. }) => {
                return both(Outcome::Unsupported(e.to_string()))
            }
            Err(e) if e.to_string().contains("not supported") => {
                return both(Outcome::Unsupported(e.to_string()))
            }
            Err(e) => return both(Outcome::Fail(format!("import: {e}"))),
        };
        let g = &model.graph;
        let live: HashMap<String, Tensor> = feeds
            .into_iter()
            .filter(|(n, _)| g.inputs().iter().any(|&i| &g.value(i).name == n))
            .collect();
        let case = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let interpreted = match interp::run(g, &live) {
            Ok(o) => check_outputs(&o, &expected, &case),
            Err(e) => Outcome::Fail(format!("run: {e}")),
        };
        let compiled = match compiled_run(g, &live) {
            Ok(o) => check_outputs(&o, &expected, &case),
            Err(e) => Outcome::Fail(e),
        };
        for (k, o) in [&interpreted, &compiled].into_iter().enumerate() {
            if !matches!(o, Outcome::Pass) {
                verdict[k] = o.clone();
            }
        }
    }
    verdict
}
fn op_key(dir: &Path, info: &ModelInfo) -> String {
    match &info.ops {
        ops if ops.len() == 1 => ops[0].clone(),
        ops => {
            let name = dir.file_name().unwrap().to_string_lossy();
            let first = ops
                .iter()
                .find(|o| *o != "Constant")
                .cloned()
                .unwrap_or_default();
            if name.contains("expanded") {
                format!(
                    "(expanded) {}",
                    name.trim_start_matches("test_")
                        .split('_')
                        .next()
                        .unwrap_or("")
                )
            } else {
                first
            }
        }
    }
}

fn main() {
    let data = root().join(".conformance/node");
    if !data.join(".complete").exists() {
        eprintln!("conformance data missing: run scripts/fetch-onnx-tests.sh first");
        std::process::exit(1);
    }
    let filter = std::env::var("KILN_CONFORMANCE_FILTER").ok();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&data)
        .expect("read conformance dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter(|p| {
            filter.as_ref().is_none_or(|f| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .contains(f.as_str())
            })
        })
        .collect();
    cases.sort();
    let total = cases.len();
    let results: Mutex<BTreeMap<String, (String, Outcomes)>> = Mutex::new(BTreeMap::new());
    let next = Mutex::new(0usize);
    std::panic::set_hook(Box::new(|_| {}));
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    *n += 1;
                    *n - 1
                };
                let Some(dir) = cases.get(i) else { break };
                let info = match model_info(&dir.join("model.onnx")) {
                    Ok(i) => i,
                    Err(e) => {
                        let name = dir.file_name().unwrap().to_string_lossy().to_string();
                        let fail = both(Outcome::Fail(format!("cannot read model: {e}")));
                        results.lock().unwrap().insert(name, ("?".into(), fail));
                        continue;
                    }
                };
                let outcome =
                    std::panic::catch_unwind(|| run_case(dir, &info)).unwrap_or_else(|p| {
                        both(Outcome::Fail(format!(
                            "panic: {}",
                            p.downcast_ref::<String>()
                                .cloned()
                                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_default()
                        )))
                    });
                let name = dir.file_name().unwrap().to_string_lossy().to_string();
                results
                    .lock()
                    .unwrap()
                    .insert(name, (op_key(dir, &info), outcome));
            });
        }
    });
    let _ = std::panic::take_hook();
    let results = results.into_inner().unwrap();
    report(&results, total, filter.is_some());
}

/// Pass / fail / unsupported counts.
#[derive(Default, Clone, Copy)]
struct Counts([usize; 3]);

impl Counts {
    fn add(&mut self, o: &Outcome) {
        self.0[match o {
            Outcome::Pass => 0,
            Outcome::Fail(_) => 1,
            Outcome::Unsupported(_) => 2,
        }] += 1;
    }
}

fn report(results: &BTreeMap<String, (String, Outcomes)>, total: usize, filtered: bool) {
    let mut per_op: BTreeMap<&str, [Counts; 2]> = BTreeMap::new();
    let mut totals = [Counts::default(); 2];
    let mut lines = Vec::new();
    for (name, (op, outcomes)) in results {
        let e = per_op.entry(op).or_default();
        for (k, o) in outcomes.iter().enumerate() {
            e[k].add(o);
            totals[k].add(o);
            let tag = if k == 0 {
                String::new()
            } else {
                format!("[{}]", RUNTIMES[k])
            };
            match o {
                Outcome::Pass => {}
                Outcome::Fail(m) => lines.push(format!("FAIL{tag} {name}: {m}")),
                Outcome::Unsupported(m) if k == 0 => lines.push(format!("UNSUPPORTED {name}: {m}")),
                Outcome::Unsupported(_) => {}
            }
        }
    }
    let mut text = String::from(
        "op                                   interpreter: pass  fail  unsup | compiled: pass  fail\n",
    );
    for (op, [a, b]) in &per_op {
        let ([p, f, u], [cp, cf, _]) = (a.0, b.0);
        text.push_str(&format!("{op:36} {p:18} {f:5} {u:6} | {cp:14} {cf:5}\n"));
    }
    text.push('\n');
    text.push_str(&lines.join("\n"));
    let report_path = root().join("target/conformance-report.txt");
    let _ = std::fs::create_dir_all(root().join("target"));
    let _ = std::fs::write(&report_path, text);
    println!("per-op report: {}", report_path.display());

    let list_path = root().join("tests/conformance/expected_pass.txt");
    let passing: BTreeSet<&str> = results
        .iter()
        .filter(|(_, (_, o))| matches!(o[0], Outcome::Pass))
        .map(|(n, _)| n.as_str())
        .collect();
    if std::env::var("KILN_CONFORMANCE_UPDATE").is_ok_and(|v| v == "1") && !filtered {
        let body: String = passing.iter().map(|n| format!("{n}\n")).collect();
        std::fs::write(&list_path, body).expect("write expected-pass list");
        println!("wrote {} cases to {}", passing.len(), list_path.display());
    }
    let expected: Vec<String> = std::fs::read_to_string(&list_path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    let regressions: Vec<&String> = expected
        .iter()
        .filter(|n| results.contains_key(n.as_str()) && !passing.contains(n.as_str()))
        .collect();
    let new: Vec<&&str> = passing
        .iter()
        .filter(|n| !expected.iter().any(|e| e == **n))
        .collect();
    for (k, rt) in RUNTIMES.iter().enumerate() {
        let [p, f, u] = totals[k].0;
        println!("conformance[{rt}]: {p} passed, {f} failed, {u} unsupported of {total}");
    }
    let kinds = KERNEL_KINDS.lock().unwrap_or_else(|e| e.into_inner());
    let listed: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!("compiled kernels over the suite: {}", listed.join(", "));
    drop(kinds);
    let ops = FALLBACK_OPS.lock().unwrap_or_else(|e| e.into_inner());
    let listed: Vec<String> = ops.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "interpreter fallbacks over the suite, by op: {}",
        listed.join(", ")
    );
    drop(ops);
    if !new.is_empty() {
        println!("{} passing cases are not on the expected-pass list (KILN_CONFORMANCE_UPDATE=1 adds them)", new.len());
    }
    let compiled_gaps: Vec<&String> = results
        .iter()
        .filter(|(_, (_, o))| matches!(o[0], Outcome::Pass) && !matches!(o[1], Outcome::Pass))
        .map(|(n, _)| n)
        .collect();
    let mut failed = false;
    for r in &regressions {
        let (_, o) = &results[r.as_str()];
        println!("REGRESSION {r}: {:?}", o[0]);
        failed = true;
    }
    for r in &compiled_gaps {
        let (_, o) = &results[r.as_str()];
        println!("COMPILED FAILS {r}: {:?}", o[1]);
        failed = true;
    }
    if !regressions.is_empty() {
        println!(
            "{} cases on the expected-pass list no longer pass",
            regressions.len()
        );
    }
    if !compiled_gaps.is_empty() {
        println!(
            "{} cases pass on the interpreter but not compiled",
            compiled_gaps.len()
        );
    }
    if failed {
        std::process::exit(1);
    }
    if !filtered && expected.iter().any(|n| !results.contains_key(n.as_str())) {
        println!("the expected-pass list names cases that do not exist");
        std::process::exit(1);
    }
}
