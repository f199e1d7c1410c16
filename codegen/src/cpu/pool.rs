//! A small fork-join thread pool whose workers spin between jobs.
//!
//! A model run is a sequence of kernels a few microseconds apart; waking a
//! sleeping thread for each (futex, scheduler) costs about as much as a small
//! kernel. Workers of a [`SpinPool`] therefore poll for the next job for a
//! while ([`SpinPool::new`]'s `spin`) before they sleep on a condition variable.
//!
//! The spin loops do not use the PAUSE hint: under KVM, pause-loop exiting
//! takes a vCPU that spins with PAUSE off its core, and the worker then
//! notices the next kernel late (measured in this VM: MobileNetV2 at 2
//! threads 3.66 → 3.45 ms without it). Waiting callers still yield the core
//! every few thousand polls in case threads outnumber cores.
//!
//! [`SpinPool::install`] makes the pool current on the calling thread; while it
//! is, [`split`] hands tasks to its workers and runs one share on the caller.
//! Without a current pool `split` uses rayon's current pool. One job runs at a
//! time: a second thread that finds the pool busy runs its tasks itself.

use std::cell::RefCell;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The job being run: a task body and how many tasks it has.
struct Job {
    /// `&dyn Fn(task)` with its lifetime erased; valid while `run` waits.
    body: *const (dyn Fn(usize) + Sync),
    tasks: usize,
}

struct Shared {
    job: Mutex<Option<Job>>,
    wake: Condvar,
    epoch: AtomicU64,
    next: AtomicUsize,
    done: AtomicUsize,
    /// Workers inside the current job (joined under the job lock).
    active: AtomicUsize,
    /// Workers waiting on `wake` (changed under the job lock): a job is
    /// published with a wake-up call only when some worker sleeps, so
    /// spinning workers cost no system call per kernel.
    sleepers: AtomicUsize,
    stop: AtomicBool,
    spin: Duration,
}

// SAFETY: the raw job pointer is only dereferenced while `run` keeps the
// closure alive and waits for every task to finish.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

