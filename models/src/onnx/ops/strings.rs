//! String ops: StringConcat and RegexFullMatch (one-to-one), StringSplit and
//! StringNormalizer (folded at import: their output shapes depend on the data,
//! so the input must be known at compile time).

use crate::onnx::{MappingRegistry, NodeCtx};
use crate::{map_err, MapError};
use kiln_ir::ops::strings::{string_normalize, string_split, CaseChange};
use kiln_ir::Tensor;

fn split(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let x = ctx
        .const_input(0)?
        .ok_or_else(|| map_err!("StringSplit needs an input"))?;
    let delimiter = ctx.attrs().opt_str("delimiter")?.map(String::from);
    let maxsplit = match ctx.attrs().opt_int("maxsplit")? {
        Some(m) if m < 0 => return Err(map_err!("maxsplit must be non-negative, got {m}")),
        m => m.map(|m| m as usize),
    };
    let (parts, counts) = string_split(&x, delimiter.as_deref(), maxsplit)?;
    ctx.const_output(0, parts)?;
    ctx.const_output(1, counts)
}

fn normalize(ctx: &mut NodeCtx) -> Result<(), MapError> {
    let x: Tensor = (*ctx
        .const_input(0)?
        .ok_or_else(|| map_err!("StringNormalizer needs an input"))?)
    .clone();
    let a = ctx.attrs();
    let case = match a.str_or("case_change_action", "NONE")? {
        "NONE" => CaseChange::None,
        "LOWER" => CaseChange::Lower,
        "UPPER" => CaseChange::Upper,
        c => {
            return Err(map_err!(
                "case_change_action must be NONE, LOWER or UPPER, got `{c}`"
            ))
        }
    };
    let sensitive = a.int_or("is_case_sensitive", 0)? != 0;
    let stop = match a.get("stopwords") {
        Some(kiln_ir::Attr::Strs(v)) => v.clone(),
        _ => vec![],
    };
    let y = string_normalize(&x, &stop, sensitive, case)?;
    ctx.const_output(0, y)
}

pub fn register(r: &mut MappingRegistry) {
    r.same("StringConcat", 20);
    r.same("RegexFullMatch", 20);
    r.add("", "StringSplit", 20, split);
    r.add("", "StringNormalizer", 10, normalize);
}
