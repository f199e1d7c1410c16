//! Fixed-length feature vectors of tuning candidates.
//!
//! A candidate is either a JIT loop nest (a [`LoopNest`] and the
//! [`Schedule`] that made it) or a hand-written kernel described by a
//! [`KernelDescriptor`]. [`features`] turns either into one vector of
//! [`FEATURE_LEN`] values followed by the caller's target features:
//!
//! `[is_nest, nest block (NEST_LEN), kernel block (KERNEL_LEN), target..]`
//!
//! The block of the other kind is zero. Counts, sizes and extents are
//! `log2(1 + x)`; ratios to cache sizes are signed `log2` clipped to
//! `+-RATIO_CLIP`. Names are hashed with XXH3 (stable across builds).
//!
//! The nest block, in the spirit of TVM's per-store features: one
//! [`STORE_LEN`] vector per store (the output store and one per staged
//! input's copy), summed and maxed over stores, then nest-level values and
//! the schedule's steps as tokens (step kind x position bucket, and hashed
//! (kind, log2 parameter) pairs). See `store_features` for the store layout.

use kiln_ir::expr::index::flat_offset;
use kiln_ir::expr::{
    AffineExpr, BinaryOp, LoopNest, ScalarExpr, Schedule, StageKind, Step, UnaryOp,
};
use serde::{Deserialize, Serialize};

/// Cache sizes of the target, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CacheSizes {
    pub l1: f64,
    pub l2: f64,
    pub l3: f64,
}

impl Default for CacheSizes {
    /// A typical server core: 32 KiB L1d, 1 MiB L2, 32 MiB L3.
    fn default() -> Self {
        CacheSizes {
            l1: 32.0 * 1024.0,
            l2: 1024.0 * 1024.0,
            l3: 32.0 * 1024.0 * 1024.0,
        }
    }
}

impl CacheSizes {
    fn levels(&self) -> [f64; 3] {
        [self.l1, self.l2, self.l3]
    }
}

/// What the tuner knows about one candidate of a hand-written kernel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KernelDescriptor {
    /// Kernel family (`conv`, `gemm`, `rows`, ...).
    pub family: String,
    /// Variant within the family (`im2col`, `direct`, `winograd`, ...).
    pub variant: String,
    pub flops: f64,
    pub bytes_read: f64,
    pub bytes_written: f64,
    /// Bytes touched by one thread's innermost block (tile).
    pub working_set: f64,
    pub threads: u32,
    /// Knob values (tile sizes, band sizes, unroll, ...).
    pub knobs: Vec<(String, f64)>,
}

/// A candidate to featurize.
#[derive(Clone, Copy, Debug)]
pub enum Candidate<'a> {
    /// A JIT loop nest and the schedule that produced it.
    Nest {
        nest: &'a LoopNest,
        schedule: &'a Schedule,
    },
    /// A hand-written kernel.
    Kernel(&'a KernelDescriptor),
}

/// Values per store (see `store_features`).
pub const STORE_LEN: usize = 44;
/// Step kinds in the token bag.
const STEP_KINDS: usize = 9;
/// Position buckets (quarters of the schedule) in the token bag.
const POS_BUCKETS: usize = 4;
/// Hashed (step kind, log2 parameter) buckets.
const STEP_HASH: usize = 16;
/// Nest-level values after the aggregated stores.
const NEST_EXTRA: usize = 3;
/// Values of the nest block.
pub const NEST_LEN: usize = 2 * STORE_LEN + NEST_EXTRA + STEP_KINDS * POS_BUCKETS + STEP_HASH;
/// Buckets of the hashed family and variant one-hots.
const NAME_HASH: usize = 16;
/// Buckets of the hashed knob values.
const KNOB_HASH: usize = 32;
/// Numeric kernel values.
const KERNEL_NUM: usize = 13;
/// Values of the kernel block.
pub const KERNEL_LEN: usize = 2 * NAME_HASH + KERNEL_NUM + 2 * KNOB_HASH;
/// Length of a feature vector before the target features.
pub const FEATURE_LEN: usize = 1 + NEST_LEN + KERNEL_LEN;
/// Bound on the magnitude of log2 ratios.
pub const RATIO_CLIP: f32 = 24.0;

