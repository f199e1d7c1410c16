//! A map's body as a tape of 16-lane operations (`tape16` runs it with
//! AVX-512): for f32 maps whose every read moves by 0 or 1 element along
//! the vectorized loop, the generated code only computes, per chunk of
//! that loop, the address of each read and of the output, and calls the
//! tape's interpreter on the chunk. The interpreter runs one operation at
//! a time over the whole chunk (16 lanes, the last vector masked), with
//! intermediate values in per-thread chunk buffers (`temps`), so dispatch
//! costs once per operation and chunk.
//!
//! Operand ids: `0..L` the reads (leaves; a contiguous read's pointer
//! advances with the lane, another's value is the same for the chunk),
//! `L..L + C` the constants, `L + C..` the chunk buffers; the last
//! operation writes the output (`OUT`). Subexpressions that occur twice
//! are computed once; buffers are reused once their value is dead.

use super::lower_scalar::const_exponent;
use kiln_ir::expr::{Access, BinaryOp, CmpOp, ScalarExpr, UnaryOp};
use kiln_ir::DType;
use kiln_ir::TensorType;

/// Destination id of the last operation: the output.
pub(super) const OUT: u32 = u32::MAX;

/// One 16-lane operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(super) enum Op16 {
    Copy,
    Neg,
    Abs,
    Sqrt,
    Floor,
    Ceil,
    Recip,
    Exp,
    Log,
    Tanh,
    Erf,
    Sin,
    Cos,
    /// `a ^ k` for an exponent `const_exponent` accepts.
    PowC,
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
    Pow,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `a != 0 ? b : c`.
    Select,
    /// The logistic function as the lowering writes it (`e = exp(-|a|)`,
    /// `s = 1 / (1 + e)`, `a < 0 ? e s : s`) in one pass.
    Sigmoid,
    /// `0.5 a (1 + erf(a k))` in one pass.
    GeluErf,
    /// `0.5 a (1 + tanh(k (a + 0.044715 a^3)))` in one pass.
    GeluTanh,
}

/// `dst = op(a, b, c)` (unused operands 0).
#[derive(Clone, Copy, Debug)]
pub(super) struct Instr {
    pub op: Op16,
    pub a: u32,
    pub b: u32,
    pub c: u32,
    pub k: f32,
    pub dst: u32,
}

/// A compiled map body; see the module docs.
#[derive(Debug)]
pub struct Tape {
    pub(super) instrs: Vec<Instr>,
    /// The reads, each once, and whether each is contiguous along the
    /// chunk (set by the code generator once it has checked).
    pub(super) leaves: Vec<Access>,
    pub(super) contiguous: Vec<bool>,
    /// Each constant 16 times.
    pub(super) consts: Vec<[f32; 16]>,
    /// Chunk buffers used, and elements per chunk.
    pub(super) n_temps: usize,
    pub(super) cap: usize,
}

/// SSA form during building: operations with a fresh id per result.
struct Builder<'a> {
    inputs: &'a [TensorType],
    leaves: Vec<Access>,
    consts: Vec<f32>,
    ops: Vec<(Op16, [Val; 3], f32)>,
    memo: Vec<(ScalarExpr, Val)>,
    /// Whole activations become one fused operation ([`fused`]).
    fuse: bool,
}

/// A value while building: a leaf, a constant or operation `k`'s result.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Val {
    Leaf(usize),
    Const(usize),
    Op(usize),
}

fn unary_op(op: UnaryOp) -> Op16 {
    match op {
        UnaryOp::Neg => Op16::Neg,
        UnaryOp::Abs => Op16::Abs,
        UnaryOp::Sqrt => Op16::Sqrt,
        UnaryOp::Floor => Op16::Floor,
        UnaryOp::Ceil => Op16::Ceil,
        UnaryOp::Recip => Op16::Recip,
        UnaryOp::Exp => Op16::Exp,
        UnaryOp::Log => Op16::Log,
        UnaryOp::Tanh => Op16::Tanh,
        UnaryOp::Erf => Op16::Erf,
        UnaryOp::Sin => Op16::Sin,
        UnaryOp::Cos => Op16::Cos,
    }
}

fn binary_op(op: BinaryOp) -> Op16 {
    match op {
        BinaryOp::Add => Op16::Add,
        BinaryOp::Sub => Op16::Sub,
        BinaryOp::Mul => Op16::Mul,
        BinaryOp::Div => Op16::Div,
        BinaryOp::Max => Op16::Max,
        BinaryOp::Min => Op16::Min,
        BinaryOp::Pow => Op16::Pow,
    }
}

