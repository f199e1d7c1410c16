//! Tuning knobs: every speed decision of a compiled step is a knob of its
//! *workload* (a fusion group identified by its canonical form), with
//! today's choice as the default.
//!
//! - [`Space`]: the knobs of one workload, each a finite list of choices;
//!   points outside it are rejected by [`Space::validate`], not by a crash.
//! - [`Config`]: one point of a space (knob name → value).
//! - [`Tuned`]: configs by canonical workload bytes, passed to `compile`
//!   through [`CompileOptions::tuned`]; a workload without an entry keeps
//!   its defaults.
//! - [`workloads`]: the tunable workloads of a graph, each with its space and
//!   the nodes it covers ([`subgraph`] cuts them out for measurement).
//!
//! Every step has the `threads` knob (a small kernel may run faster on fewer
//! threads than the pool has); kernel families add their own (see
//! `kernels::knobs`), and the fusion plan adds a `fuse` knob for each conv
//! pair or block it could form.

use crate::fusion::{self, Pattern};
use crate::kernels;
use crate::{CompileOptions, Result};
use kiln_ir::{Graph, Source, ValueId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

/// One knob value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Knob {
    Bool(bool),
    Int(i64),
    Choice(String),
}

impl std::fmt::Display for Knob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Knob::Bool(b) => write!(f, "{b}"),
            Knob::Int(i) => write!(f, "{i}"),
            Knob::Choice(s) => write!(f, "{s}"),
        }
    }
}

/// A knob: its name, the values it may take, and today's default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnobDef {
    pub name: String,
    pub choices: Vec<Knob>,
    pub default: Knob,
}

impl KnobDef {
    /// A knob over `choices` (deduplicated, the default included).
    pub fn new(name: &str, mut choices: Vec<Knob>, default: Knob) -> KnobDef {
        if !choices.contains(&default) {
            choices.push(default.clone());
        }
        choices.sort();
        choices.dedup();
        KnobDef {
            name: name.to_string(),
            choices,
            default,
        }
    }

    /// A yes/no knob.
    pub fn flag(name: &str, default: bool) -> KnobDef {
        KnobDef::new(
            name,
            vec![Knob::Bool(false), Knob::Bool(true)],
            Knob::Bool(default),
        )
    }

    /// An integer knob over `choices`.
    pub fn ints(name: &str, choices: &[i64], default: i64) -> KnobDef {
        let c = choices.iter().map(|&v| Knob::Int(v)).collect();
        KnobDef::new(name, c, Knob::Int(default))
    }
}

/// One point of a space.
pub type Config = BTreeMap<String, Knob>;

/// The knobs of a workload.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Space {
    pub knobs: Vec<KnobDef>,
}

impl Space {
    /// Every knob at its default.
    pub fn default_config(&self) -> Config {
        self.knobs
            .iter()
            .map(|k| (k.name.clone(), k.default.clone()))
            .collect()
    }

    /// Number of points (saturating).
    pub fn size(&self) -> usize {
        self.knobs
            .iter()
            .fold(1usize, |n, k| n.saturating_mul(k.choices.len()))
    }

    /// Checks that `c` names only knobs of this space, each with one of its choices.
    pub fn validate(&self, c: &Config) -> std::result::Result<(), String> {
        for (name, v) in c {
            let Some(k) = self.knobs.iter().find(|k| &k.name == name) else {
                return Err(format!("unknown knob `{name}`"));
            };
            if !k.choices.contains(v) {
                return Err(format!("knob `{name}` cannot be {v}"));
            }
        }
        Ok(())
    }

    /// The `i`-th point in mixed-radix order (knob 0 varies fastest).
    pub fn point(&self, mut i: usize) -> Config {
        let mut c = Config::new();
        for k in &self.knobs {
            let n = k.choices.len().max(1);
            c.insert(k.name.clone(), k.choices[i % n].clone());
            i /= n;
        }
        c
    }
}

