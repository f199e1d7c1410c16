//! The ONNX importer: decodes a `ModelProto`, builds a Kiln [`Graph`] node by
//! node through the mapping registry, folds constants and checks the result.

use super::ctx::NodeCtx;
use super::proto::{
    attribute_proto::AttributeType, AttributeProto, GraphProto, ModelProto, ValueInfoProto,
};
use super::registry::mappings;
use super::tensor::{dtype_from_onnx, tensor_from_proto};
use crate::{map_err, ImportError, MapError, Result};
use kiln_ir::{Attr, Attrs, Graph, Op, Source, Tensor, TensorType, ValueId};
use prost::Message;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How to import a model.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Shapes for inputs whose ONNX shape has symbolic or unknown dimensions.
    pub input_shapes: HashMap<String, Vec<usize>>,
    /// Known values of graph inputs. An input is specialised to its value (made
    /// a constant) only where the model needs it at compile time, for example
    /// the target shape of a Reshape; otherwise it stays an input. Their shapes
    /// also resolve symbolic dimensions.
    pub input_values: HashMap<String, Tensor>,
    /// Keep graph inputs that shadow an initializer as inputs (the initializer
    /// being only their default). By default they are constants.
    pub overridable_initializers: bool,
    /// Size limits that protect against malformed or hostile models.
    pub limits: Limits,
}

/// Size limits of an import.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest tensor (in elements) any node may produce; larger is an error.
    /// Default 2^31.
    pub max_tensor_elements: usize,
    /// Largest node output (in elements) folded into a constant at import;
    /// larger constant expressions stay nodes. Default 2^24.
    pub max_folded_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tensor_elements: 1 << 31,
            max_folded_elements: 1 << 24,
        }
    }
}

impl ImportOptions {
    pub fn with_input_shape(mut self, name: &str, shape: Vec<usize>) -> Self {
        self.input_shapes.insert(name.to_string(), shape);
        self
    }
    pub fn with_input_value(mut self, name: &str, t: Tensor) -> Self {
        self.input_values.insert(name.to_string(), t);
        self
    }
}

/// An imported model.
#[derive(Clone, Debug)]
pub struct OnnxModel {
    pub graph: Graph,
    /// Imported opsets by domain ("" is ai.onnx).
    pub opsets: BTreeMap<String, i64>,
    pub ir_version: i64,
    pub producer: String,
    /// How many nodes of each ONNX op type the file holds (before folding).
    pub source_ops: BTreeMap<String, usize>,
    /// Elements and bytes of the file's initializers (its parameters).
    pub initializer_stats: (usize, usize),
}

/// Loads an ONNX model file; external data is looked up beside it.
pub fn load(path: impl AsRef<Path>, opts: &ImportOptions) -> Result<OnnxModel> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    from_bytes(&bytes, path, opts)
}