fn cmp_op(op: CmpOp) -> Op16 {
    match op {
        CmpOp::Eq => Op16::Eq,
        CmpOp::Ne => Op16::Ne,
        CmpOp::Lt => Op16::Lt,
        CmpOp::Le => Op16::Le,
        CmpOp::Gt => Op16::Gt,
        CmpOp::Ge => Op16::Ge,
    }
}

impl Builder<'_> {
    fn op(&mut self, op: Op16, args: &[Val], k: f32) -> Val {
        let mut a = [Val::Const(0); 3];
        a[..args.len()].copy_from_slice(args);
        self.ops.push((op, a, k));
        Val::Op(self.ops.len() - 1)
    }

    fn constant(&mut self, c: f64) -> Val {
        let c = c as f32;
        let k = match self.consts.iter().position(|x| x.to_bits() == c.to_bits()) {
            Some(k) => k,
            None => {
                self.consts.push(c);
                self.consts.len() - 1
            }
        };
        Val::Const(k)
    }

    /// The value of `e`; `None` for what the tape does not compute.
    fn value(&mut self, e: &ScalarExpr) -> Option<Val> {
        if let Some((_, v)) = self.memo.iter().find(|(m, _)| m == e) {
            return Some(*v);
        }
        if let Some((op, x, k)) = fused(e).filter(|_| self.fuse) {
            let x = self.value(x)?;
            let v = self.op(op, &[x], k);
            self.memo.push((e.clone(), v));
            return Some(v);
        }
        let v = match e {
            ScalarExpr::Const(c) => self.constant(*c),
            ScalarExpr::Access(a) => {
                if self.inputs.get(a.input)?.dtype != DType::F32 {
                    return None;
                }
                self.leaves.push(a.clone());
                Val::Leaf(self.leaves.len() - 1)
            }
            ScalarExpr::Unary(op, x) => {
                let x = self.value(x)?;
                self.op(unary_op(*op), &[x], 0.0)
            }
            ScalarExpr::Binary(BinaryOp::Pow, a, b) if const_exponent(b).is_some() => {
                let a = self.value(a)?;
                self.op(Op16::PowC, &[a], const_exponent(b).unwrap_or(1.0) as f32)
            }
            ScalarExpr::Binary(op, a, b) => {
                let (a, b) = (self.value(a)?, self.value(b)?);
                self.op(binary_op(*op), &[a, b], 0.0)
            }
            ScalarExpr::Cmp(op, a, b) => {
                let (a, b) = (self.value(a)?, self.value(b)?);
                self.op(cmp_op(*op), &[a, b], 0.0)
            }
            ScalarExpr::Select(c, t, f) => {
                let (c, t, f) = (self.value(c)?, self.value(t)?, self.value(f)?);
                self.op(Op16::Select, &[c, t, f], 0.0)
            }
            // A cast to f32 of an f32 value (what fusion leaves between a
            // map and its f32 consumer) is the value itself; every value the
            // tape computes is f32 except a comparison's mask.
            ScalarExpr::Cast(DType::F32, x) if !matches!(**x, ScalarExpr::Cmp(..)) => {
                self.value(x)?
            }
            ScalarExpr::InBounds(_) | ScalarExpr::Acc | ScalarExpr::Cast(..) => return None,
        };
        self.memo.push((e.clone(), v));
        Some(v)
    }
}

