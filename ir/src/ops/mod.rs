//! Kiln's built-in operators, one file per family. Each family file has a
//! `register` function that adds its ops (type inference and reference
//! semantics) to the [`Registry`](crate::Registry).

pub mod binary;
pub mod bitcast;
pub mod cast;
pub mod compare;
pub mod conv;
pub mod detection;
pub mod identity;
pub mod indexing;
pub mod label_encoder;
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
pub mod tensor_scatter;
pub mod training;
pub mod unary;
pub mod util;

/// Registers every family.
pub fn register_all(r: &mut crate::Registry) {
    binary::register(r);
    bitcast::register(r);
    cast::register(r);
    compare::register(r);
    conv::register(r);
    identity::register(r);
    indexing::register(r);
    label_encoder::register(r);
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
    tensor_scatter::register(r);
    training::register(r);
    unary::register(r);
}
