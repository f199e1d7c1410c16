//! The registry of ONNX op mappings, keyed by domain, op type and the opset
//! version from which a mapping applies.

use super::ctx::NodeCtx;
use crate::MapError;
use std::collections::HashMap;
use std::sync::LazyLock;

/// Maps one ONNX node into Kiln nodes.
pub type MapFn = fn(&mut NodeCtx) -> Result<(), MapError>;

/// All known mappings.
#[derive(Default)]
pub struct MappingRegistry {
    map: HashMap<(String, String), Vec<(i64, MapFn)>>,
}

impl MappingRegistry {
    /// Registers `f` for `domain`/`op` at opsets `since` and later (until a
    /// registration with a larger `since` takes over). `domain` "" is ai.onnx.
    pub fn add(&mut self, domain: &str, op: &str, since: i64, f: MapFn) {
        let v = self
            .map
            .entry((domain.to_string(), op.to_string()))
            .or_default();
        v.push((since, f));
        v.sort_by_key(|e| e.0);
    }

    /// Registers an op that maps one-to-one onto the Kiln op of the same name,
    /// attributes copied unchanged.
    pub fn same(&mut self, op: &str, since: i64) {
        self.add("", op, since, |ctx| ctx.emit_same());
    }

    /// The mapping for a node of `domain`/`op` in a model importing `opset` of that domain.
    pub fn lookup(&self, domain: &str, op: &str, opset: i64) -> Option<MapFn> {
        let v = self.map.get(&(domain.to_string(), op.to_string()))?;
        v.iter()
            .rev()
            .find(|(since, _)| *since <= opset)
            .map(|e| e.1)
    }

    /// Every registered (domain, op), sorted.
    pub fn ops(&self) -> Vec<(String, String)> {
        let mut v: Vec<_> = self.map.keys().cloned().collect();
        v.sort();
        v
    }
}

static MAPPINGS: LazyLock<MappingRegistry> = LazyLock::new(|| {
    let mut r = MappingRegistry::default();
    super::ops::register_all(&mut r);
    r
});

/// The global registry of ONNX mappings.
pub fn mappings() -> &'static MappingRegistry {
    &MAPPINGS
}