/// The feature vector of a candidate: [`FEATURE_LEN`] values, then
/// `target` (the target descriptor's numeric features) appended.
pub fn features(c: &Candidate, caches: &CacheSizes, target: &[f32]) -> Vec<f32> {
    let mut v = Vec::with_capacity(FEATURE_LEN + target.len());
    match c {
        Candidate::Nest { nest, schedule } => {
            v.push(1.0);
            v.extend(nest_features(nest, schedule, caches));
            v.resize(FEATURE_LEN, 0.0);
        }
        Candidate::Kernel(k) => {
            v.push(0.0);
            v.resize(1 + NEST_LEN, 0.0);
            v.extend(kernel_features(k, caches));
        }
    }
    v.extend_from_slice(target);
    v
}

/// `log2(1 + x)` for non-negative `x` (0 for NaN or negative).
pub fn lg(x: f64) -> f32 {
    if x > 0.0 {
        (1.0 + x).log2() as f32
    } else {
        0.0
    }
}

/// Signed `log2(a / b)`, clipped; 0 when either side is not positive.
fn ratio(a: f64, b: f64) -> f32 {
    if a > 0.0 && b > 0.0 {
        ((a / b).log2() as f32).clamp(-RATIO_CLIP, RATIO_CLIP)
    } else {
        0.0
    }
}

/// A stable bucket for `key` among `n`.
fn bucket(key: &str, n: usize) -> usize {
    (xxhash_rust::xxh3::xxh3_64(key.as_bytes()) % n as u64) as usize
}

// ---------------------------------------------------------------- kernels

/// The kernel block ([`KERNEL_LEN`] values): hashed one-hots of family and
/// family/variant, 13 numeric values, knob values by hashed name (signed
/// log2) and (name, value) one-hots.
pub fn kernel_features(k: &KernelDescriptor, caches: &CacheSizes) -> Vec<f32> {
    let mut v = vec![0.0f32; KERNEL_LEN];
    v[bucket(&k.family, NAME_HASH)] = 1.0;
    v[NAME_HASH + bucket(&format!("{}/{}", k.family, k.variant), NAME_HASH)] = 1.0;
    let bytes = k.bytes_read.max(0.0) + k.bytes_written.max(0.0);
    let threads = k.threads.max(1) as f64;
    let ws = k.working_set;
    let num = [
        lg(k.flops),
        lg(k.bytes_read),
        lg(k.bytes_written),
        lg(ws),
        lg(threads),
        lg(k.flops / bytes.max(1.0)),
        lg(k.flops / threads),
        ratio(ws, caches.l1),
        ratio(ws, caches.l2),
        ratio(ws, caches.l3),
        (ws <= caches.l1) as u8 as f32,
        (ws <= caches.l2) as u8 as f32,
        (ws <= caches.l3) as u8 as f32,
    ];
    let base = 2 * NAME_HASH;
    v[base..base + KERNEL_NUM].copy_from_slice(&num);
    let base = base + KERNEL_NUM;
    for (name, value) in &k.knobs {
        if !value.is_finite() {
            continue;
        }
        v[base + bucket(name, KNOB_HASH)] += value.signum() as f32 * lg(value.abs());
        let cat = format!("{name}={value}");
        v[base + KNOB_HASH + bucket(&cat, KNOB_HASH)] += 1.0;
    }
    v
}

// ---------------------------------------------------------------- nests

/// Arithmetic counted over one evaluation of a scalar expression.
#[derive(Default, Clone, Copy)]
struct OpCounts {
    add: f64,
    mul: f64,
    div: f64,
    special: f64,
    minmax: f64,
    cmp: f64,
    select: f64,
    int: f64,
    loads: f64,
}