/// Imports a model from bytes; `path` names it in errors and locates external data.
pub fn from_bytes(bytes: &[u8], path: &Path, opts: &ImportOptions) -> Result<OnnxModel> {
    let model = ModelProto::decode(bytes).map_err(|e| ImportError::Decode {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    let merr = |msg: String| ImportError::Model {
        path: path.to_path_buf(),
        msg,
    };
    let mut opsets = BTreeMap::new();
    for o in &model.opset_import {
        let d = match o.domain() {
            "ai.onnx" => "",
            d => d,
        };
        opsets.insert(d.to_string(), o.version());
    }
    if model.opset_import.is_empty() {
        opsets.insert(String::new(), 1);
    }
    let g = model
        .graph
        .as_ref()
        .ok_or_else(|| merr("the model has no graph".into()))?;
    let base = path.parent().map(Path::to_path_buf);
    let mut imp = Importer::new(g.name(), opts.clone(), base, path.to_path_buf());
    imp.import_graph(g, &opsets)?;
    let mut source_ops = BTreeMap::new();
    for n in &g.node {
        *source_ops.entry(n.op_type().to_string()).or_insert(0) += 1;
    }
    let initializer_stats = g.initializer.iter().fold((0, 0), |(n, b), t| {
        let k: usize = t.dims.iter().map(|&d| d.max(0) as usize).product();
        let size = dtype_from_onnx(t.data_type()).map_or(0, |d| d.size_of());
        (n + k, b + k * size)
    });
    Ok(OnnxModel {
        initializer_stats,
        source_ops,
        graph: imp.graph,
        opsets,
        ir_version: model.ir_version(),
        producer: model.producer_name().to_string(),
    })
}

/// State of one import.
pub struct Importer {
    pub(crate) graph: Graph,
    names: HashMap<String, ValueId>,
    opts: ImportOptions,
    known: HashMap<ValueId, Arc<Tensor>>,
    counter: usize,
    base_dir: Option<PathBuf>,
    path: PathBuf,
}

impl Importer {
    fn new(name: &str, opts: ImportOptions, base_dir: Option<PathBuf>, path: PathBuf) -> Importer {
        Importer {
            graph: Graph::new(name),
            names: HashMap::new(),
            opts,
            known: HashMap::new(),
            counter: 0,
            base_dir,
            path,
        }
    }

    fn model_err(&self, msg: String) -> ImportError {
        ImportError::Model {
            path: self.path.clone(),
            msg,
        }
    }

    fn import_graph(&mut self, g: &GraphProto, opsets: &BTreeMap<String, i64>) -> Result<()> {
        if !g.sparse_initializer.is_empty() {
            return Err(self.model_err("sparse initializers are not supported".into()));
        }
        let mut inits = HashMap::new();
        for t in &g.initializer {
            let tensor = tensor_from_proto(t, self.base_dir.as_deref())
                .map_err(|e| self.model_err(format!("initializer `{}`: {e}", t.name())))?;
            inits.insert(t.name().to_string(), tensor);
        }
        for vi in &g.input {
            if inits.contains_key(vi.name()) && !self.opts.overridable_initializers {
                continue;
            }
            let ty = self.input_type(vi)?;
            inits.remove(vi.name());
            let id = self
                .graph
                .add_input(vi.name(), ty)
                .map_err(|e| self.model_err(e.to_string()))?;
            self.names.insert(vi.name().to_string(), id);
        }
        for t in &g.initializer {
            if let Some(tensor) = inits.remove(t.name()) {
                let id = self
                    .graph
                    .add_const(t.name(), tensor)
                    .map_err(|e| self.model_err(e.to_string()))?;
                self.names.insert(t.name().to_string(), id);
            }
        }
        for (k, node) in g.node.iter().enumerate() {
            self.import_node(node, k, opsets)?;
        }
        self.set_outputs(&g.output)?;
        let dead = self.graph.remove_dead_nodes();
        tracing::info!(
            graph = %self.graph.name,
            onnx_nodes = g.node.len(),
            kiln_nodes = self.graph.nodes().len(),
            removed_dead = dead,
            "imported ONNX graph"
        );
        self.graph = self.graph.compacted();
        kiln_ir::verify(&self.graph)
            .map_err(|e| self.model_err(format!("imported graph failed verification: {e}")))?;
        Ok(())
    }

    fn import_node(
        &mut self,
        node: &super::proto::NodeProto,
        k: usize,
        opsets: &BTreeMap<String, i64>,
    ) -> Result<()> {
        let domain = match node.domain() {
            "ai.onnx" => "",
            d => d,
        };
        let name = if node.name().is_empty() {
            format!("{}_{k}", node.op_type())
        } else {
            node.name().to_string()
        };
        let opset = *opsets.get(domain).unwrap_or(&0);
        let unsupported = || ImportError::Unsupported {
            path: self.path.clone(),
            op: node.op_type().to_string(),
            domain: domain.to_string(),
            opset,
            node: name.clone(),
        };
        if !opsets.contains_key(domain) {
            return Err(self.model_err(format!(
                "node `{name}` uses domain `{domain}` that the model does not import"
            )));
        }
        let Some(map) = mappings().lookup(domain, node.op_type(), opset) else {
            return Err(unsupported());
        };
        tracing::debug!(node = %name, op = node.op_type(), opset, "mapping node");
        let attrs = convert_attrs(&node.attribute);
        let op = node.op_type().to_string();
        let path = self.path.clone();
        let mut ctx = NodeCtx {
            imp: self,
            node,
            name: name.clone(),
            attrs,
            opset,
        };
        map(&mut ctx).map_err(|e| match e {
            MapError::Unsupported(msg) => ImportError::Node {
                path: path.clone(),
                node: name.clone(),
                op: format!("{op}, opset {opset}"),
                msg: format!("not supported: {msg}"),
            },
            e => ImportError::Node {
                path: path.clone(),
                node: name.clone(),
                op: format!("{op}, opset {opset}"),
                msg: e.to_string(),
            },
        })
    }

    fn input_type(&self, vi: &ValueInfoProto) -> Result<TensorType> {
        use super::proto::type_proto::Value as TV;
        let err = |m: String| self.model_err(format!("input `{}`: {m}", vi.name()));
        let tt = match vi.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(TV::TensorType(tt)) => tt,
            Some(_) => {
                return Err(err(
                    "only tensor inputs are supported (not sequences, maps or optionals)".into(),
                ))
            }
            None => return Err(err("has no type".into())),
        };
        let dtype = dtype_from_onnx(tt.elem_type()).map_err(|e| err(e.to_string()))?;
        let given = self.opts.input_shapes.get(vi.name()).cloned().or_else(|| {
            self.opts
                .input_values
                .get(vi.name())
                .map(|t| t.shape().to_vec())
        });
        let dims = tt.shape.as_ref().map(|s| s.dim.as_slice()).unwrap_or(&[]);
        if tt.shape.is_none() {
            return given
                .map(|s| TensorType::new(dtype, s))
                .ok_or_else(|| err("has no shape; give one".into()));
        }
        let mut shape = Vec::new();
        for (i, d) in dims.iter().enumerate() {
            use super::proto::tensor_shape_proto::dimension::Value as DV;
            match (&d.value, &given) {
                (Some(DV::DimValue(v)), _) if *v >= 0 => shape.push(*v as usize),
                (_, Some(g)) if g.len() == dims.len() => shape.push(g[i]),
                (Some(DV::DimParam(p)), _) => {
                    return Err(err(format!(
                        "dimension {i} is symbolic (`{p}`); give the input's shape"
                    )))
                }
                _ => {
                    return Err(err(format!(
                        "dimension {i} is unknown; give the input's shape"
                    )))
                }
            }
        }
        if let Some(g) = &given {
            if g != &shape {
                return Err(err(format!(
                    "given shape {g:?} does not match the model's {shape:?}"
                )));
            }
        }
        Ok(TensorType::new(dtype, shape))
    }

    fn set_outputs(&mut self, outs: &[ValueInfoProto]) -> Result<()> {
        let mut ids = Vec::new();
        for o in outs {
            let v = *self.names.get(o.name()).ok_or_else(|| {
                self.model_err(format!("graph output `{}` is never computed", o.name()))
            })?;
            let v = if self.graph.value(v).name == o.name() {
                v
            } else {
                let node = format!("{}::identity", o.name());
                self.graph
                    .add_node(&node, Op::new("Identity"), &[v], &[o.name()])
                    .map_err(|e| self.model_err(e.to_string()))?[0]
            };
            self.check_declared(o, &self.graph.value(v).ty)?;
            ids.push(v);
        }
        self.graph.set_outputs(ids);
        Ok(())
    }

    /// Checks a graph output's declared type (where the model declares one) against inference.
    fn check_declared(&self, o: &ValueInfoProto, got: &TensorType) -> Result<()> {
        use super::proto::tensor_shape_proto::dimension::Value as DV;
        use super::proto::type_proto::Value as TV;
        let Some(TV::TensorType(tt)) = o.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
            return Ok(());
        };
        if let Ok(d) = dtype_from_onnx(tt.elem_type()) {
            if d != got.dtype {
                return Err(self.model_err(format!(
                    "output `{}` is declared {d} but computes {}",
                    o.name(),
                    got.dtype
                )));
            }
        }
        if let Some(s) = &tt.shape {
            let ok = s.dim.len() == got.rank()
                && s.dim
                    .iter()
                    .zip(&got.shape)
                    .all(|(d, &g)| !matches!(d.value, Some(DV::DimValue(v)) if v != g as i64));
            if !ok {
                return Err(self.model_err(format!(
                    "output `{}` is declared with shape {:?} but Kiln infers {}",
                    o.name(),
                    s.dim.iter().map(|d| d.value.clone()).collect::<Vec<_>>(),
                    got
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.opts.limits
    }

    /// The Kiln value an ONNX name refers to.
    pub(crate) fn value_of(&self, name: &str) -> Result<ValueId, MapError> {
        self.names.get(name).copied().ok_or_else(|| map_err!("input `{name}` is not defined before this node (missing initializer or unsorted graph)"))
    }

    pub(crate) fn bind_name(&mut self, name: &str, v: ValueId) {
        self.names.insert(name.to_string(), v);
    }

    pub(crate) fn fresh_name(&mut self, base: &str) -> String {
        loop {
            self.counter += 1;
            let n = format!("{base}::{}", self.counter);
            if self.graph.find(&n).is_none() && !self.names.contains_key(&n) {
                return n;
            }
        }
    }

    /// Adds a node, or folds it into constants when every input is a constant.
    pub(crate) fn add_node(
        &mut self,
        name: &str,
        op: Op,
        inputs: &[ValueId],
        outs: &[String],
    ) -> Result<Vec<ValueId>, MapError> {
        let tys: Vec<&TensorType> = inputs.iter().map(|&i| &self.graph.value(i).ty).collect();
        let out_tys = op.def()?.infer(&op.attrs, &tys, outs.len())?;
        let numel = out_tys.iter().try_fold(0usize, |a, t| {
            t.shape
                .iter()
                .try_fold(1usize, |p, &d| p.checked_mul(d))
                .and_then(|n| a.checked_add(n))
        });
        let numel = match numel {
            Some(n) if n <= self.opts.limits.max_tensor_elements => n,
            _ => {
                return Err(map_err!(
                    "outputs {} exceed the limit of {} elements per tensor",
                    out_tys
                        .iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    self.opts.limits.max_tensor_elements
                ))
            }
        };
        let consts: Option<Vec<Arc<Tensor>>> = inputs
            .iter()
            .map(|&i| self.graph.const_value(i).cloned())
            .collect();
        let out_names: Vec<&str> = outs.iter().map(String::as_str).collect();
        match consts {
            Some(consts) if numel <= self.opts.limits.max_folded_elements => {
                let refs: Vec<&Tensor> = consts.iter().map(|t| t.as_ref()).collect();
                let vals = op.def()?.eval(&op.attrs, &refs, outs.len())?;
                let mut ids = Vec::new();
                for (t, n) in vals.into_iter().zip(&out_names) {
                    ids.push(self.graph.add_const(n, t)?);
                }
                Ok(ids)
            }
            _ => Ok(self.graph.add_node(name, op, inputs, &out_names)?),
        }
    }

    /// The compile-time value of `v`, folding its producers and specialising
    /// graph inputs whose values the options carry. `None` if it has none.
    pub(crate) fn const_of(&mut self, v: ValueId) -> Result<Option<Arc<Tensor>>, MapError> {
        match self.graph.value(v).source.clone() {
            Source::Const(t) => Ok(Some(t)),
            Source::Input => {
                let name = self.graph.value(v).name.clone();
                let Some(t) = self.opts.input_values.get(&name).cloned() else {
                    return Ok(None);
                };
                self.graph.bind_input(v, t)?;
                Ok(self.graph.const_value(v).cloned())
            }
            Source::Node(nid, k) => {
                if let Some(t) = self.known.get(&v) {
                    return Ok(Some(t.clone()));
                }
                let node = self
                    .graph
                    .node(nid)
                    .cloned()
                    .ok_or_else(|| map_err!("dangling producer"))?;
                let mut args = Vec::new();
                for &i in &node.inputs {
                    match self.const_of(i)? {
                        Some(t) => args.push(t),
                        None => return Ok(None),
                    }
                }
                let refs: Vec<&Tensor> = args.iter().map(|t| t.as_ref()).collect();
                let outs = node
                    .op
                    .def()?
                    .eval(&node.op.attrs, &refs, node.outputs.len())?;
                for (o, t) in node.outputs.iter().zip(outs) {
                    self.known.insert(*o, Arc::new(t));
                }
                Ok(self.known.get(&node.outputs[k]).cloned())
            }
        }
    }
}

/// Converts ONNX attributes to Kiln attributes. Graph-valued attributes are
/// skipped: ops that need them (control flow) have no mapping.
pub fn convert_attrs(attrs: &[AttributeProto]) -> Attrs {
    let mut out = Attrs::new();
    for a in attrs {
        let ty = a.r#type();
        let v = match ty {
            AttributeType::Float => Attr::Float(a.f() as f64),
            AttributeType::Int => Attr::Int(a.i()),
            AttributeType::String => Attr::Str(String::from_utf8_lossy(a.s()).into_owned()),
            AttributeType::Floats => Attr::Floats(a.floats.iter().map(|&x| x as f64).collect()),
            AttributeType::Ints => Attr::Ints(a.ints.clone()),
            AttributeType::Strings => Attr::Strs(
                a.strings
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
            ),
            AttributeType::Tensor => match a.t.as_ref().map(|t| tensor_from_proto(t, None)) {
                Some(Ok(t)) => Attr::Tensor(Arc::new(t)),
                _ => continue,
            },
            _ => continue,
        };
        out.set(a.name(), v);
    }
    out
}
