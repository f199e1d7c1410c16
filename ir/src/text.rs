//! The text form of a graph: [`print`] writes it, [`parse`] reads it back.
//!
//! ```text
//! graph mlp {
//!   input x: f32[1,4]
//!   const w: f32[2,4] = [0.5, -1.0, 2.0, 0.0, 1.0, 1.0, 1.0, 1.0]
//!   node fc = Gemm{transB=1}(x, w) -> h: f32[1,2]
//!   node act = Relu(h) -> y: f32[1,2]
//!   output y
//! }
//! ```
//!
//! Names that are not plain identifiers are quoted (`"onnx::MatMul_12"`).
//! Attribute values: `1` (int), `1.0` (float), `[1, 2]`, `[1.0]`, `"s"`,
//! `["a"]`, a dtype (`f32`), or `tensor f32[2] [1.0, 2.0]`. Printing then
//! parsing gives back an equal graph.

use crate::{
    Attr, Attrs, DType, Elem, Graph, IrError, Op, Result, Source, Tensor, TensorType, ValueId,
};
use std::fmt::Write;
use std::sync::Arc;

mod lexer;
use lexer::{Lexer, Tok};

/// Prints a graph, constants in full.
pub fn print(g: &Graph) -> String {
    let mut s = format!("graph {} {{\n", name(&g.name));
    for &i in g.inputs() {
        let v = g.value(i);
        let _ = writeln!(s, "  input {}: {}", name(&v.name), v.ty);
    }
    for (i, t) in g.consts() {
        let _ = writeln!(
            s,
            "  const {}: {} = {}",
            name(&g.value(i).name),
            t.ty(),
            elements(t)
        );
    }
    for n in g.nodes() {
        let ins: Vec<String> = n.inputs.iter().map(|&i| name(&g.value(i).name)).collect();
        let outs: Vec<String> = n
            .outputs
            .iter()
            .map(|&o| format!("{}: {}", name(&g.value(o).name), g.value(o).ty))
            .collect();
        let _ = writeln!(
            s,
            "  node {} = {}{}({}) -> {}",
            name(&n.name),
            n.op.kind,
            attrs(&n.op.attrs),
            ins.join(", "),
            outs.join(", ")
        );
    }
    let outs: Vec<String> = g
        .outputs()
        .iter()
        .map(|&o| name(&g.value(o).name))
        .collect();
    let _ = writeln!(s, "  output {}", outs.join(", "));
    s.push_str("}\n");
    s
}

fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && s.parse::<DType>().is_err()
        && !matches!(s, "tensor" | "inf" | "NaN")
}

fn name(s: &str) -> String {
    if is_ident(s) {
        s.to_string()
    } else {
        format!("{s:?}")
    }
}

fn elements(t: &Tensor) -> String {
    if let Ok(v) = t.as_strings() {
        let items: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
        return format!("[{}]", items.join(", "));
    }
    let items: Vec<String> = crate::dispatch_dtype!(t.dtype(), T => t.as_slice::<T>().expect("dtype").iter().map(|x| format!("{x:?}")).collect());
    format!("[{}]", items.join(", "))
}