fn count_ops(e: &ScalarExpr, c: &mut OpCounts) {
    match e {
        ScalarExpr::Const(_) | ScalarExpr::Acc => {}
        ScalarExpr::Access(a) => {
            c.loads += 1.0;
            c.int += a.index.iter().map(index_ops).sum::<f64>();
        }
        ScalarExpr::InBounds(a) => {
            c.cmp += 2.0 * a.index.len() as f64;
            c.int += a.index.iter().map(index_ops).sum::<f64>();
        }
        ScalarExpr::Unary(op, x) => {
            match op {
                UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Floor | UnaryOp::Ceil => c.add += 1.0,
                UnaryOp::Recip => c.div += 1.0,
                _ => c.special += 1.0,
            }
            count_ops(x, c);
        }
        ScalarExpr::Cast(_, x) => count_ops(x, c),
        ScalarExpr::Binary(op, a, b) => {
            match op {
                BinaryOp::Add | BinaryOp::Sub => c.add += 1.0,
                BinaryOp::Mul => c.mul += 1.0,
                BinaryOp::Div => c.div += 1.0,
                BinaryOp::Max | BinaryOp::Min => c.minmax += 1.0,
                BinaryOp::Pow => c.special += 1.0,
            }
            count_ops(a, c);
            count_ops(b, c);
        }
        ScalarExpr::Cmp(_, a, b) => {
            c.cmp += 1.0;
            count_ops(a, c);
            count_ops(b, c);
        }
        ScalarExpr::Select(k, t, f) => {
            c.select += 1.0;
            count_ops(k, c);
            count_ops(t, c);
            count_ops(f, c);
        }
    }
}

/// Integer operations of one subscript (terms, divisions, modulos).
fn index_ops(e: &AffineExpr) -> f64 {
    use kiln_ir::expr::Atom;
    e.terms
        .iter()
        .map(|(_, a)| match a {
            Atom::Iter(_) => 1.0,
            Atom::FloorDiv(x, _) | Atom::Mod(x, _) => 2.0 + index_ops(x),
        })
        .sum()
}

/// Stride class of an access along one loop.
#[derive(Clone, Copy, PartialEq)]
enum Stride {
    Broadcast,
    Contiguous,
    Strided,
    Irregular,
}

fn stride_of(flat: &AffineExpr, loop_id: usize) -> Stride {
    match flat.linear_coef(loop_id) {
        Some(0) => Stride::Broadcast,
        Some(1) | Some(-1) => Stride::Contiguous,
        Some(_) => Stride::Strided,
        None => Stride::Irregular,
    }
}

/// One access of the nest's body or epilogue, over loop ids.
struct AccessInfo {
    flat: AffineExpr,
    elem: f64,
    numel: f64,
    epilogue: bool,
}

fn accesses(nest: &LoopNest) -> Vec<AccessInfo> {
    let ranges = nest.loop_ranges();
    let mut out = vec![];
    let mut visit = |a: &kiln_ir::expr::Access, epilogue: bool| {
        let Some(op) = nest.expr.inputs.get(a.input) else {
            return;
        };
        let flat = flat_offset(&a.index, &op.ty.shape)
            .substitute(&|i| nest.defs.get(i).cloned().unwrap_or_default())
            .simplified(Some(&ranges));
        out.push(AccessInfo {
            flat,
            elem: op.ty.dtype.size_of() as f64,
            numel: op.ty.numel() as f64,
            epilogue,
        });
    };
    nest.expr.body.visit_accesses(&mut |a| visit(a, false));
    if let Some(ep) = &nest.expr.epilogue {
        ep.visit_accesses(&mut |a| visit(a, true));
    }
    out
}