/// Tuned configs by canonical workload bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tuned {
    configs: HashMap<Vec<u8>, Config>,
}

impl Tuned {
    /// Uses `config` for the workload whose canonical form is `canonical`.
    pub fn insert(&mut self, canonical: Vec<u8>, config: Config) {
        self.configs.insert(canonical, config);
    }

    /// The config for a workload, if tuned.
    pub fn get(&self, canonical: &[u8]) -> Option<&Config> {
        self.configs.get(canonical)
    }

    pub fn len(&self) -> usize {
        self.configs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.configs.is_empty()
    }
}

/// A tunable workload of a graph.
#[derive(Clone, Debug)]
pub struct Workload {
    /// The kernel family (the builder that takes it, or `fusion`).
    pub family: String,
    /// Canonical form: ops, attributes, types and wiring, no names or weights.
    pub canonical: Vec<u8>,
    pub space: Space,
    /// The graph nodes it covers, in order.
    pub nodes: Vec<usize>,
    /// How many steps of the model it is (identical workloads are merged).
    pub uses: usize,
}

impl Workload {
    /// The canonical form as text (it is UTF-8).
    pub fn canonical_text(&self) -> String {
        String::from_utf8_lossy(&self.canonical).into_owned()
    }
}

/// The canonical form of `nodes` of `g` for kernel family `family`: op kinds,
/// attributes, input and output types, which inputs are constants, and how
/// the nodes read each other. Names and constant values are left out, so two
/// layers of the same shape share a workload.
pub fn canonical(g: &Graph, nodes: &[usize], family: &str) -> Vec<u8> {
    let mut s = format!("family {family}\n");
    let mut ext: HashMap<ValueId, usize> = HashMap::new();
    let mut made: HashMap<ValueId, (usize, usize)> = HashMap::new();
    for (i, &p) in nodes.iter().enumerate() {
        let n = &g.nodes()[p];
        let _ = write!(s, "{}{:?}(", n.op.kind, n.op.attrs.0);
        for &v in &n.inputs {
            let val = g.value(v);
            match (&val.source, made.get(&v)) {
                (_, Some((j, k))) => {
                    let _ = write!(s, "n{j}.{k} ");
                }
                (Source::Const(_), None) => {
                    let _ = write!(s, "c:{} ", val.ty);
                }
                _ => {
                    let next = ext.len();
                    let e = *ext.entry(v).or_insert(next);
                    let _ = write!(s, "x{e}:{} ", val.ty);
                }
            }
        }
        s.push_str(") -> ");
        for (k, &o) in n.outputs.iter().enumerate() {
            made.insert(o, (i, k));
            let _ = write!(s, "{} ", g.value(o).ty);
        }
        s.push('\n');
    }
    s.into_bytes()
}

/// The config `opts` carries for the workload of `nodes` of `g` built by
/// `family`, if any (no canonical form is made when `opts` carries none).
pub(crate) fn config<'a>(
    opts: &'a CompileOptions,
    g: &Graph,
    nodes: &[usize],
    family: &str,
) -> Option<&'a Config> {
    if opts.tuned.is_empty() {
        return None;
    }
    opts.tuned.get(&canonical(g, nodes, family))
}

/// A knob's value in a config, if set.
pub(crate) fn knob<'a>(c: Option<&'a Config>, name: &str) -> Option<&'a Knob> {
    c.and_then(|c| c.get(name))
}

/// An integer knob's value, if set to an integer.
pub(crate) fn int_knob(c: Option<&Config>, name: &str) -> Option<i64> {
    match knob(c, name) {
        Some(Knob::Int(v)) => Some(*v),
        _ => None,
    }
}

/// A yes/no knob's value, if set to one.
pub(crate) fn flag_knob(c: Option<&Config>, name: &str) -> Option<bool> {
    match knob(c, name) {
        Some(Knob::Bool(v)) => Some(*v),
        _ => None,
    }
}