fn attrs(a: &Attrs) -> String {
    if a.0.is_empty() {
        return String::new();
    }
    let items: Vec<String> = a
        .iter()
        .map(|(k, v)| format!("{}={}", name(k), attr(v)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

fn attr(a: &Attr) -> String {
    let list = |v: Vec<String>| format!("[{}]", v.join(", "));
    match a {
        Attr::Int(i) => i.to_string(),
        Attr::Float(f) => format!("{f:?}"),
        Attr::Ints(v) => list(v.iter().map(|x| x.to_string()).collect()),
        Attr::Floats(v) => list(v.iter().map(|x| format!("{x:?}")).collect()),
        Attr::Str(s) => format!("{s:?}"),
        Attr::Strs(v) => list(v.iter().map(|x| format!("{x:?}")).collect()),
        Attr::DType(d) => d.to_string(),
        Attr::Tensor(t) => format!("tensor {} {}", t.ty(), elements(t)),
    }
}

/// Parses the text form back into a graph (types are re-inferred and checked).
pub fn parse(src: &str) -> Result<Graph> {
    let mut p = Parser {
        lx: Lexer::new(src),
    };
    let g = p.graph()?;
    crate::verify(&g)?;
    Ok(g)
}

struct Parser<'a> {
    lx: Lexer<'a>,
}

impl Parser<'_> {
    fn err(&self, msg: impl Into<String>) -> IrError {
        IrError::Parse {
            line: self.lx.line(),
            msg: msg.into(),
        }
    }
    fn expect(&mut self, t: Tok) -> Result<()> {
        let got = self.lx.next()?;
        if got == t {
            Ok(())
        } else {
            Err(self.err(format!("expected {t:?}, found {got:?}")))
        }
    }
    fn keyword(&mut self, k: &str) -> Result<()> {
        match self.lx.next()? {
            Tok::Ident(s) if s == k => Ok(()),
            t => Err(self.err(format!("expected `{k}`, found {t:?}"))),
        }
    }
    fn name(&mut self) -> Result<String> {
        match self.lx.next()? {
            Tok::Ident(s) | Tok::Str(s) => Ok(s),
            t => Err(self.err(format!("expected a name, found {t:?}"))),
        }
    }
    fn value(&mut self, g: &Graph) -> Result<ValueId> {
        let n = self.name()?;
        g.find(&n)
            .ok_or_else(|| self.err(format!("unknown value `{n}`")))
    }

    fn graph(&mut self) -> Result<Graph> {
        self.keyword("graph")?;
        let mut g = Graph::new(&self.name()?);
        self.expect(Tok::LBrace)?;
        loop {
            let kw = match self.lx.next()? {
                Tok::RBrace => break,
                Tok::Ident(s) => s,
                t => return Err(self.err(format!("expected a statement, found {t:?}"))),
            };
            match kw.as_str() {
                "input" => {
                    let n = self.name()?;
                    self.expect(Tok::Colon)?;
                    let ty = self.ty()?;
                    g.add_input(&n, ty).map_err(|e| self.err(e.to_string()))?;
                }
                "const" => {
                    let n = self.name()?;
                    self.expect(Tok::Colon)?;
                    let ty = self.ty()?;
                    self.expect(Tok::Eq)?;
                    let t = self.tensor_data(&ty)?;
                    g.add_const(&n, t).map_err(|e| self.err(e.to_string()))?;
                }
                "node" => self.node(&mut g)?,
                "output" => {
                    let mut outs = vec![self.value(&g)?];
                    while self.lx.peek()? == Tok::Comma {
                        self.lx.next()?;
                        outs.push(self.value(&g)?);
                    }
                    g.set_outputs(outs);
                }
                k => return Err(self.err(format!("unknown statement `{k}`"))),
            }
        }
        Ok(g)
    }

    fn node(&mut self, g: &mut Graph) -> Result<()> {
        let n = self.name()?;
        self.expect(Tok::Eq)?;
        let kind = self.name()?;
        let mut op = Op::new(&kind);
        if self.lx.peek()? == Tok::LBrace {
            self.lx.next()?;
            op.attrs = self.attrs()?;
        }
        self.expect(Tok::LParen)?;
        let mut ins = Vec::new();
        if self.lx.peek()? != Tok::RParen {
            loop {
                ins.push(self.value(g)?);
                if self.lx.peek()? != Tok::Comma {
                    break;
                }
                self.lx.next()?;
            }
        }
        self.expect(Tok::RParen)?;
        self.expect(Tok::Arrow)?;
        let mut outs = Vec::new();
        loop {
            let o = self.name()?;
            self.expect(Tok::Colon)?;
            outs.push((o, self.ty()?));
            if self.lx.peek()? != Tok::Comma {
                break;
            }
            self.lx.next()?;
        }
        let names: Vec<&str> = outs.iter().map(|o| o.0.as_str()).collect();
        let ids = g
            .add_node(&n, op, &ins, &names)
            .map_err(|e| self.err(e.to_string()))?;
        for (id, (o, ty)) in ids.iter().zip(&outs) {
            if &g.value(*id).ty != ty {
                return Err(self.err(format!(
                    "`{o}` is written {ty} but infers {}",
                    g.value(*id).ty
                )));
            }
        }
        Ok(())
    }

    fn ty(&mut self) -> Result<TensorType> {
        let d = match self.lx.next()? {
            Tok::Ident(s) => s.parse::<DType>().map_err(|e| self.err(e))?,
            t => return Err(self.err(format!("expected a dtype, found {t:?}"))),
        };
        self.expect(Tok::LBracket)?;
        let mut shape = Vec::new();
        loop {
            match self.lx.next()? {
                Tok::RBracket => break,
                Tok::Comma => {}
                Tok::Num(n) => shape.push(
                    n.parse::<usize>()
                        .map_err(|_| self.err(format!("bad dimension `{n}`")))?,
                ),
                t => return Err(self.err(format!("expected a dimension, found {t:?}"))),
            }
        }
        Ok(TensorType::new(d, shape))
    }

    fn tensor_data(&mut self, ty: &TensorType) -> Result<Tensor> {
        let toks = self.list()?;
        if ty.dtype == DType::String {
            let mut v = Vec::with_capacity(toks.len());
            for t in toks {
                match t {
                    Tok::Str(s) => v.push(s),
                    t => return Err(self.err(format!("expected a string, found {t:?}"))),
                }
            }
            return Tensor::from_strings(ty.shape.clone(), v).map_err(|e| self.err(e.to_string()));
        }
        let mut words = Vec::with_capacity(toks.len());
        for t in toks {
            match t {
                Tok::Num(s) | Tok::Ident(s) => words.push(s),
                t => return Err(self.err(format!("expected a number, found {t:?}"))),
            }
        }
        let bad = |w: &str| self.err(format!("`{w}` is not a {} value", ty.dtype));
        let data = crate::dispatch_dtype!(ty.dtype, T => {
            let mut v: Vec<T> = Vec::with_capacity(words.len());
            for w in &words {
                v.push(w.parse::<T>().map_err(|_| bad(w))?);
            }
            T::wrap(v)
        });
        Tensor::new(ty.shape.clone(), data).map_err(|e| self.err(e.to_string()))
    }

    /// Reads `[tok, tok, ...]` after the opening bracket is next.
    fn list(&mut self) -> Result<Vec<Tok>> {
        self.expect(Tok::LBracket)?;
        let mut out = Vec::new();
        loop {
            match self.lx.next()? {
                Tok::RBracket => return Ok(out),
                Tok::Comma => {}
                t => out.push(t),
            }
        }
    }

    fn attrs(&mut self) -> Result<Attrs> {
        let mut a = Attrs::new();
        loop {
            if self.lx.peek()? == Tok::RBrace {
                self.lx.next()?;
                return Ok(a);
            }
            let k = self.name()?;
            self.expect(Tok::Eq)?;
            let v = self.attr()?;
            a.set(&k, v);
            if self.lx.peek()? == Tok::Comma {
                self.lx.next()?;
            }
        }
    }

    fn attr(&mut self) -> Result<Attr> {
        match self.lx.peek()? {
            Tok::LBracket => {
                let items = self.list()?;
                list_attr(items).map_err(|m| self.err(m))
            }
            _ => match self.lx.next()? {
                Tok::Num(n) => scalar_attr(&n).map_err(|m| self.err(m)),
                Tok::Str(s) => Ok(Attr::Str(s)),
                Tok::Ident(s) if s == "tensor" => {
                    let ty = self.ty()?;
                    Ok(Attr::Tensor(Arc::new(self.tensor_data(&ty)?)))
                }
                Tok::Ident(s) => s
                    .parse::<DType>()
                    .map(Attr::DType)
                    .or_else(|_| scalar_attr(&s))
                    .map_err(|m| self.err(m)),
                t => Err(self.err(format!("expected an attribute value, found {t:?}"))),
            },
        }
    }
}

fn is_float_word(n: &str) -> bool {
    n.contains(['.', 'e', 'E']) || n.contains("inf") || n.contains("NaN")
}

fn scalar_attr(n: &str) -> std::result::Result<Attr, String> {
    if is_float_word(n) {
        n.parse::<f64>()
            .map(Attr::Float)
            .map_err(|_| format!("bad number `{n}`"))
    } else {
        n.parse::<i64>()
            .map(Attr::Int)
            .map_err(|_| format!("bad number `{n}`"))
    }
}

fn list_attr(items: Vec<Tok>) -> std::result::Result<Attr, String> {
    if items.iter().all(|t| matches!(t, Tok::Str(_))) && !items.is_empty() {
        return Ok(Attr::Strs(
            items
                .into_iter()
                .map(|t| {
                    if let Tok::Str(s) = t {
                        s
                    } else {
                        unreachable!()
                    }
                })
                .collect(),
        ));
    }
    let words: Vec<String> = items
        .into_iter()
        .map(|t| match t {
            Tok::Num(n) | Tok::Ident(n) => Ok(n),
            t => Err(format!("unexpected {t:?} in a list")),
        })
        .collect::<std::result::Result<_, _>>()?;
    if words.iter().any(|w| is_float_word(w)) {
        words
            .iter()
            .map(|w| w.parse::<f64>().map_err(|_| format!("bad number `{w}`")))
            .collect::<std::result::Result<_, _>>()
            .map(Attr::Floats)
    } else {
        words
            .iter()
            .map(|w| w.parse::<i64>().map_err(|_| format!("bad number `{w}`")))
            .collect::<std::result::Result<_, _>>()
            .map(Attr::Ints)
    }
}

impl std::fmt::Display for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&print(self))
    }
}

/// Whether a value is a graph input, constant or node output (for tools).
pub fn source_kind(g: &Graph, v: ValueId) -> &'static str {
    match g.value(v).source {
        Source::Input => "input",
        Source::Const(_) => "const",
        Source::Node(..) => "node",
    }
}
