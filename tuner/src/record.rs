//! A tuning record: one measured (or failed) configuration of one workload on
//! one target in one epoch.
//!
//! The config is the schedule/knob point as JSON, opaque to the database.
//! All floating-point fields must be finite (JSON has no NaN or infinity);
//! [`Record::validate`] checks this and the workload key before storing.

use crate::key::WorkloadKey;
use crate::target::{Epoch, TargetDescriptor};
use crate::TunerError;
use serde::{Deserialize, Serialize};

/// The outcome of measuring a candidate. Only `Ok` records are ever applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum Status {
    Ok,
    CompileError(String),
    RuntimeError(String),
    Timeout,
    WrongResult(String),
}

impl Status {
    /// `ok`, `compile_error`, `runtime_error`, `timeout` or `wrong_result`.
    pub fn name(&self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::CompileError(_) => "compile_error",
            Status::RuntimeError(_) => "runtime_error",
            Status::Timeout => "timeout",
            Status::WrongResult(_) => "wrong_result",
        }
    }
}

/// How the samples were taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protocol {
    /// Untimed runs before sampling.
    pub warmup: u32,
    /// Timed runs (one sample each).
    pub repeats: u32,
    /// Whether runs alternated with the incumbent to cancel machine phases.
    pub interleaved: bool,
    /// Threads the kernel ran with.
    pub threads: u32,
}

/// One measured configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub workload: WorkloadKey,
    pub target: TargetDescriptor,
    pub epoch: Epoch,
    /// The schedule/knob point (opaque to the database).
    pub config: serde_json::Value,
    /// Every timed run, in nanoseconds.
    pub samples_ns: Vec<f64>,
    pub median_ns: f64,
    /// Coefficient of variation of the samples.
    pub cv: f64,
    pub status: Status,
    pub protocol: Protocol,
    /// Time to build the candidate, in milliseconds.
    pub compile_ms: f64,
    /// Seed of the search (or input data) that produced the candidate.
    pub seed: u64,
    /// Seconds since the Unix epoch when measured.
    pub timestamp_s: u64,
    /// The cost model's predicted score, if it was asked.
    pub predicted: Option<f64>,
}

impl Record {
    /// Checks what storage relies on: a consistent workload key and finite
    /// numbers (a NaN would not survive JSON).
    pub fn validate(&self) -> Result<(), TunerError> {
        if !self.workload.is_consistent() {
            return Err(TunerError::InvalidRecord(format!(
                "workload key {} does not hash its family and canonical bytes",
                self.workload
            )));
        }
        let scalars = [
            ("median_ns", self.median_ns),
            ("cv", self.cv),
            ("compile_ms", self.compile_ms),
            ("predicted", self.predicted.unwrap_or(0.0)),
        ];
        let samples = self.samples_ns.iter().map(|&s| ("samples_ns", s));
        match scalars
            .into_iter()
            .chain(samples)
            .find(|(_, v)| !v.is_finite())
        {
            Some((name, v)) => Err(TunerError::InvalidRecord(format!(
                "{name} is {v} in the record of workload {} (must be finite)",
                self.workload
            ))),
            None => Ok(()),
        }
    }

    /// Whether this record may be applied (measured fine).
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> Record {
        Record {
            workload: WorkloadKey::new("gemm", b"m64n64k64".to_vec()),
            target: TargetDescriptor::host_cpu(1).unwrap(),
            epoch: Epoch::CURRENT,
            config: serde_json::json!({"tile": [8, 16], "variant": "direct"}),
            samples_ns: vec![1.5, 2.25, 0.1 + 0.2],
            median_ns: 2.25,
            cv: 0.1,
            status: Status::WrongResult("max err 3.5".into()),
            protocol: Protocol {
                warmup: 2,
                repeats: 3,
                interleaved: true,
                threads: 1,
            },
            compile_ms: 12.5,
            seed: u64::MAX,
            timestamp_s: 1_790_000_000,
            predicted: Some(-0.75),
        }
    }

    #[test]
    fn json_roundtrip_is_exact() {
        let r = rec();
        let j = serde_json::to_string(&r).unwrap();
        let back: Record = serde_json::from_str(&j).unwrap();
        assert_eq!(back, r);
        assert_eq!(serde_json::to_string(&back).unwrap(), j);
        r.validate().unwrap();
    }

    #[test]
    fn validate_rejects_nan_and_forged_keys() {
        let mut r = rec();
        r.samples_ns.push(f64::NAN);
        assert!(r.validate().is_err());
        let mut r = rec();
        r.predicted = Some(f64::INFINITY);
        assert!(r.validate().is_err());
        let mut r = rec();
        r.workload.canonical.push(1);
        assert!(r.validate().is_err());
    }
}
