//! The on-disk layout of a tuning record: key bytes and a checksummed value.
//!
//! Key (66 bytes, big-endian so related records are adjacent and share
//! prefixes):
//!
//! ```text
//! "R1" ‖ xxh3_64(family) u64 ‖ workload hash u128 ‖ target id u128
//!      ‖ epoch.schedule u32 ‖ epoch.codegen u32 ‖ digest u128
//! ```
//!
//! where `digest` is XXH3-128 of the JSON payload, so the same record stored
//! twice (e.g. imported again) lands on the same key.
//!
//! Value: `"KRV1" ‖ xxh3_64(payload) u64 LE ‖ len(payload) u32 LE ‖ payload`,
//! the payload being the record's compact JSON. [`decode`] checks the magic,
//! length, checksum, JSON, the workload hash against family and canonical
//! bytes, and that the key is the one the record would be stored under, so a
//! torn, flipped or misfiled value is reported, never applied.

use crate::key::WorkloadKey;
use crate::record::Record;
use crate::target::{Epoch, TargetDescriptor};
use crate::TunerError;
use xxhash_rust::xxh3::{xxh3_128, xxh3_64};

/// First bytes of every record key.
pub const KEY_TAG: &[u8] = b"R1";
/// First bytes of every record value.
pub const VALUE_MAGIC: &[u8] = b"KRV1";
/// Length of a record key.
pub const KEY_LEN: usize = 2 + 8 + 16 + 16 + 8 + 16;
const HEADER_LEN: usize = 4 + 8 + 4;

/// Prefix of every record of `family`.
pub fn family_prefix(family: &str) -> Vec<u8> {
    let mut k = KEY_TAG.to_vec();
    k.extend_from_slice(&xxh3_64(family.as_bytes()).to_be_bytes());
    k
}

/// Prefix of every record of the workload with hash `key.hash`.
pub fn workload_prefix(key: &WorkloadKey) -> Vec<u8> {
    let mut k = family_prefix(&key.family);
    k.extend_from_slice(&key.hash.to_be_bytes());
    k
}

/// Prefix of the records of a workload on one target in one epoch.
pub fn exact_prefix(key: &WorkloadKey, target: &TargetDescriptor, epoch: &Epoch) -> Vec<u8> {
    let mut k = workload_prefix(key);
    k.extend_from_slice(&target.id().to_be_bytes());
    k.extend_from_slice(&epoch.schedule.to_be_bytes());
    k.extend_from_slice(&epoch.codegen.to_be_bytes());
    k
}

/// The key and value a record is stored as. The record must already be
/// validated and its target normalized.
pub fn encode(rec: &Record) -> Result<(Vec<u8>, Vec<u8>), TunerError> {
    let payload = serde_json::to_vec(rec).map_err(|e| TunerError::InvalidRecord(e.to_string()))?;
    Ok((key_for(rec, &payload), frame(&payload)))
}

/// The key of `rec` whose JSON payload is `payload`.
fn key_for(rec: &Record, payload: &[u8]) -> Vec<u8> {
    let mut k = exact_prefix(&rec.workload, &rec.target, &rec.epoch);
    k.extend_from_slice(&xxh3_128(payload).to_be_bytes());
    k
}

/// A payload framed with magic, checksum and length.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_LEN + payload.len());
    v.extend_from_slice(VALUE_MAGIC);
    v.extend_from_slice(&xxh3_64(payload).to_le_bytes());
    v.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    v.extend_from_slice(payload);
    v
}

/// The JSON payload of a value, after checking magic, length and checksum.
pub fn payload<'a>(key: &[u8], value: &'a [u8]) -> Result<&'a [u8], TunerError> {
    let bad = |m: String| corrupt(key, m);
    if value.len() < HEADER_LEN || &value[..4] != VALUE_MAGIC {
        return Err(bad(format!("bad header ({} bytes)", value.len())));
    }
    let sum = u64::from_le_bytes(value[4..12].try_into().unwrap_or_default());
    let len = u32::from_le_bytes(value[12..16].try_into().unwrap_or_default()) as usize;
    let body = &value[HEADER_LEN..];
    if body.len() != len {
        return Err(bad(format!("torn value: {} of {len} bytes", body.len())));
    }
    if xxh3_64(body) != sum {
        return Err(bad("checksum mismatch".into()));
    }
    Ok(body)
}

/// Decodes and checks a stored record (see the module doc).
pub fn decode(key: &[u8], value: &[u8]) -> Result<Record, TunerError> {
    let body = payload(key, value)?;
    let rec: Record = serde_json::from_slice(body).map_err(|e| corrupt(key, e.to_string()))?;
    if !rec.workload.is_consistent() {
        return Err(corrupt(
            key,
            "workload hash does not match its canonical bytes".into(),
        ));
    }
    if key_for(&rec, body) != key {
        return Err(corrupt(key, "stored under the wrong key".into()));
    }
    Ok(rec)
}

/// Hex form of a key, for messages.
pub fn key_hex(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

fn corrupt(key: &[u8], message: String) -> TunerError {
    TunerError::CorruptRecord {
        key: key_hex(key),
        message,
    }
}
