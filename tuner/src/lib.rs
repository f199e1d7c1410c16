//! Kiln's tuner: per-workload search spaces, measured candidates, a learned
//! cost model that transfers across hardware, and a crash-safe tuning
//! database keyed by workload, target and epoch.
//!
//! - [`key`]: stable 128-bit workload keys over canonical bytes;
//! - [`target`]: the target descriptor (CPU model, ISA, cores, caches; GPU);
//! - [`record`]: a tuning record (schedule, samples, status, protocol);
//! - [`db`]: the database over a [`db::Storage`] backend (sled, redb);
//! - [`cost`]: features, the ranking MLP, metrics and transfer.

pub mod cost;
pub mod db;
mod error;
pub mod key;
pub mod record;
pub mod target;

pub use error::TunerError;