/// Product of the extents of `loops[from..]` whose ids `used` accepts.
fn extent_product(nest: &LoopNest, from: usize, used: &dyn Fn(usize) -> bool) -> f64 {
    nest.loops[from.min(nest.loops.len())..]
        .iter()
        .filter(|l| used(l.id))
        .map(|l| l.extent.max(1) as f64)
        .product()
}

/// Distinct bytes `a` touches inside `loops[from..]` (outer loops fixed).
fn footprint(nest: &LoopNest, a: &AccessInfo, from: usize) -> f64 {
    let inner = extent_product(nest, from, &|id| a.flat.uses(id));
    inner.min(a.numel) * a.elem
}

/// The nest block ([`NEST_LEN`] values).
pub fn nest_features(nest: &LoopNest, schedule: &Schedule, caches: &CacheSizes) -> Vec<f32> {
    let mut stores = vec![store_features(nest, caches)];
    for s in &nest.stages {
        stores.push(stage_features(nest, s, caches));
    }
    let mut v = vec![0.0f32; STORE_LEN];
    v.extend_from_slice(&stores[0]);
    for s in &stores {
        for (k, x) in s.iter().enumerate() {
            v[k] += x;
            v[STORE_LEN + k] = v[STORE_LEN + k].max(*x);
        }
    }
    v.push(lg(stores.len() as f64));
    v.push(lg(schedule.steps.len() as f64));
    v.push(lg(nest.expr.inputs.len() as f64));
    v.extend(step_tokens(schedule));
    debug_assert_eq!(v.len(), NEST_LEN);
    v
}

/// Step kinds as bag-of-tokens: kind x position quarter, plus hashed
/// (kind, log2 of the step's size parameter).
fn step_tokens(s: &Schedule) -> Vec<f32> {
    let mut v = vec![0.0f32; STEP_KINDS * POS_BUCKETS + STEP_HASH];
    let n = s.steps.len().max(1);
    for (k, step) in s.steps.iter().enumerate() {
        let (kind, param) = match step {
            Step::Split { factor, .. } => (0, *factor),
            Step::Reorder { order } => (1, order.len()),
            Step::Fuse { .. } => (2, 0),
            Step::Vectorize { lanes, .. } => (3, *lanes),
            Step::Unroll { factor, .. } => (4, *factor),
            Step::Parallel { .. } => (5, 0),
            Step::Pack { block, .. } => (6, *block),
            Step::CacheRead { .. } => (7, 0),
            Step::ComputeAt { .. } => (8, 0),
        };
        let pos = k * POS_BUCKETS / n;
        v[kind * POS_BUCKETS + pos] += 1.0;
        let log = usize::BITS - param.leading_zeros();
        let key = format!("{}:{log}", step.name());
        v[STEP_KINDS * POS_BUCKETS + bucket(&key, STEP_HASH)] += 1.0;
    }
    v
}