/// A pool of `threads - 1` spinning workers plus the calling thread.
pub struct SpinPool {
    shared: Arc<Shared>,
    busy: Mutex<()>,
    workers: Vec<JoinHandle<()>>,
    threads: usize,
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<SpinPool>>> = const { RefCell::new(None) };
    static IN_WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl SpinPool {
    /// A pool for `threads` threads in all (the caller counts as one);
    /// idle workers poll for `spin` before sleeping.
    pub fn new(threads: usize, spin: Duration) -> std::io::Result<Arc<SpinPool>> {
        let shared = Arc::new(Shared {
            job: Mutex::new(None),
            wake: Condvar::new(),
            epoch: AtomicU64::new(0),
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            spin,
        });
        let mut workers = Vec::new();
        for i in 1..threads.max(1) {
            let s = shared.clone();
            workers.push(
                std::thread::Builder::new()
                    .name(format!("kiln-worker-{i}"))
                    .spawn(move || worker(&s))?,
            );
        }
        Ok(Arc::new(SpinPool {
            shared,
            busy: Mutex::new(()),
            workers,
            threads: threads.max(1),
        }))
    }

    /// Threads in all, the caller included.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f` with this pool current on the calling thread.
    pub fn install<R>(self: &Arc<Self>, f: impl FnOnce() -> R) -> R {
        let prev = CURRENT.with(|c| c.replace(Some(self.clone())));
        let r = f();
        CURRENT.with(|c| *c.borrow_mut() = prev);
        r
    }

    /// Runs `body(t)` for every task `t < tasks` on the workers and the caller.
    fn run(&self, tasks: usize, body: &(dyn Fn(usize) + Sync)) {
        let Ok(_guard) = self.busy.try_lock() else {
            (0..tasks).for_each(body);
            return;
        };
        let s = &self.shared;
        // SAFETY: erases the borrow's lifetime; `run` waits below until every
        // task (the only users of the pointer) has finished.
        let erased: *const (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(body) };
        // Counters first: no worker is inside a job now (the last run waited
        // for `active == 0`), and none can join before the job is published.
        s.next.store(0, Ordering::SeqCst);
        s.done.store(0, Ordering::SeqCst);
        let sleeping = {
            // Publish and bump the epoch under the lock a sleeping worker
            // checks the epoch (and counts itself) under, so its wake-up
            // cannot be lost.
            let mut job = s.job.lock().unwrap_or_else(|e| e.into_inner());
            *job = Some(Job {
                body: erased,
                tasks,
            });
            s.epoch.fetch_add(1, Ordering::SeqCst);
            s.sleepers.load(Ordering::SeqCst)
        };
        if sleeping > 0 {
            s.wake.notify_all();
        }
        take_tasks(s, body, tasks);
        wait_until(|| s.done.load(Ordering::Acquire) >= tasks);
        // No worker may join once the job is gone; wait for those that did to
        // leave before the closure (and the task counters) can be reused.
        *s.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
        wait_until(|| s.active.load(Ordering::Acquire) == 0);
    }
}

/// Spins until `done()`, yielding the core now and then (a worker that holds
/// a task may be waiting for it when threads outnumber cores).
fn wait_until(done: impl Fn() -> bool) {
    let mut spins = 0u32;
    while !done() {
        spins += 1;
        if spins.is_multiple_of(4096) {
            std::thread::yield_now();
        }
    }
}

/// Claims and runs tasks until none is left.
fn take_tasks(s: &Shared, body: &(dyn Fn(usize) + Sync), tasks: usize) {
    loop {
        let t = s.next.fetch_add(1, Ordering::AcqRel);
        if t >= tasks {
            return;
        }
        body(t);
        s.done.fetch_add(1, Ordering::AcqRel);
    }
}

fn worker(s: &Shared) {
    IN_WORKER.with(|w| w.set(true));
    let mut seen = 0;
    while !s.stop.load(Ordering::Acquire) {
        let since = Instant::now();
        while s.epoch.load(Ordering::Acquire) == seen && since.elapsed() < s.spin {}
        let mut job = s.job.lock().unwrap_or_else(|e| e.into_inner());
        while s.epoch.load(Ordering::Acquire) == seen && !s.stop.load(Ordering::Acquire) {
            s.sleepers.fetch_add(1, Ordering::SeqCst);
            job = s.wake.wait(job).unwrap_or_else(|e| e.into_inner());
            s.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
        seen = s.epoch.load(Ordering::Acquire);
        let Some(j) = job.as_ref().map(|j| (j.body, j.tasks)) else {
            continue;
        };
        s.active.fetch_add(1, Ordering::AcqRel);
        drop(job);
        // SAFETY: this worker joined while the job was published, and `run`
        // keeps the body alive until `active` drops back to 0.
        take_tasks(s, unsafe { &*j.0 }, j.1);
        s.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for SpinPool {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        {
            let _job = self.shared.job.lock();
            self.shared.wake.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Calls `f` on `tasks` contiguous, near-equal ranges covering `0..items`:
/// on the current [`SpinPool`] if one is installed, serially inside a pool
/// worker, otherwise on rayon's current pool. The caller runs a share.
pub fn split<F>(items: usize, tasks: usize, f: F)
where
    F: Fn(Range<usize>) + Sync,
{
    let tasks = tasks.min(items).max(1);
    let range = |t: usize| (t * items / tasks)..((t + 1) * items / tasks);
    if tasks == 1 || IN_WORKER.with(|w| w.get()) {
        f(0..items);
        return;
    }
    if let Some(pool) = CURRENT.with(|c| c.borrow().clone()) {
        pool.run(tasks, &|t| f(range(t)));
        return;
    }
    rayon::scope(|s| {
        for t in 1..tasks {
            let f = &f;
            s.spawn(move |_| f(range(t)));
        }
        f(range(0));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_runs_once_on_the_pool() {
        let pool = SpinPool::new(3, Duration::from_micros(200)).unwrap();
        for items in [1, 2, 7, 100, 1000] {
            let hits: Vec<AtomicUsize> = (0..items).map(|_| AtomicUsize::new(0)).collect();
            pool.install(|| {
                split(items, 3, |r| {
                    r.for_each(|i| {
                        hits[i].fetch_add(1, Ordering::Relaxed);
                    })
                })
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        }
    }

    #[test]
    fn back_to_back_jobs_never_mix() {
        // A worker late for one job must not run the next job's tasks with
        // the old closure (each job's closure owns different data).
        let pool = SpinPool::new(2, Duration::from_micros(100)).unwrap();
        for j in 0..20_000usize {
            let data: Vec<usize> = (0..(j % 5) + 2).map(|i| i + j).collect();
            let sum = AtomicUsize::new(0);
            pool.install(|| {
                split(data.len(), 2, |r| {
                    sum.fetch_add(data[r].iter().sum::<usize>(), Ordering::Relaxed);
                })
            });
            assert_eq!(sum.load(Ordering::Relaxed), data.iter().sum::<usize>());
        }
    }

    #[test]
    fn sleeping_workers_wake_for_the_next_job() {
        // Workers spin 20 µs, then sleep. Each job's two tasks wait for each
        // other, so a job completes only if the sleeping worker was woken
        // (a lost wake-up would leave the caller waiting: it times out).
        let pool = SpinPool::new(2, Duration::from_micros(20)).unwrap();
        for _ in 0..50 {
            std::thread::sleep(Duration::from_millis(2));
            let started = AtomicUsize::new(0);
            let met = AtomicUsize::new(0);
            pool.install(|| {
                split(2, 2, |_| {
                    started.fetch_add(1, Ordering::SeqCst);
                    let t0 = Instant::now();
                    while started.load(Ordering::SeqCst) < 2 {
                        if t0.elapsed() > Duration::from_secs(2) {
                            return;
                        }
                        std::hint::spin_loop();
                    }
                    met.fetch_add(1, Ordering::SeqCst);
                })
            });
            assert_eq!(
                met.load(Ordering::SeqCst),
                2,
                "a sleeping worker was not woken"
            );
        }
    }

    #[test]
    fn concurrent_callers_share_one_pool() {
        let pool = SpinPool::new(2, Duration::from_micros(50)).unwrap();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        let sum = AtomicUsize::new(0);
                        pool.install(|| {
                            split(64, 2, |r| {
                                sum.fetch_add(r.sum::<usize>(), Ordering::Relaxed);
                            })
                        });
                        assert_eq!(sum.load(Ordering::Relaxed), 64 * 63 / 2);
                    }
                });
            }
        });
    }
}
