//! Target descriptors and epochs: what a measurement is valid for.
//!
//! A [`TargetDescriptor`] names the hardware a record was measured on (CPU
//! vendor, model, ISA features, cores, threads used, cache sizes; or a GPU's
//! name, compute capability, SM count, driver and CUDA versions). A record is
//! applied only on a target whose descriptor is *equal*; [`TargetDescriptor::id`]
//! is a stable hash of its canonical JSON, used in database keys.
//! [`TargetDescriptor::numeric_features`] maps any target, seen or not, to a
//! fixed-length vector for the cost model.
//!
//! An [`Epoch`] versions the schedule language and the code generator: records
//! of another epoch are near matches only.

use crate::TunerError;
use serde::{Deserialize, Serialize};
use std::path::Path;
use xxhash_rust::xxh3::xxh3_128;

/// The hardware a record was measured on. In JSON, externally tagged:
/// `{"cpu": {...}}` or `{"gpu": {...}}` (decodes without buffering).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetDescriptor {
    /// A CPU running Kiln's compiled CPU path.
    Cpu {
        /// `vendor_id` from /proc/cpuinfo, e.g. `GenuineIntel`, `AuthenticAMD`.
        vendor: String,
        /// `model name` from /proc/cpuinfo.
        model_name: String,
        /// CPU family, model and stepping numbers (0 where unknown).
        family: u32,
        model: u32,
        stepping: u32,
        /// The ISA features that matter to kernels, sorted (see [`CPU_FEATURES`]).
        isa: Vec<String>,
        /// Logical processors of the machine.
        cores: u32,
        /// Threads the measured kernels ran with.
        threads_used: u32,
        /// Per-core L1 data, L2 and L3 sizes in bytes (0 where unknown).
        l1d_bytes: u64,
        l2_bytes: u64,
        l3_bytes: u64,
    },
    /// A CUDA GPU.
    Gpu {
        name: String,
        /// e.g. `"9.0"`.
        compute_capability: String,
        sm_count: u32,
        driver: String,
        cuda: String,
    },
}

/// The x86 features recorded in [`TargetDescriptor::Cpu::isa`], by their
/// `is_x86_feature_detected!` names (AMX from /proc/cpuinfo flags).
pub const CPU_FEATURES: &[&str] = &[
    "sse4.2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512dq",
    "avx512vl",
    "avx512vnni",
    "avx512bf16",
    "avx512fp16",
    "avxvnni",
    "amx-tile",
    "amx-bf16",
    "amx-int8",
];

/// The versions that make a record reusable: the schedule language's and the
/// code generator's. Bump one whenever the meaning of a stored config or the
/// code it produces changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Epoch {
    pub schedule: u32,
    pub codegen: u32,
}

impl Epoch {
    /// The epoch of this build of Kiln.
    pub const CURRENT: Epoch = Epoch {
        schedule: 1,
        codegen: 1,
    };
}

impl std::fmt::Display for Epoch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s{}.c{}", self.schedule, self.codegen)
    }
}

/// Names of [`TargetDescriptor::numeric_features`], in order.
pub const NUMERIC_FEATURE_NAMES: [&str; 13] = [
    "log2_peak_f32_flops",
    "log2_l1d_bytes",
    "log2_l2_bytes",
    "log2_l3_bytes",
    "f32_simd_lanes",
    "has_fma",
    "log2_cores",
    "log2_threads_used",
    "vendor_intel",
    "vendor_amd",
    "vendor_other",
    "is_gpu",
    "log2_sm_count",
];

/// Assumed clock when estimating peak FLOP/s (the clock is not stable enough
/// to read: it varies with load and turbo).
const NOMINAL_CPU_HZ: f64 = 3.0e9;
/// Assumed FMA pipes per core.
const CPU_FMA_UNITS: f64 = 2.0;
/// Assumed f32 lanes per SM and clock for a GPU.
const GPU_LANES_PER_SM: f64 = 128.0;
const NOMINAL_GPU_HZ: f64 = 1.5e9;