/// The output store's [`STORE_LEN`] values, in order:
/// - 0..9 float ops over the whole nest: add, mul, div, special functions,
///   min/max, compares, selects, reduction combines, all float ops;
/// - 9 integer (index) ops; 10..14 loads, load bytes, stores, store bytes;
/// - 14..18 accesses whose innermost-loop stride is broadcast /
///   contiguous / strided / irregular; 18..22 the same along the
///   vectorized loop;
/// - 22 summed log2 reuse count, 23 max log2 reuse distance (iterations),
///   24 max log2 reuse distance (bytes), 25 distinct bytes touched;
/// - 26 loops, 27 reduction loops, 28 output points, 29 reduction extent,
///   30 innermost extent, 31 innermost is a reduction;
/// - 32 vector lanes (log2), 33 vector loop extent, 34 its depth from the
///   innermost loop, 35 output store contiguous along it;
/// - 36 product of unroll factors, 37 unrolled loops, 38 parallel extent;
/// - 39..42 total bytes against L1/L2/L3, 42 iterations outside the
///   largest block fitting L1, 43 the same for L2;
///
/// Stage copies use the same layout (see `stage_features`).
fn store_features(nest: &LoopNest, caches: &CacheSizes) -> Vec<f32> {
    let mut v = vec![0.0f32; STORE_LEN];
    let total = extent_product(nest, 0, &|_| true);
    let out_pts = nest.expr.output.numel() as f64;
    let (mut body, mut ep) = (OpCounts::default(), OpCounts::default());
    count_ops(&nest.expr.body, &mut body);
    if let Some(e) = &nest.expr.epilogue {
        count_ops(e, &mut ep);
    }
    let combine = nest.expr.reduce.as_ref().map_or(0.0, |_| total);
    let f = |b: f64, e: f64| b * total + e * out_pts;
    let ops = [
        f(body.add, ep.add),
        f(body.mul, ep.mul),
        f(body.div, ep.div),
        f(body.special, ep.special),
        f(body.minmax, ep.minmax),
        f(body.cmp, ep.cmp),
        f(body.select, ep.select),
        combine,
    ];
    let sum: f64 = ops.iter().sum();
    for (k, x) in ops.iter().chain([&sum]).enumerate() {
        v[k] = lg(*x);
    }
    let out_elem = nest.expr.output.dtype.size_of() as f64;
    v[9] = lg(f(body.int, ep.int));
    let acc = accesses(nest);
    let load_bytes: f64 = acc
        .iter()
        .map(|a| a.elem * if a.epilogue { out_pts } else { total })
        .sum();
    v[10] = lg(f(body.loads, ep.loads));
    v[11] = lg(load_bytes);
    v[12] = lg(out_pts);
    v[13] = lg(out_pts * out_elem);
    access_features(nest, &acc, &mut v);
    loop_features(nest, out_pts, &mut v);
    let output = AccessInfo {
        flat: output_offset(nest),
        elem: out_elem,
        numel: out_pts,
        epilogue: false,
    };
    cache_features(nest, &acc, &output, caches, &mut v[39..44]);
    v
}

/// The flat offset of the output store over loop ids.
fn output_offset(nest: &LoopNest) -> AffineExpr {
    let n = nest.expr.iters.len();
    let idx: Vec<AffineExpr> = (0..n).map(|i| nest.defs[i].clone()).collect();
    flat_offset(&idx, &nest.expr.output.shape).simplified(Some(&nest.loop_ranges()))
}

/// Stride classes and reuse (slots 14..26).
fn access_features(nest: &LoopNest, acc: &[AccessInfo], v: &mut [f32]) {
    let inner = nest.loops.last().map(|l| l.id);
    let vec = nest.loops.iter().find(|l| l.vector.is_some()).map(|l| l.id);
    let class = |s: Stride| s as usize;
    let (mut dist_it, mut dist_b, mut bytes) = (0.0f32, 0.0f32, 0.0);
    for a in acc {
        if let Some(id) = inner {
            v[14 + class(stride_of(&a.flat, id))] += 1.0;
        }
        if let Some(id) = vec {
            v[18 + class(stride_of(&a.flat, id))] += 1.0;
        }
        v[22] += lg(extent_product(nest, 0, &|id| !a.flat.uses(id)));
        // Iterations between reuses: the loops inside the innermost loop
        // the access does not depend on.
        if let Some(p) = nest.loops.iter().rposition(|l| !a.flat.uses(l.id)) {
            let it = extent_product(nest, p + 1, &|_| true);
            dist_it = dist_it.max(lg(it));
            dist_b = dist_b.max(lg(footprint(nest, a, p + 1)));
        }
        bytes += footprint(nest, a, 0);
    }
    v[23] = dist_it;
    v[24] = dist_b;
    v[25] = lg(bytes);
}

