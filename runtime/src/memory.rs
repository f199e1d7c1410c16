//! The static memory planner: every intermediate buffer gets an arena
//! offset so that buffers alive at the same time never overlap, and buffers
//! whose lifetimes are disjoint share memory.
//!
//! Greedy by size (largest first), each placed at the lowest 64-byte
//! aligned offset that does not collide with an already placed buffer whose
//! lifetime overlaps. Lifetimes are inclusive step ranges: a buffer is live
//! from the step that writes it to the last step that reads it.

/// Alignment of every buffer, in bytes (one cache line, any SIMD width).
pub const ALIGN: usize = 64;

/// A buffer to place: its size and inclusive live range of steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub bytes: usize,
    pub first: usize,
    pub last: usize,
}

/// Where each request went and the arena size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryPlan {
    /// Byte offset of each request, in request order.
    pub offsets: Vec<usize>,
    /// Arena bytes: the peak of simultaneously live intermediate memory as placed.
    pub arena_bytes: usize,
    /// Sum of all request sizes: what running without reuse would need.
    pub total_bytes: usize,
}

fn round_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Places `requests` (see the module docs).
pub fn plan(requests: &[Request]) -> MemoryPlan {
    let mut order: Vec<usize> = (0..requests.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(requests[i].bytes), i));
    let mut offsets = vec![0; requests.len()];
    let mut placed: Vec<usize> = Vec::new();
    let mut arena_bytes = 0;
    for &i in &order {
        let r = requests[i];
        let size = round_up(r.bytes.max(1));
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&j| overlaps(&requests[j], &r))
            .map(|&j| (offsets[j], offsets[j] + round_up(requests[j].bytes.max(1))))
            .collect();
        busy.sort_unstable();
        let mut at = 0;
        for (lo, hi) in busy {
            if at + size <= lo {
                break;
            }
            at = at.max(hi);
        }
        offsets[i] = at;
        arena_bytes = arena_bytes.max(at + size);
        placed.push(i);
    }
    MemoryPlan {
        offsets,
        arena_bytes,
        total_bytes: requests.iter().map(|r| round_up(r.bytes.max(1))).sum(),
    }
}

fn overlaps(a: &Request, b: &Request) -> bool {
    a.first <= b.last && b.first <= a.last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(bytes: usize, first: usize, last: usize) -> Request {
        Request { bytes, first, last }
    }

    /// Checks that no two live-overlapping requests share bytes.
    fn assert_valid(rs: &[Request], p: &MemoryPlan) {
        for i in 0..rs.len() {
            assert_eq!(p.offsets[i] % ALIGN, 0);
            assert!(p.offsets[i] + rs[i].bytes <= p.arena_bytes);
            for j in 0..i {
                if overlaps(&rs[i], &rs[j]) {
                    let (a, b) = (p.offsets[i], p.offsets[j]);
                    assert!(
                        a + rs[i].bytes <= b || b + rs[j].bytes <= a,
                        "{i} and {j} collide"
                    );
                }
            }
        }
    }

    #[test]
    fn a_chain_reuses_two_buffers() {
        // x0 -> x1 -> x2 -> x3: each buffer lives from its step to the next.
        let rs: Vec<Request> = (0..4).map(|s| req(1000, s, s + 1)).collect();
        let p = plan(&rs);
        assert_valid(&rs, &p);
        assert_eq!(p.arena_bytes, 2 * 1024);
        assert_eq!(p.total_bytes, 4 * 1024);
    }

    #[test]
    fn random_lifetimes_never_collide() {
        let mut seed = 0x9e3779b97f4a7c15u64;
        let mut next = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % m) as usize
        };
        for _ in 0..50 {
            let rs: Vec<Request> = (0..40)
                .map(|_| {
                    let first = next(30);
                    req(1 + next(5000), first, first + next(10))
                })
                .collect();
            let p = plan(&rs);
            assert_valid(&rs, &p);
            assert!(p.arena_bytes <= p.total_bytes);
        }
    }
}