/// The `threads` knob of any step: 1 to the pool's size.
pub(crate) fn threads_knob(opts: &CompileOptions) -> Option<KnobDef> {
    let t = opts.threads as i64;
    (t > 1).then(|| KnobDef::ints("threads", &(1..=t).collect::<Vec<_>>(), t))
}

/// The tunable workloads of `g` compiled with `opts` (defaults, ignoring
/// `opts.tuned`), identical ones merged, in plan order.
pub fn workloads(g: &Graph, opts: &CompileOptions) -> Result<Vec<Workload>> {
    let opts = CompileOptions {
        tuned: Default::default(),
        ..opts.clone()
    };
    let plan = fusion::plan(g, &opts);
    let mut out: Vec<Workload> = Vec::new();
    let mut add = |w: Workload| match out.iter_mut().find(|o| o.canonical == w.canonical) {
        Some(o) => o.uses += 1,
        None => out.push(w),
    };
    for choice in &plan.choices {
        add(Workload {
            family: "fusion".into(),
            canonical: canonical(g, &choice.nodes, "fusion"),
            space: Space {
                knobs: vec![KnobDef::flag("fuse", choice.fused)],
            },
            nodes: choice.nodes.clone(),
            uses: 1,
        });
    }
    for group in plan.groups.iter().filter(|gr| gr.pattern != Pattern::Alias) {
        for (family, nodes, knobs) in kernels::spaces(g, group, &opts)? {
            let knobs: Vec<KnobDef> = threads_knob(&opts).into_iter().chain(knobs).collect();
            if knobs.is_empty() {
                continue;
            }
            add(Workload {
                canonical: canonical(g, &nodes, family),
                family: family.to_string(),
                space: Space { knobs },
                nodes,
                uses: 1,
            });
        }
    }
    Ok(out)
}

/// The nodes `nodes` of `g` as a graph of their own: values read from
/// outside become inputs (constants stay constants), values read outside the
/// nodes (or graph outputs) become outputs.
pub fn subgraph(g: &Graph, nodes: &[usize]) -> Result<Graph> {
    let mut sub = Graph::new(&format!("{}_part", g.name));
    let mut map: HashMap<ValueId, ValueId> = HashMap::new();
    let inside: std::collections::HashSet<usize> = nodes.iter().copied().collect();
    for &p in nodes {
        let n = &g.nodes()[p];
        let mut ins = Vec::with_capacity(n.inputs.len());
        for &v in &n.inputs {
            if let Some(&m) = map.get(&v) {
                ins.push(m);
                continue;
            }
            let val = g.value(v);
            let m = match &val.source {
                Source::Const(t) => sub.add_const(&val.name, t.clone())?,
                _ => sub.add_input(&val.name, val.ty.clone())?,
            };
            map.insert(v, m);
            ins.push(m);
        }
        let names: Vec<&str> = n
            .outputs
            .iter()
            .map(|&o| g.value(o).name.as_str())
            .collect();
        let outs = sub.add_node(&n.name, n.op.clone(), &ins, &names)?;
        n.outputs.iter().zip(outs).for_each(|(&o, m)| {
            map.insert(o, m);
        });
    }
    let read_outside = |v: ValueId| {
        g.outputs().contains(&v)
            || g.nodes()
                .iter()
                .enumerate()
                .any(|(p, n)| !inside.contains(&p) && n.inputs.contains(&v))
    };
    let outs: Vec<ValueId> = nodes
        .iter()
        .flat_map(|&p| g.nodes()[p].outputs.iter().copied())
        .filter(|&v| read_outside(v))
        .map(|v| map[&v])
        .collect();
    sub.set_outputs(outs);
    Ok(sub)
}

/// The group of a conv pair or block choice, for the fusion knob.
pub(crate) fn fuse_choice(opts: &CompileOptions, g: &Graph, nodes: &[usize]) -> Option<bool> {
    flag_knob(config(opts, g, nodes, "fusion"), "fuse")
}
