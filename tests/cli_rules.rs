//! `kiln explain --rules` lists every rewrite rule with its identity.

use std::process::Command;

#[test]
fn explain_lists_the_rules_with_their_identities() {
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/mlp/mlp.onnx");
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["explain", model, "--rules"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let count: usize = text
        .lines()
        .find_map(|l| l.strip_suffix(" iterations only)"))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a rule count line");
    let listed = kiln_rewrite::rules::all();
    assert_eq!(count, listed.len());
    for r in &listed {
        assert!(
            text.contains(r.name) && text.contains(r.identity),
            "{}",
            r.name
        );
    }
}
