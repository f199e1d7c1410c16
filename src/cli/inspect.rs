//! `kiln inspect MODEL [--json]`.

use anyhow::Result;
use kiln_ir::Graph;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The ONNX model file.
    model: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Port {
    name: String,
    dtype: String,
    shape: Vec<usize>,
}

#[derive(Serialize)]
struct Report {
    model: String,
    producer: String,
    ir_version: i64,
    opsets: BTreeMap<String, i64>,
    inputs: Vec<Port>,
    outputs: Vec<Port>,
    onnx_nodes: usize,
    onnx_ops: BTreeMap<String, usize>,
    kiln_nodes: usize,
    kiln_ops: BTreeMap<String, usize>,
    /// Elements and bytes of the file's initializers.
    parameters: usize,
    parameter_bytes: usize,
    /// Elements and bytes of all constants after import (folded ones included).
    constants: usize,
    constant_bytes: usize,
}

fn ports(g: &Graph, ids: &[kiln_ir::ValueId]) -> Vec<Port> {
    ids.iter()
        .map(|&i| {
            let v = g.value(i);
            Port {
                name: v.name.clone(),
                dtype: v.ty.dtype.to_string(),
                shape: v.ty.shape.clone(),
            }
        })
        .collect()
}

pub fn run(a: Args) -> Result<()> {
    let m = kiln_models::onnx::load(&a.model, &Default::default())?;
    let g = &m.graph;
    let mut kiln_ops = BTreeMap::new();
    for n in g.nodes() {
        *kiln_ops.entry(n.op.kind.clone()).or_insert(0) += 1;
    }
    let (parameters, parameter_bytes) = m.initializer_stats;
    let (constants, constant_bytes) = g.param_stats();
    let r = Report {
        model: a.model.display().to_string(),
        producer: m.producer.clone(),
        ir_version: m.ir_version,
        opsets: m
            .opsets
            .iter()
            .map(|(d, v)| {
                (
                    if d.is_empty() {
                        "ai.onnx".to_string()
                    } else {
                        d.clone()
                    },
                    *v,
                )
            })
            .collect(),
        inputs: ports(g, g.inputs()),
        outputs: ports(g, g.outputs()),
        onnx_nodes: m.source_ops.values().sum(),
        onnx_ops: m.source_ops.clone(),
        kiln_nodes: g.nodes().len(),
        kiln_ops,
        parameters,
        parameter_bytes,
        constants,
        constant_bytes,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print_text(&r);
    }
    Ok(())
}

fn print_text(r: &Report) {
    let opsets: Vec<String> = r.opsets.iter().map(|(d, v)| format!("{d} {v}")).collect();
    println!("model      {}", r.model);
    println!(
        "producer   {} (ONNX IR version {}), opsets: {}",
        if r.producer.is_empty() {
            "?"
        } else {
            &r.producer
        },
        r.ir_version,
        opsets.join(", ")
    );
    for (title, ports) in [("inputs", &r.inputs), ("outputs", &r.outputs)] {
        println!("{title}");
        for p in ports {
            println!("  {:<24} {}{:?}", p.name, p.dtype, p.shape);
        }
    }
    println!(
        "parameters {} ({:.2} MB); {} constant elements ({:.2} MB) after folding",
        r.parameters,
        r.parameter_bytes as f64 / 1e6,
        r.constants,
        r.constant_bytes as f64 / 1e6
    );
    println!(
        "ONNX nodes {} -> Kiln nodes {} after constant folding",
        r.onnx_nodes, r.kiln_nodes
    );
    println!("ONNX op histogram");
    let mut ops: Vec<(&String, &usize)> = r.onnx_ops.iter().collect();
    ops.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (op, n) in ops {
        println!("  {op:<24} {n}");
    }
}