impl TargetDescriptor {
    /// The CPU this process runs on, measured with `threads_used` threads.
    /// Reads /proc/cpuinfo and /sys/devices/system/cpu/cpu0/cache where they
    /// exist; unknown fields are empty or 0, never a panic.
    pub fn host_cpu(threads_used: usize) -> Result<Self, TunerError> {
        if threads_used == 0 {
            return Err(TunerError::Target("threads_used must be at least 1".into()));
        }
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| cpuinfo_field(&info, name).unwrap_or_default();
        let num = |name: &str| field(name).parse::<u32>().unwrap_or(0);
        let processors = info.lines().filter(|l| l.starts_with("processor")).count();
        let cores = match processors {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let (l1d_bytes, l2_bytes, l3_bytes) =
            cache_sizes(Path::new("/sys/devices/system/cpu/cpu0/cache"));
        Ok(TargetDescriptor::Cpu {
            vendor: field("vendor_id"),
            model_name: field("model name"),
            family: num("cpu family"),
            model: num("model"),
            stepping: num("stepping"),
            isa: host_isa(&field("flags")),
            cores: cores as u32,
            threads_used: threads_used as u32,
            l1d_bytes,
            l2_bytes,
            l3_bytes,
        })
    }

    /// A stable 128-bit id: XXH3-128 of the canonical JSON (fields in
    /// declaration order, ISA sorted).
    pub fn id(&self) -> u128 {
        let json = match self {
            TargetDescriptor::Cpu { isa, .. } if !isa.windows(2).all(|w| w[0] < w[1]) => {
                serde_json::to_vec(&self.normalized())
            }
            _ => serde_json::to_vec(self),
        };
        xxh3_128(&json.unwrap_or_default())
    }

    /// The same descriptor with its ISA list sorted and deduplicated (the
    /// form stored and compared).
    pub fn normalized(&self) -> Self {
        let mut t = self.clone();
        if let TargetDescriptor::Cpu { isa, .. } = &mut t {
            isa.sort();
            isa.dedup();
        }
        t
    }

    /// A short human description, e.g. `Intel(R) Xeon(R) ... x2 threads`.
    pub fn summary(&self) -> String {
        match self {
            TargetDescriptor::Cpu {
                model_name,
                threads_used,
                cores,
                ..
            } => format!("cpu {model_name} ({threads_used}/{cores} threads)"),
            TargetDescriptor::Gpu {
                name,
                compute_capability,
                ..
            } => format!("gpu {name} (sm {compute_capability})"),
        }
    }

    /// A fixed-length numeric description ([`NUMERIC_FEATURE_NAMES`]) so the
    /// cost model can represent hardware it has never seen:
    ///
    /// - log2 of the estimated peak f32 FLOP/s: CPU = f32 SIMD lanes x 2 (if
    ///   FMA) x 2 FMA pipes x 3 GHz nominal x threads used; GPU = SMs x 128
    ///   lanes x 2 x 1.5 GHz nominal;
    /// - log2(1 + bytes) of L1d, L2, L3 (0 for a GPU);
    /// - f32 SIMD lanes (16 AVX-512, 8 AVX, 4 SSE, 1 otherwise; 32 = warp on a GPU);
    /// - FMA present (0/1);
    /// - log2 of cores and of threads used (SMs for both on a GPU);
    /// - vendor one-hot: Intel, AMD, other (NVIDIA counts as other);
    /// - is a GPU (0/1); log2(1 + SM count).
    pub fn numeric_features(&self) -> Vec<f32> {
        match self {
            TargetDescriptor::Cpu { .. } => self.cpu_features(),
            TargetDescriptor::Gpu { sm_count, .. } => {
                let sms = f64::from((*sm_count).max(1));
                let peak = sms * GPU_LANES_PER_SM * 2.0 * NOMINAL_GPU_HZ;
                let l = sms.log2() as f32;
                vec![
                    peak.log2() as f32,
                    0.0,
                    0.0,
                    0.0,
                    32.0,
                    1.0,
                    l,
                    l,
                    0.0,
                    0.0,
                    1.0,
                    1.0,
                    (sms + 1.0).log2() as f32,
                ]
            }
        }
    }

    fn cpu_features(&self) -> Vec<f32> {
        let TargetDescriptor::Cpu {
            vendor,
            isa,
            cores,
            threads_used,
            l1d_bytes,
            l2_bytes,
            l3_bytes,
            ..
        } = self
        else {
            return Vec::new();
        };
        let has = |f: &str| isa.iter().any(|x| x == f);
        let lanes = if has("avx512f") {
            16.0
        } else if has("avx") {
            8.0
        } else if has("sse4.2") {
            4.0
        } else {
            1.0
        };
        let fma = if has("fma") || has("avx512f") {
            2.0
        } else {
            1.0
        };
        let threads = f64::from((*threads_used).max(1));
        let peak = lanes * fma * CPU_FMA_UNITS * NOMINAL_CPU_HZ * threads;
        let lg = |b: u64| (b as f64 + 1.0).log2() as f32;
        let intel = vendor.contains("Intel") as u8 as f32;
        let amd = vendor.contains("AMD") as u8 as f32;
        vec![
            peak.log2() as f32,
            lg(*l1d_bytes),
            lg(*l2_bytes),
            lg(*l3_bytes),
            lanes as f32,
            (fma > 1.0) as u8 as f32,
            f64::from((*cores).max(1)).log2() as f32,
            threads.log2() as f32,
            intel,
            amd,
            1.0 - intel - amd,
            0.0,
            0.0,
        ]
    }
}

/// The value of the first `name : value` line of /proc/cpuinfo.
fn cpuinfo_field(info: &str, name: &str) -> Option<String> {
    info.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == name).then(|| v.trim().to_string())
    })
}

