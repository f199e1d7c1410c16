//! ONNX op mappings, one file per op family (mirroring `kiln_ir::ops`).

pub mod binary;
pub mod bitcast;
pub mod cast;
pub mod compare;
pub mod constant;
pub mod conv;
pub mod detection;
pub mod flex_attention;
pub mod indexing;
pub mod linalg;
pub mod linear_attention;
pub mod misc;
pub mod ml;
pub mod normalization;
pub mod pool;
pub mod quant;
pub mod recurrent;
pub mod reduce;
pub mod resize;
pub mod shape;
pub mod softmax;
pub mod strings;
pub mod training;
pub mod unary;

/// Registers every family.
pub fn register_all(r: &mut super::MappingRegistry) {
    binary::register(r);
    bitcast::register(r);
    cast::register(r);
    compare::register(r);
    constant::register(r);
    conv::register(r);
    detection::register(r);
    flex_attention::register(r);
    indexing::register(r);
    linalg::register(r);
    linear_attention::register(r);
    misc::register(r);
    ml::register(r);
    normalization::register(r);
    pool::register(r);
    quant::register(r);
    recurrent::register(r);
    reduce::register(r);
    resize::register(r);
    shape::register(r);
    softmax::register(r);
    strings::register(r);
    training::register(r);
    unary::register(r);
}
