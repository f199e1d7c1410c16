//! Large buffers on 2 MiB pages where the OS allows it.
//!
//! Kernels stream weights and activations of several megabytes; on 4 KiB
//! pages every 4 KiB step is a TLB miss, and under virtualisation each miss
//! walks two page tables. Measured on the 5 MB classifier weights of
//! MobileNetV2 (GEMV, 2 threads): 290 µs on 4 KiB pages, 110 µs on 2 MiB
//! pages. Linux with transparent huge pages in `madvise` mode (the common
//! default) backs a region with 2 MiB pages only when asked, before the
//! pages are first touched, which [`filled_vec`] does for buffers of 2 MiB
//! and more. Elsewhere it is a plain `vec!`.
//!
//! Weights are mostly smaller than a page, so [`Paged`] copies them into
//! shared 4 MiB chunks on huge pages: a model's weights then span about one
//! TLB entry per 2 MiB instead of one per 4 KiB. A chunk is freed when the
//! last buffer in it is dropped.

use std::sync::{Arc, Mutex};

/// Bytes of one huge page.
const HUGE: usize = 2 << 20;

/// `vec![value; n]`, its whole 2 MiB pages advised as huge pages first when
/// it spans at least 2 MiB (the capacity then has up to 2 MiB of slack, so
/// that the data can cover whole aligned pages).
pub fn filled_vec<T: Clone>(n: usize, value: T) -> Vec<T> {
    let size = std::mem::size_of::<T>().max(1);
    if n.saturating_mul(size) < HUGE {
        return vec![value; n];
    }
    let mut v: Vec<T> = Vec::with_capacity(n + HUGE / size);
    advise_huge(v.as_ptr() as usize, n * size + HUGE);
    v.resize(n, value);
    v
}

/// Asks the OS to back the whole 2 MiB pages inside `addr..addr + len` with
/// huge pages (best effort: a refusal only costs speed).
fn advise_huge(addr: usize, len: usize) {
    let start = addr.next_multiple_of(HUGE);
    let end = (addr + len) / HUGE * HUGE;
    if end <= start {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: the range lies inside an allocation this process owns;
        // MADV_HUGEPAGE changes how it is backed, never its contents.
        let rc =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        if rc != 0 {
            tracing::debug!(bytes = end - start, "madvise(MADV_HUGEPAGE) refused");
        }
    }
}

/// f32 values of one chunk of [`Paged`] buffers.
const CHUNK: usize = (4 << 20) / 4;

/// One chunk: written once per buffer, when it is placed, then only read.
/// All access goes through `ptr` (taken before the chunk is shared); the
/// vector only owns the memory.
struct Chunk {
    ptr: *mut f32,
    len: usize,
    _memory: Vec<f32>,
}

// SAFETY: each range of the chunk is written once, by the thread placing a
// buffer there under the `OPEN` lock, before any reader can see it.
unsafe impl Send for Chunk {}
unsafe impl Sync for Chunk {}

impl Chunk {
    fn new(mut memory: Vec<f32>) -> Chunk {
        Chunk {
            ptr: memory.as_mut_ptr(),
            len: memory.len(),
            _memory: memory,
        }
    }
}

/// The chunk new buffers go to, and how much of it is taken.
static OPEN: Mutex<Option<(Arc<Chunk>, usize)>> = Mutex::new(None);

/// An immutable f32 buffer inside a shared huge-page chunk (its own
/// allocation when larger than a chunk). Dereferences to `[f32]`.
#[derive(Clone)]
pub struct Paged {
    chunk: Arc<Chunk>,
    start: usize,
    len: usize,
}

impl Paged {
    /// A copy of `data`, 64-byte aligned.
    pub fn copy_of(data: &[f32]) -> Paged {
        let len = data.len();
        if len > CHUNK / 4 {
            let mut v = filled_vec(len + 16, 0f32);
            let start = aligned_offset(v.as_ptr());
            v[start..start + len].copy_from_slice(data);
            return Paged {
                chunk: Arc::new(Chunk::new(v)),
                start,
                len,
            };
        }
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        // `used` counts from the chunk's first 64-byte boundary.
        let fits = |o: &(Arc<Chunk>, usize)| {
            aligned_offset(o.0.ptr) + o.1.next_multiple_of(16) + len <= o.0.len
        };
        if !open.as_ref().is_some_and(fits) {
            *open = Some((Arc::new(Chunk::new(filled_vec(CHUNK, 0f32))), 0));
        }
        let (chunk, used) = open.as_mut().expect("an open chunk");
        let start = aligned_offset(chunk.ptr) + used.next_multiple_of(16);
        // SAFETY: start..start + len is inside the chunk and handed out to no
        // other buffer (`used` moves past it under the lock); readers of this
        // range only exist after this write, through the returned value.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), chunk.ptr.add(start), len) };
        *used = start - aligned_offset(chunk.ptr) + len;
        Paged {
            chunk: chunk.clone(),
            start,
            len,
        }
    }
}

/// Elements from `p` to the first 64-byte boundary.
fn aligned_offset(p: *const f32) -> usize {
    ((p as usize).next_multiple_of(64) - p as usize) / 4
}

impl std::ops::Deref for Paged {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        // SAFETY: the range was written when this buffer was placed and is
        // never written again; the chunk lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.chunk.ptr.add(self.start), self.len) }
    }
}

impl std::fmt::Debug for Paged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Paged({} values)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::{filled_vec, Paged};

    #[test]
    fn paged_buffers_keep_their_values_and_alignment() {
        let mut kept = Vec::new();
        for n in [0, 1, 17, 1000, 300_000, 500_000, 2_000_000] {
            let data: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
            let p = Paged::copy_of(&data);
            assert_eq!(&p[..], &data[..]);
            assert_eq!(p.as_ptr() as usize % 64, 0, "{n}");
            kept.push((p, data));
        }
        for (p, data) in &kept {
            assert_eq!(&p[..], &data[..]);
        }
        let copies: Vec<Paged> = kept.iter().map(|(p, _)| p.clone()).collect();
        drop(kept);
        assert_eq!(copies[3].len(), 1000);
        assert_eq!(copies[3][999], 999.0 * 0.5 - 3.0);
    }

    #[test]
    fn filled_vecs_hold_the_value_at_every_size() {
        for n in [0, 1, 1000, (2 << 20) / 4 - 1, (2 << 20) / 4, 3_000_000] {
            let v = filled_vec(n, 1.5f32);
            assert_eq!(v.len(), n);
            assert!(v.iter().all(|&x| x == 1.5));
        }
        let w = filled_vec(600_000, [7u8; 64]);
        assert!(w.iter().all(|x| x == &[7u8; 64]));
    }
}