/// A whole activation written out by the lowering (sigmoid, both GELUs)
/// as one fused operation of its argument: `(op, x, k)`. The fused code
/// computes the same operations in the same order, in registers.
fn fused(e: &ScalarExpr) -> Option<(Op16, &ScalarExpr, f32)> {
    use ScalarExpr as S;
    let is = |e: &S, c: f64| matches!(e, S::Const(v) if *v == c);
    fn un(e: &S, op: UnaryOp) -> Option<&S> {
        match e {
            S::Unary(o, x) if *o == op => Some(x),
            _ => None,
        }
    }
    fn bin(e: &S, op: BinaryOp) -> Option<(&S, &S)> {
        match e {
            S::Binary(o, a, b) if *o == op => Some((a, b)),
            _ => None,
        }
    }
    // select(x < 0, e * s, s), s = recip(1 + e), e = exp(-|x|)
    if let S::Select(c, t, f) = e {
        let S::Cmp(CmpOp::Lt, x, z) = &**c else {
            return None;
        };
        let (ee, s) = bin(t, BinaryOp::Mul)?;
        let (one, e2) = bin(un(f, UnaryOp::Recip)?, BinaryOp::Add)?;
        let ax = un(un(un(ee, UnaryOp::Exp)?, UnaryOp::Neg)?, UnaryOp::Abs)?;
        let ok = is(z, 0.0) && is(one, 1.0) && s == &**f && e2 == ee && ax == &**x;
        return ok.then_some((Op16::Sigmoid, &**x, 0.0));
    }
    // (0.5 * x) * (1 + inner)
    let (half_x, rest) = bin(e, BinaryOp::Mul)?;
    let (half, x) = bin(half_x, BinaryOp::Mul)?;
    let (one, inner) = bin(rest, BinaryOp::Add)?;
    if !is(half, 0.5) || !is(one, 1.0) {
        return None;
    }
    if let Some(arg) = un(inner, UnaryOp::Erf) {
        let (x2, c) = bin(arg, BinaryOp::Mul)?;
        let S::Const(c) = c else { return None };
        return (x2 == x).then_some((Op16::GeluErf, x, *c as f32));
    }
    // tanh(k * (x + 0.044715 * ((x * x) * x)))
    let (k, poly) = bin(un(inner, UnaryOp::Tanh)?, BinaryOp::Mul)?;
    let S::Const(k) = k else { return None };
    let (x2, cubic) = bin(poly, BinaryOp::Add)?;
    let (c, cube) = bin(cubic, BinaryOp::Mul)?;
    let (sq, x3) = bin(cube, BinaryOp::Mul)?;
    let (xa, xb) = bin(sq, BinaryOp::Mul)?;
    let ok = is(c, 0.044715) && x2 == x && x3 == x && xa == x && xb == x;
    ok.then_some((Op16::GeluTanh, x, *k as f32))
}

/// The tape of a map body over `inputs` with chunks of `cap` elements;
/// `None` when the body has a bounds guard, a cast other than f32 of an f32
/// value, or a non-f32 read.
pub(super) fn build(body: &ScalarExpr, inputs: &[TensorType], cap: usize) -> Option<Tape> {
    build_with(body, inputs, cap, true)
}

/// [`build`], with or without fused activations.
pub(super) fn build_with(
    body: &ScalarExpr,
    inputs: &[TensorType],
    cap: usize,
    fuse: bool,
) -> Option<Tape> {
    let mut b = Builder {
        inputs,
        leaves: vec![],
        consts: vec![],
        ops: vec![],
        memo: vec![],
        fuse,
    };
    let root = b.value(body)?;
    if !matches!(root, Val::Op(k) if k + 1 == b.ops.len()) {
        b.op(Op16::Copy, &[root], 0.0);
    }
    let (l, c) = (b.leaves.len(), b.consts.len());
    let (instrs, n_temps) = allocate(&b.ops, l, c);
    Some(Tape {
        instrs,
        contiguous: vec![true; l],
        leaves: b.leaves,
        consts: b.consts.iter().map(|&c| [c; 16]).collect(),
        n_temps,
        cap,
    })
}

/// Operand ids with chunk buffers reused after their value's last use.
fn allocate(ops: &[(Op16, [Val; 3], f32)], l: usize, c: usize) -> (Vec<Instr>, usize) {
    let mut last = vec![0; ops.len()];
    for (i, (_, args, _)) in ops.iter().enumerate() {
        for a in args {
            if let Val::Op(k) = a {
                last[*k] = i;
            }
        }
    }
    let (mut buf_of, mut free, mut n) = (vec![0u32; ops.len()], Vec::<u32>::new(), 0u32);
    let mut instrs = vec![];
    for (i, (op, args, k)) in ops.iter().enumerate() {
        let id = |v: &Val, buf_of: &[u32]| match v {
            Val::Leaf(j) => *j as u32,
            Val::Const(j) => (l + j) as u32,
            Val::Op(j) => (l + c) as u32 + buf_of[*j],
        };
        let [a, b, cc] = args.map(|v| id(&v, &buf_of));
        for v in args {
            if let Val::Op(j) = v {
                if last[*j] == i && !free.contains(&buf_of[*j]) {
                    free.push(buf_of[*j]);
                }
            }
        }
        let dst = if i + 1 == ops.len() {
            OUT
        } else {
            let t = free.pop().unwrap_or_else(|| {
                n += 1;
                n - 1
            });
            buf_of[i] = t;
            (l + c) as u32 + t
        };
        instrs.push(Instr {
            op: *op,
            a,
            b,
            c: cc,
            k: *k,
            dst,
        });
    }
    (instrs, n as usize)
}
