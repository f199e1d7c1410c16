//! Stable 128-bit workload keys.
//!
//! A workload (one kernel's problem: op family, shapes, attributes, dtypes)
//! is identified by its *canonical bytes*, produced by whoever defines the
//! workload. The key's hash is XXH3-128 (a fixed, documented function, unlike
//! `std::hash`) over a length-prefixed family name and the canonical bytes:
//!
//! ```text
//! u64 LE len(family) ‖ family ‖ u64 LE len(canonical) ‖ canonical
//! ```
//!
//! The hash only locates records; the canonical bytes are stored with every
//! record and compared on read, so a hash collision never applies a record to
//! the wrong workload. In JSON the hash is 32 hex digits and the canonical
//! bytes are a hex string.

use serde::{Deserialize, Serialize};
use std::fmt;
use xxhash_rust::xxh3::xxh3_128;

/// A workload: its family (e.g. `"conv2d"`), canonical bytes and their hash.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WorkloadKey {
    /// The op/kernel family; near matches are records of the same family.
    pub family: String,
    /// The workload's canonical form, compared on every read.
    #[serde(with = "hex_bytes")]
    pub canonical: Vec<u8>,
    /// [`WorkloadKey::hash_of`] of family and canonical bytes.
    #[serde(with = "hex_u128")]
    pub hash: u128,
}

impl WorkloadKey {
    /// The key of a workload of `family` with canonical bytes `canonical`.
    pub fn new(family: impl Into<String>, canonical: impl Into<Vec<u8>>) -> Self {
        let family = family.into();
        let canonical = canonical.into();
        let hash = Self::hash_of(&family, &canonical);
        WorkloadKey {
            family,
            canonical,
            hash,
        }
    }

    /// XXH3-128 over the length-prefixed family and canonical bytes.
    pub fn hash_of(family: &str, canonical: &[u8]) -> u128 {
        let mut buf = Vec::with_capacity(16 + family.len() + canonical.len());
        buf.extend_from_slice(&(family.len() as u64).to_le_bytes());
        buf.extend_from_slice(family.as_bytes());
        buf.extend_from_slice(&(canonical.len() as u64).to_le_bytes());
        buf.extend_from_slice(canonical);
        xxh3_128(&buf)
    }

    /// Whether `hash` is the hash of `family` and `canonical` (false for a
    /// forged or damaged key).
    pub fn is_consistent(&self) -> bool {
        self.hash == Self::hash_of(&self.family, &self.canonical)
    }

    /// Whether `other` is the same workload: same family and canonical bytes
    /// (the hash alone is never trusted).
    pub fn same_workload(&self, other: &WorkloadKey) -> bool {
        self.family == other.family && self.canonical == other.canonical
    }
}

impl fmt::Display for WorkloadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.hash)
    }
}

/// Serde for a `u128` as 32 lowercase hex digits.
pub(crate) mod hex_u128 {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:032x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() != 32 {
            return Err(D::Error::custom(format!(
                "expected 32 hex digits, got {s:?}"
            )));
        }
        u128::from_str_radix(&s, 16).map_err(D::Error::custom)
    }
}

/// Serde for bytes as a lowercase hex string.
pub(crate) mod hex_bytes {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};
    use std::fmt::Write;

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(v.len() * 2);
        for b in v {
            let _ = write!(out, "{b:02x}");
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let b = s.as_bytes();
        if !b.len().is_multiple_of(2) {
            return Err(D::Error::custom("odd-length hex string"));
        }
        b.chunks_exact(2)
            .map(|p| match (nibble(p[0]), nibble(p[1])) {
                (Some(h), Some(l)) => Ok((h << 4) | l),
                _ => Err(D::Error::custom(format!("bad hex digits {:?}", p))),
            })
            .collect()
    }

    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_hash_is_stable() {
        // Fixed forever: changing it orphans every stored record.
        let k = WorkloadKey::new("conv2d", b"n1c3h224w224k64r7s7".to_vec());
        assert_eq!(k.to_string(), GOLDEN);
        assert!(k.is_consistent());
        assert_eq!(k.to_string().len(), 32);
    }

    const GOLDEN: &str = "8165250be12347e0e6b40accaae561c8";

    #[test]
    fn xxh3_128_matches_the_reference_vector() {
        // XXH3_128bits("") from the xxHash reference implementation.
        assert_eq!(xxh3_128(b""), 0x99aa06d3014798d86001c324468d497f);
    }

    #[test]
    fn length_prefix_separates_family_and_bytes() {
        let a = WorkloadKey::new("ab", b"c".to_vec());
        let b = WorkloadKey::new("a", b"bc".to_vec());
        assert_ne!(a.hash, b.hash);
        assert!(!a.same_workload(&b));
    }

    #[test]
    fn json_roundtrip_and_bad_hex() {
        let k = WorkloadKey::new("gemm", vec![0u8, 1, 254, 255]);
        let j = serde_json::to_string(&k).unwrap();
        assert!(j.contains("\"0001feff\""), "{j}");
        let back: WorkloadKey = serde_json::from_str(&j).unwrap();
        assert_eq!(back, k);
        let bad = j.replace("0001feff", "0001fe");
        assert!(serde_json::from_str::<WorkloadKey>(&bad).is_ok());
        let bad = j.replace("0001feff", "0001fg");
        assert!(serde_json::from_str::<WorkloadKey>(&bad).is_err());
        let bad = j.replace("0001feff", "0001f");
        assert!(serde_json::from_str::<WorkloadKey>(&bad).is_err());
    }
}