/// Loop structure, vectorization, unrolling, parallelism (slots 26..39).
fn loop_features(nest: &LoopNest, out_pts: f64, v: &mut [f32]) {
    let n = nest.loops.len();
    v[26] = lg(n as f64);
    v[27] = lg(nest.loops.iter().filter(|l| l.reduce).count() as f64);
    v[28] = lg(out_pts);
    v[29] = lg(extent_product(nest, 0, &|id| {
        nest.loops.iter().any(|l| l.id == id && l.reduce)
    }));
    if let Some(l) = nest.loops.last() {
        v[30] = lg(l.extent as f64);
        v[31] = l.reduce as u8 as f32;
    }
    if let Some(p) = nest.loops.iter().position(|l| l.vector.is_some()) {
        let l = &nest.loops[p];
        v[32] = lg(l.vector.unwrap_or(1) as f64);
        v[33] = lg(l.extent as f64);
        v[34] = lg((n - 1 - p) as f64);
        v[35] = (stride_of(&output_offset(nest), l.id) == Stride::Contiguous) as u8 as f32;
    }
    let unroll: f64 = nest.loops.iter().map(|l| l.unroll.max(1) as f64).product();
    v[36] = lg(unroll);
    v[37] = lg(nest.loops.iter().filter(|l| l.unroll > 1).count() as f64);
    let par: f64 = nest
        .loops
        .iter()
        .filter(|l| l.parallel)
        .map(|l| l.extent as f64)
        .product();
    v[38] = if nest.loops.iter().any(|l| l.parallel) {
        lg(par)
    } else {
        0.0
    };
}

/// Working set against the caches (5 slots): total bytes over L1, L2, L3;
/// iterations outside the largest loop block that fits L1, then L2.
fn cache_features(
    nest: &LoopNest,
    acc: &[AccessInfo],
    output: &AccessInfo,
    caches: &CacheSizes,
    v: &mut [f32],
) {
    let ws = |from: usize| -> f64 {
        acc.iter()
            .chain([output])
            .map(|a| footprint(nest, a, from))
            .sum()
    };
    let total = ws(0);
    for (k, c) in caches.levels().iter().enumerate() {
        v[k] = ratio(total, *c);
    }
    for (k, c) in [caches.l1, caches.l2].iter().enumerate() {
        // Outermost depth whose inner block fits; the loops above it
        // re-enter the block.
        let n = nest.loops.len();
        let p = (0..=n).find(|&p| ws(p) <= *c).unwrap_or(n);
        v[3 + k] = lg(extent_product(nest, 0, &|id| {
            nest.loops[..p].iter().any(|l| l.id == id)
        }));
    }
}

/// A staged input's copy as a store: loads and stores of the copied
/// elements, contiguous, plus its working set.
fn stage_features(nest: &LoopNest, s: &kiln_ir::expr::Stage, caches: &CacheSizes) -> Vec<f32> {
    let mut v = vec![0.0f32; STORE_LEN];
    let Some(op) = nest.expr.inputs.get(s.input) else {
        return v;
    };
    let elem = op.ty.dtype.size_of() as f64;
    let (per_fill, fills) = match (s.kind, s.at) {
        (StageKind::Pack { .. }, _) | (_, None) => (op.ty.numel() as f64, 1.0),
        (_, Some(at)) => {
            let region = nest.region(s);
            let through = nest
                .loops
                .iter()
                .position(|l| l.id == at)
                .map_or(0, |p| p + 1);
            let fills = nest.loops[..through]
                .iter()
                .map(|l| l.extent.max(1) as f64)
                .product::<f64>();
            (region.extent.iter().product::<usize>() as f64, fills)
        }
    };
    let copied = per_fill * fills;
    v[10] = lg(copied);
    v[11] = lg(copied * elem);
    v[12] = lg(copied);
    v[13] = lg(copied * elem);
    v[15] = 1.0;
    v[25] = lg(per_fill * elem);
    if s.kind == StageKind::ComputeAt {
        // The producer's arithmetic is not visible here: count the fill
        // as one special op per element so the store is not free.
        v[3] = lg(copied);
    }
    for (k, c) in caches.levels().iter().enumerate() {
        v[39 + k] = ratio(per_fill * elem, *c);
    }
    v
}
