//! (cast family mappings: not written yet.)

use crate::onnx::MappingRegistry;

pub fn register(_r: &mut MappingRegistry) {}
