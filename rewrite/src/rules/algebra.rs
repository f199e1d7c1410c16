//! Element-wise and matmul algebra: commutativity, associativity,
//! distributivity, involutions and idempotence.

use super::{dims, f32s, pattern_rule, RuleDef};
use kiln_ir::TensorType;

fn same3(seed: u64) -> Vec<(&'static str, TensorType)> {
    let s = dims(seed, 2);
    ["a", "b", "c", "x"]
        .iter()
        .map(|&v| (v, f32s(s.clone())))
        .collect()
}

/// `a` broadcast against `b` and `c` (a row vector against matrices).
fn broadcast3(seed: u64) -> Vec<(&'static str, TensorType)> {
    let s = dims(seed, 2);
    vec![
        ("a", f32s(vec![s[1]])),
        ("b", f32s(s.clone())),
        ("c", f32s(s.clone())),
    ]
}

fn chain3(seed: u64) -> Vec<(&'static str, TensorType)> {
    let d = dims(seed, 4);
    vec![
        ("a", f32s(vec![d[0], d[1]])),
        ("b", f32s(vec![d[1], d[2]])),
        ("c", f32s(vec![d[2], d[3]])),
    ]
}

fn shared_left(seed: u64) -> Vec<(&'static str, TensorType)> {
    let d = dims(seed, 3);
    vec![
        ("a", f32s(vec![d[0], d[1]])),
        ("b", f32s(vec![d[1], d[2]])),
        ("c", f32s(vec![d[1], d[2]])),
    ]
}

pub(super) fn rules() -> Vec<RuleDef> {
    vec![
        // a + b == b + a
        pattern_rule(
            "add-commute",
            "a + b == b + a",
            "(Add ?a ?b)",
            "(Add ?b ?a)",
            broadcast3,
        ),
        // a * b == b * a
        pattern_rule(
            "mul-commute",
            "a * b == b * a",
            "(Mul ?a ?b)",
            "(Mul ?b ?a)",
            broadcast3,
        ),
        // (a + b) + c == a + (b + c)
        pattern_rule(
            "add-assoc",
            "(a + b) + c == a + (b + c)",
            "(Add (Add ?a ?b) ?c)",
            "(Add ?a (Add ?b ?c))",
            broadcast3,
        ),
        // (a * b) * c == a * (b * c)
        pattern_rule(
            "mul-assoc",
            "(a * b) * c == a * (b * c)",
            "(Mul (Mul ?a ?b) ?c)",
            "(Mul ?a (Mul ?b ?c))",
            broadcast3,
        ),
        // a*b + a*c == a * (b + c)
        pattern_rule(
            "mul-factor",
            "a*b + a*c == a * (b + c)",
            "(Add (Mul ?a ?b) (Mul ?a ?c))",
            "(Mul ?a (Add ?b ?c))",
            broadcast3,
        ),
        // -(-x) == x
        pattern_rule("neg-neg", "-(-x) == x", "(Neg (Neg ?x))", "?x", same3),
        // relu(relu(x)) == relu(x)
        pattern_rule(
            "relu-idempotent",
            "relu(relu(x)) == relu(x)",
            "(Relu (Relu ?x))",
            "(Relu ?x)",
            same3,
        ),
        // identity(x) == x
        pattern_rule(
            "identity-elim",
            "identity(x) == x",
            "(Identity ?x)",
            "?x",
            same3,
        ),
        // (A B) C == A (B C)
        pattern_rule(
            "matmul-assoc",
            "(A B) C == A (B C)",
            "(MatMul (MatMul ?a ?b) ?c)",
            "(MatMul ?a (MatMul ?b ?c))",
            chain3,
        ),
        // A B + A C == A (B + C)
        pattern_rule(
            "matmul-factor-left",
            "A B + A C == A (B + C)",
            "(Add (MatMul ?a ?b) (MatMul ?a ?c))",
            "(MatMul ?a (Add ?b ?c))",
            shared_left,
        ),
    ]
}
