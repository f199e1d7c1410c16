//! Per-thread scratch memory for staged buffers: each thread (each call
//! of `run_range`) reuses its own growing buffer, so a hot loop of calls
//! does not allocate; a nested call on the same thread gets a fresh one.

use std::cell::RefCell;

thread_local! {
    static SCRATCH: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Calls `f` with at least `bytes` bytes of 8-byte-aligned scratch memory
/// (a null pointer when `bytes` is 0).
pub(super) fn with_scratch<R>(bytes: usize, f: impl FnOnce(*mut u8) -> R) -> R {
    if bytes == 0 {
        return f(std::ptr::null_mut());
    }
    let words = bytes.div_ceil(8);
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut v) => {
            if v.len() < words {
                v.resize(words, 0);
            }
            f(v.as_mut_ptr() as *mut u8)
        }
        Err(_) => {
            let mut v = vec![0u64; words];
            f(v.as_mut_ptr() as *mut u8)
        }
    })
}