/// The sorted subset of [`CPU_FEATURES`] this CPU has.
fn host_isa(flags: &str) -> Vec<String> {
    let flags: Vec<&str> = flags.split_whitespace().collect();
    let mut isa: Vec<String> = CPU_FEATURES
        .iter()
        .filter(|f| detected(f, &flags))
        .map(|f| f.to_string())
        .collect();
    isa.sort();
    isa
}

#[cfg(target_arch = "x86_64")]
fn detected(feature: &str, flags: &[&str]) -> bool {
    match feature {
        "sse4.2" => is_x86_feature_detected!("sse4.2"),
        "avx" => is_x86_feature_detected!("avx"),
        "avx2" => is_x86_feature_detected!("avx2"),
        "fma" => is_x86_feature_detected!("fma"),
        "avx512f" => is_x86_feature_detected!("avx512f"),
        "avx512bw" => is_x86_feature_detected!("avx512bw"),
        "avx512dq" => is_x86_feature_detected!("avx512dq"),
        "avx512vl" => is_x86_feature_detected!("avx512vl"),
        "avx512vnni" => is_x86_feature_detected!("avx512vnni"),
        "avx512bf16" => is_x86_feature_detected!("avx512bf16"),
        "avx512fp16" => is_x86_feature_detected!("avx512fp16"),
        "avxvnni" => is_x86_feature_detected!("avxvnni"),
        other => flags.contains(&other.replace('-', "_").as_str()),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detected(feature: &str, flags: &[&str]) -> bool {
    flags.contains(&feature.replace('-', "_").as_str())
}

/// L1 data, L2 and L3 sizes from a sysfs cache directory (0 where unknown).
fn cache_sizes(dir: &Path) -> (u64, u64, u64) {
    let (mut l1d, mut l2, mut l3) = (0, 0, 0);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0, 0);
    };
    for e in entries.flatten() {
        let read = |f: &str| std::fs::read_to_string(e.path().join(f)).unwrap_or_default();
        let size = parse_size(read("size").trim());
        match (read("level").trim(), read("type").trim()) {
            ("1", "Data") => l1d = size,
            ("2", "Unified" | "Data") => l2 = size,
            ("3", "Unified" | "Data") => l3 = size,
            _ => {}
        }
    }
    (l1d, l2, l3)
}

/// `48K`, `2048K`, `32M`, `1G` or plain bytes; 0 if unparsable.
fn parse_size(s: &str) -> u64 {
    let (num, mul) = match s.chars().last() {
        Some('K') => (&s[..s.len() - 1], 1 << 10),
        Some('M') => (&s[..s.len() - 1], 1 << 20),
        Some('G') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().map_or(0, |n| n * mul)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_cpu_is_sane_and_stable() {
        let a = TargetDescriptor::host_cpu(2).unwrap();
        let b = TargetDescriptor::host_cpu(2).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.id(), b.id());
        assert_ne!(a.id(), TargetDescriptor::host_cpu(1).unwrap().id());
        assert!(TargetDescriptor::host_cpu(0).is_err());
        let TargetDescriptor::Cpu { isa, cores, .. } = &a else {
            panic!("not a cpu")
        };
        assert!(*cores >= 1);
        let mut sorted = isa.clone();
        sorted.sort();
        assert_eq!(&sorted, isa);
        let f = a.numeric_features();
        assert_eq!(f.len(), NUMERIC_FEATURE_NAMES.len());
        assert!(f.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn gpu_features_and_json() {
        let g = TargetDescriptor::Gpu {
            name: "NVIDIA H200".into(),
            compute_capability: "9.0".into(),
            sm_count: 132,
            driver: "570.1".into(),
            cuda: "12.8".into(),
        };
        let f = g.numeric_features();
        assert_eq!(f.len(), NUMERIC_FEATURE_NAMES.len());
        assert_eq!(f[11], 1.0);
        let j = serde_json::to_string(&g).unwrap();
        assert!(j.starts_with("{\"gpu\":{\"name\""), "{j}");
        assert_eq!(serde_json::from_str::<TargetDescriptor>(&j).unwrap(), g);
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("48K"), 48 << 10);
        assert_eq!(parse_size("32M"), 32 << 20);
        assert_eq!(parse_size("123"), 123);
        assert_eq!(parse_size("x"), 0);
        assert_eq!(parse_size(""), 0);
    }
}
