//! Kiln's tuner: per-workload search spaces, measured candidates, a learned
//! cost model that transfers across hardware, and a crash-safe tuning
//! database keyed by workload, target and epoch.
//!
//! - [`key`]: stable 128-bit workload keys over canonical bytes;
//! - [`target`]: the target descriptor (CPU model, ISA, cores, caches; GPU);
//! - [`record`]: a tuning record (schedule, samples, status, protocol);
//! - [`db`]: the database over a [`db::Storage`] backend (sled, redb);
//! - [`cost`]: features, the ranking MLP, metrics and transfer;
//! - [`measure`]: candidates checked against the interpreter, then timed
//!   interleaved; [`worker`]: the same in a child process (crash/hang safe);
//! - [`guide`]: the cost model in the loop (samples, online retraining, ranking);
//! - [`search`]: enumeration or evolutionary proposals ranked by a model;
//! - [`tune`]: a model's workloads, the task scheduler, the kept configs.

pub mod cost;
pub mod db;
mod error;
pub mod guide;
pub mod key;
pub mod measure;
pub mod record;
pub mod search;
pub mod target;
pub mod tune;
pub mod worker;

pub use error::TunerError;
