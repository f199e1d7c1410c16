//! Operator attributes: a sorted map from name to a typed value, with typed getters.

use crate::{op_err, DType, Result, Tensor};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    Int(i64),
    Float(f64),
    Ints(Vec<i64>),
    Floats(Vec<f64>),
    Str(String),
    Strs(Vec<String>),
    DType(DType),
    Tensor(Arc<Tensor>),
}

/// The attributes of an operator, sorted by name (so printing is deterministic).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attrs(pub BTreeMap<String, Attr>);

impl Attrs {
    pub fn new() -> Attrs {
        Attrs::default()
    }
    /// Adds or replaces an attribute, builder style.
    pub fn with(mut self, name: &str, value: Attr) -> Attrs {
        self.0.insert(name.to_string(), value);
        self
    }
    pub fn set(&mut self, name: &str, value: Attr) {
        self.0.insert(name.to_string(), value);
    }
    pub fn get(&self, name: &str) -> Option<&Attr> {
        self.0.get(name)
    }
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Attr)> {
        self.0.iter()
    }

    fn missing(name: &str) -> crate::IrError {
        op_err!("missing attribute `{name}`")
    }
    fn wrong(name: &str, want: &str, got: &Attr) -> crate::IrError {
        op_err!("attribute `{name}` must be {want}, got {got:?}")
    }

    /// An optional integer attribute.
    pub fn opt_int(&self, name: &str) -> Result<Option<i64>> {
        match self.get(name) {
            None => Ok(None),
            Some(Attr::Int(v)) => Ok(Some(*v)),
            Some(a) => Err(Self::wrong(name, "an int", a)),
        }
    }
    pub fn int(&self, name: &str) -> Result<i64> {
        self.opt_int(name)?.ok_or_else(|| Self::missing(name))
    }
    pub fn int_or(&self, name: &str, default: i64) -> Result<i64> {
        Ok(self.opt_int(name)?.unwrap_or(default))
    }

    /// An optional float attribute (an int is accepted and converted).
    pub fn opt_float(&self, name: &str) -> Result<Option<f64>> {
        match self.get(name) {
            None => Ok(None),
            Some(Attr::Float(v)) => Ok(Some(*v)),
            Some(Attr::Int(v)) => Ok(Some(*v as f64)),
            Some(a) => Err(Self::wrong(name, "a float", a)),
        }
    }
    pub fn float(&self, name: &str) -> Result<f64> {
        self.opt_float(name)?.ok_or_else(|| Self::missing(name))
    }
    pub fn float_or(&self, name: &str, default: f64) -> Result<f64> {
        Ok(self.opt_float(name)?.unwrap_or(default))
    }

    /// An optional list of integers.
    pub fn opt_ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        match self.get(name) {
            None => Ok(None),
            Some(Attr::Ints(v)) => Ok(Some(v.clone())),
            Some(Attr::Floats(v)) if v.is_empty() => Ok(Some(vec![])),
            Some(a) => Err(Self::wrong(name, "a list of ints", a)),
        }
    }
    pub fn ints(&self, name: &str) -> Result<Vec<i64>> {
        self.opt_ints(name)?.ok_or_else(|| Self::missing(name))
    }

    /// An optional list of floats (an empty int list reads as an empty float list).
    pub fn opt_floats(&self, name: &str) -> Result<Option<Vec<f64>>> {
        match self.get(name) {
            None => Ok(None),
            Some(Attr::Floats(v)) => Ok(Some(v.clone())),
            Some(Attr::Ints(v)) => Ok(Some(v.iter().map(|&x| x as f64).collect())),
            Some(a) => Err(Self::wrong(name, "a list of floats", a)),
        }
    }
    pub fn floats(&self, name: &str) -> Result<Vec<f64>> {
        self.opt_floats(name)?.ok_or_else(|| Self::missing(name))
    }

    pub fn opt_str(&self, name: &str) -> Result<Option<&str>> {
        match self.get(name) {
            None => Ok(None),
            Some(Attr::Str(v)) => Ok(Some(v)),
            Some(a) => Err(Self::wrong(name, "a string", a)),
        }
    }
    pub fn str_or<'a>(&'a self, name: &str, default: &'a str) -> Result<&'a str> {
        Ok(self.opt_str(name)?.unwrap_or(default))
    }

    pub fn opt_dtype(&self, name: &str) -> Result<Option<DType>> {
        match self.get(name) {
            None => Ok(None),
            Some(Attr::DType(v)) => Ok(Some(*v)),
            Some(a) => Err(Self::wrong(name, "a dtype", a)),
        }
    }
    pub fn dtype(&self, name: &str) -> Result<DType> {
        self.opt_dtype(name)?.ok_or_else(|| Self::missing(name))
    }

    pub fn opt_tensor(&self, name: &str) -> Result<Option<&Arc<Tensor>>> {
        match self.get(name) {
            None => Ok(None),
            Some(Attr::Tensor(v)) => Ok(Some(v)),
            Some(a) => Err(Self::wrong(name, "a tensor", a)),
        }
    }
    pub fn tensor(&self, name: &str) -> Result<&Arc<Tensor>> {
        self.opt_tensor(name)?.ok_or_else(|| Self::missing(name))
    }
}
