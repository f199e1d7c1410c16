//! `NodeCtx`: what a mapping function sees of the ONNX node it maps, and how it
//! adds Kiln nodes to the graph being built.

use super::import::Importer;
use super::proto::NodeProto;
use crate::{map_err, MapError};
use kiln_ir::{Attrs, DType, Op, Tensor, TensorType, ValueId};
use std::sync::Arc;

/// One ONNX node being mapped.
pub struct NodeCtx<'a> {
    pub(crate) imp: &'a mut Importer,
    pub(crate) node: &'a NodeProto,
    pub(crate) name: String,
    pub(crate) attrs: Attrs,
    /// The opset version of the node's domain that the model imports.
    pub opset: i64,
}

impl NodeCtx<'_> {
    /// The ONNX op type.
    pub fn op_type(&self) -> &str {
        self.node.op_type()
    }
    /// The node's name (generated when the model has none).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The node's ONNX attributes, converted (graph attributes are left out).
    pub fn attrs(&self) -> &Attrs {
        &self.attrs
    }
    /// Number of input slots, including empty optional ones.
    pub fn num_inputs(&self) -> usize {
        self.node.input.len()
    }
    /// Number of output slots, up to the last one that is named.
    pub fn num_outputs(&self) -> usize {
        self.node
            .output
            .iter()
            .rposition(|o| !o.is_empty())
            .map_or(0, |p| p + 1)
    }
    /// True when output `i` exists and is named (used downstream or as a graph output).
    pub fn has_output(&self, i: usize) -> bool {
        self.node.output.get(i).is_some_and(|o| !o.is_empty())
    }

    /// Input `i`, or `None` when absent or empty (an omitted optional input).
    pub fn opt_input(&self, i: usize) -> Result<Option<ValueId>, MapError> {
        match self.node.input.get(i).map(String::as_str) {
            None | Some("") => Ok(None),
            Some(n) => self.imp.value_of(n).map(Some),
        }
    }
    /// Input `i`, which must be present.
    pub fn input(&self, i: usize) -> Result<ValueId, MapError> {
        self.opt_input(i)?
            .ok_or_else(|| map_err!("required input {i} is missing"))
    }
    /// All present inputs in order; an error if an empty optional input is followed by a present one.
    pub fn inputs(&self) -> Result<Vec<ValueId>, MapError> {
        let mut out = Vec::new();
        let mut gap = false;
        for i in 0..self.num_inputs() {
            match self.opt_input(i)? {
                Some(v) if gap => {
                    let _ = v;
                    return Err(MapError::Unsupported(format!(
                        "omitted optional input before input {i}"
                    )));
                }
                Some(v) => out.push(v),
                None => gap = true,
            }
        }
        Ok(out)
    }
    /// The static type of a value.
    pub fn ty(&self, v: ValueId) -> &TensorType {
        &self.imp.graph.value(v).ty
    }
    /// The static type of input `i`.
    pub fn input_type(&self, i: usize) -> Result<TensorType, MapError> {
        Ok(self.ty(self.input(i)?).clone())
    }

    /// The compile-time value of input `i` (`None` when the input is absent).
    /// Inputs computed from constants are folded; a graph input is specialised
    /// when the import options carry its value. Anything else is an error,
    /// since Kiln compiles static shapes.
    pub fn const_input(&mut self, i: usize) -> Result<Option<Arc<Tensor>>, MapError> {
        let Some(v) = self.opt_input(i)? else {
            return Ok(None);
        };
        match self.imp.const_of(v)? {
            Some(t) => Ok(Some(t)),
            None => Err(MapError::Unsupported(format!(
                "input {i} (`{}`) must be known at compile time: Kiln compiles static shapes and this value is computed at run time",
                self.node.input[i]
            ))),
        }
    }
    /// The compile-time value of input `i` as integers.
    pub fn const_ints(&mut self, i: usize) -> Result<Option<Vec<i64>>, MapError> {
        Ok(match self.const_input(i)? {
            Some(t) => Some(t.to_i64_vec()?),
            None => None,
        })
    }
    /// The compile-time value of value `v`, if it has one (no error).
    pub fn try_const(&mut self, v: ValueId) -> Result<Option<Arc<Tensor>>, MapError> {
        self.imp.const_of(v)
    }

    /// Adds a Kiln node whose outputs are this ONNX node's outputs.
    pub fn emit(&mut self, op: Op, inputs: &[ValueId]) -> Result<Vec<ValueId>, MapError> {
        let n = self.num_outputs().max(1);
        let names: Vec<String> = (0..n)
            .map(|k| match self.node.output.get(k).map(String::as_str) {
                Some(s) if !s.is_empty() => s.to_string(),
                _ => self.imp.fresh_name(&self.name),
            })
            .collect();
        let outs = self.imp.add_node(&self.name, op, inputs, &names)?;
        for (k, &o) in outs.iter().enumerate() {
            if self.has_output(k) {
                self.imp.bind_name(&self.node.output[k], o);
            }
        }
        Ok(outs)
    }
    /// Adds an intermediate Kiln node with `n_out` outputs and generated names.
    pub fn emit_tmp(
        &mut self,
        op: Op,
        inputs: &[ValueId],
        n_out: usize,
    ) -> Result<Vec<ValueId>, MapError> {
        let names: Vec<String> = (0..n_out)
            .map(|_| self.imp.fresh_name(&self.name))
            .collect();
        let node_name = self.imp.fresh_name(&self.name);
        self.imp.add_node(&node_name, op, inputs, &names)
    }
    /// Adds an intermediate node with one output and returns it.
    pub fn emit1(&mut self, op: Op, inputs: &[ValueId]) -> Result<ValueId, MapError> {
        Ok(self.emit_tmp(op, inputs, 1)?[0])
    }
    /// Maps the node onto the Kiln op of the same name with the same attributes and inputs.
    pub fn emit_same(&mut self) -> Result<(), MapError> {
        let op = Op {
            kind: self.op_type().to_string(),
            attrs: self.attrs.clone(),
        };
        let ins = self.inputs()?;
        self.emit(op, &ins)?;
        Ok(())
    }
    /// Makes ONNX output `i` name an existing value (no node is added).
    pub fn alias_output(&mut self, i: usize, v: ValueId) {
        if self.has_output(i) {
            self.imp.bind_name(&self.node.output[i], v);
        }
    }
    /// Makes ONNX output `i` a constant.
    pub fn const_output(&mut self, i: usize, t: Tensor) -> Result<(), MapError> {
        if self.has_output(i) {
            let name = self.node.output[i].clone();
            let v = self.imp.graph.add_const(&name, t)?;
            self.imp.bind_name(&name, v);
        }
        Ok(())
    }
    /// Adds a constant with a generated name.
    pub fn constant(&mut self, t: Tensor) -> Result<ValueId, MapError> {
        let name = self.imp.fresh_name(&self.name);
        Ok(self.imp.graph.add_const(&name, t)?)
    }
    /// The import's size limits, for mappings that build constants themselves.
    pub fn limits(&self) -> &super::Limits {
        self.imp.limits()
    }
    /// Reads the ONNX `to`-style dtype attribute `name` (a TensorProto.DataType code).
    pub fn dtype_attr(&self, name: &str) -> Result<DType, MapError> {
        super::tensor::dtype_from_onnx(self.attrs.int(name)? as i32)
    }
}
