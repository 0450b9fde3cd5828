//! Seeded mutation fuzzing of everything a weights file reaches: the binary
//! container (length, magic, version, header length, checksum, data) and the
//! JSON header (architecture, model config, training metadata, tensor table).
//!
//! Every case must end in `Ok` or a typed `WeightsError`, never a panic, an
//! abort, a hang or an allocation the file cannot justify. An accepted file
//! also goes through what `realdenoise info` prints (the cost model) and one
//! denoising step of an 8x8 image, which is where edited architectures used
//! to panic. A tracking allocator measures each case's peak live bytes.
//!
//! `make test` runs a bounded number of cases per target (quick). The long
//! mode is the same test with more cases, for a session to run in the
//! background:
//!
//! ```sh
//! REALDENOISE_FUZZ_CASES=100000 cargo test --release --test library fuzz:: -- --nocapture
//! ```
//!
//! `REALDENOISE_FUZZ_SEED` changes the seed (the default is fixed, so CI is
//! deterministic); every case prints its seed when it fails.

use crate::common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use common::{device, Cpu};
use image::{Rgba, RgbaImage};
use realdenoise::denoiser::{block_on, Unobserved};
use realdenoise::weights::{from_bytes, read_header, to_bytes, TrainingMetadata, WeightsError};
use realdenoise::{DenoiseOptions, Denoiser, UNetConfig};
use serde_json::Value;

/// Cases per target in `make test`.
const QUICK_CASES: u64 = 3000;
/// Any single case slower than this counts as a hang.
const HANG: Duration = Duration::from_secs(5);
/// Allowed peak live bytes of one case: 4x the file, plus what the model
/// itself needs beyond its parameters (burn's buffers and one 8x8 forward pass).
const MODEL_OVERHEAD: usize = 16 << 20;

use crate::fuzzing;

use fuzzing::{base_seed, case_seed, panic_message, peak_allocation, Rng, Tracking, INTERESTING};

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

// ---- inputs and mutations ------------------------------------------------

fn small_weights() -> Vec<u8> {
    let config = UNetConfig::new().with_base_channels(8).with_channel_multipliers(vec![1, 2]).with_blocks_per_level(1).with_timesteps(20);
    let model = config.init::<Cpu>(&device()).unwrap();
    to_bytes(&model, &config, &TrainingMetadata::untrained())
}

fn shipped_weights() -> Vec<u8> {
    std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/weights/realdenoise.rdnz")).expect("the shipped weights are in the repository")
}

fn set_checksum(bytes: &mut [u8]) {
    if bytes.len() >= 4 {
        let end = bytes.len() - 4;
        let checksum = crc32fast::hash(&bytes[..end]);
        bytes[end..].copy_from_slice(&checksum.to_le_bytes());
    }
}

/// Byte-level damage to the container; half the time the checksum is made
/// valid again so the mutation reaches the checks behind it.
fn mutate_bytes(rng: &mut Rng, original: &[u8]) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(7) {
            0 if !bytes.is_empty() => {
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
            }
            1 if !bytes.is_empty() => {
                let at = rng.below(bytes.len());
                bytes[at] = [0x00, 0xFF, 0x7F, 0x80, b'9', b'"'][rng.below(6)];
            }
            2 => bytes.truncate(rng.below(bytes.len() + 1)),
            3 => {
                let at = rng.below(bytes.len() + 1);
                let extra: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
                bytes.splice(at..at, extra);
            }
            4 if bytes.len() > 1 => {
                let at = rng.below(bytes.len() - 1);
                let end = (at + 1 + rng.below(16)).min(bytes.len());
                bytes.drain(at..end);
            }
            5 if bytes.len() >= 16 => {
                // The header length field.
                let value = INTERESTING[rng.below(INTERESTING.len())] as u32;
                bytes[12..16].copy_from_slice(&value.to_le_bytes());
            }
            6 if bytes.len() >= 12 && rng.below(4) == 0 => {
                let value = [0u32, 2, u32::MAX][rng.below(3)];
                bytes[8..12].copy_from_slice(&value.to_le_bytes()); // the version
            }
            _ => {
                // Most damage lands in the JSON header, where parsing is.
                let end = bytes.len().min(16 + 4096);
                if end > 16 {
                    let at = 16 + rng.below(end - 16);
                    bytes[at] = b"0123456789{}[]\",: -.e"[rng.below(20)];
                }
            }
        }
    }
    if rng.below(2) == 0 {
        set_checksum(&mut bytes);
    }
    bytes
}

/// A random replacement value of any JSON type.
fn random_value(rng: &mut Rng) -> Value {
    match rng.below(8) {
        0..=3 => {
            let number = INTERESTING[rng.below(INTERESTING.len())];
            serde_json::from_str(&number.to_string()).unwrap()
        }
        4 => Value::from([0.5, -0.0, 1e308, -1e308, f64::MIN_POSITIVE][rng.below(5)]),
        5 => Value::from(["", "realdenoise-unet", "improved", "origin", "x".repeat(1000).as_str()][rng.below(5)]),
        6 => Value::Array((0..rng.below(6)).map(|_| Value::from(INTERESTING[rng.below(6)] as i64)).collect()),
        _ => [Value::Null, Value::Bool(true), Value::Object(Default::default())][rng.below(3)].clone(),
    }
}

/// Every node of a JSON tree, as paths of object keys and array indices.
fn paths(value: &Value, prefix: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    out.push(prefix.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                prefix.push(PathStep::Key(key.clone()));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                prefix.push(PathStep::Index(index));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

#[derive(Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn node<'a>(root: &'a mut Value, path: &[PathStep]) -> &'a mut Value {
    path.iter().fold(root, |value, step| match step {
        PathStep::Key(key) => &mut value[key.as_str()],
        PathStep::Index(index) => &mut value[*index],
    })
}

/// Structure-aware damage to the JSON header: values replaced by other
/// values or types, keys removed, arrays shortened or repeated; then the
/// file is re-assembled with a true header length and, mostly, a valid
/// checksum, and with as much data as the edited table asks for.
fn mutate_header(rng: &mut Rng, original: &[u8]) -> Vec<u8> {
    let (header, data) = read_header(original).expect("the seed file is valid");
    let mut json = serde_json::to_value(&header).unwrap();
    for _ in 0..1 + rng.below(3) {
        let mut all = Vec::new();
        paths(&json, &mut Vec::new(), &mut all);
        let path = &all[rng.below(all.len())];
        let target = node(&mut json, path);
        match rng.below(6) {
            0 => {
                if let Value::Object(map) = target {
                    if let Some(key) = map.keys().nth(rng.below(map.len())).cloned() {
                        map.remove(&key);
                    }
                }
            }
            1 => {
                if let Value::Array(items) = target {
                    match rng.below(3) {
                        0 => items.truncate(rng.below(items.len() + 1)),
                        1 if !items.is_empty() => {
                            let item = items[rng.below(items.len())].clone();
                            let copies = [1, 2, 100, 5000][rng.below(4)];
                            items.extend(std::iter::repeat_n(item, copies));
                        }
                        _ => items.reverse(),
                    }
                }
            }
            // Numbers mostly stay numbers, so edits get past the JSON types
            // to the size checks.
            _ if target.is_number() && rng.below(4) != 0 => {
                *target = serde_json::from_str(&INTERESTING[rng.below(INTERESTING.len())].to_string()).unwrap()
            }
            _ => *target = random_value(rng),
        }
    }
    let text = serde_json::to_vec(&json).unwrap();
    let mut bytes = original[..12].to_vec();
    bytes.extend_from_slice(&(text.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&text);
    // As much data as the edited table would need, within reason.
    let wanted = serde_json::from_value::<realdenoise::weights::Header>(json)
        .map(|h| 2 * h.parameter_count())
        .unwrap_or(data.len())
        .min(4 * data.len());
    bytes.extend((0..wanted).map(|i| data.get(i).copied().unwrap_or(0)));
    bytes.extend_from_slice(&[0; 4]);
    if rng.below(8) != 0 {
        set_checksum(&mut bytes);
    }
    bytes
}

// ---- running cases ---------------------------------------------------------

/// What one case did.
#[derive(Debug, Default)]
struct Outcomes {
    accepted: u64,
    refused: std::collections::BTreeMap<&'static str, u64>,
    slowest: Duration,
    /// Most bytes a case allocated beyond 4x its file (the allowance is MODEL_OVERHEAD).
    largest_excess: usize,
}

fn kind(error: &WeightsError) -> &'static str {
    match error {
        WeightsError::BadMagic => "BadMagic",
        WeightsError::Truncated { .. } => "Truncated",
        WeightsError::UnsupportedVersion { .. } => "UnsupportedVersion",
        WeightsError::ChecksumMismatch { .. } => "ChecksumMismatch",
        WeightsError::InvalidHeader(_) => "InvalidHeader",
        WeightsError::TrailingBytes(_) => "TrailingBytes",
        WeightsError::UnknownArchitecture { .. } => "UnknownArchitecture",
        WeightsError::InvalidConfig(_) => "InvalidConfig",
        WeightsError::ArchitectureMismatch(_) => "ArchitectureMismatch",
        WeightsError::NonFinite(_) => "NonFinite",
        WeightsError::OutOfRange { .. } => "OutOfRange",
        WeightsError::Io { .. } => "Io",
    }
}

/// Everything a user's file reaches: the header and cost model (`info`),
/// the model, and one step of denoising an 8x8 image.
fn exercise(bytes: &[u8]) -> Result<(), WeightsError> {
    let (header, _) = read_header(bytes)?;
    let costs = [
        header.model.flops_per_pixel(),
        header.model.widest_tensor_bytes_per_pixel(),
        header.model.activation_bytes_per_pixel(),
    ];
    assert!(costs.iter().all(|c| c.is_finite() && *c > 0.0), "cost model of an accepted file: {costs:?}");
    let (model, header) = from_bytes::<Cpu>(bytes, &device())?;
    let denoiser = Denoiser::new(model, header, device());
    let image = RgbaImage::from_fn(8, 8, |x, y| Rgba([(x * 30) as u8, (y * 30) as u8, 128, 255]));
    let options = DenoiseOptions { steps: 1, ..denoiser.default_options() };
    let output = block_on(denoiser.denoise(&image, &options, &mut Unobserved)).expect("an accepted model denoises");
    assert_eq!(output.dimensions(), (8, 8));
    Ok(())
}

fn fuzz(target: &str, seeds: &[Vec<u8>], mutate: fn(&mut Rng, &[u8]) -> Vec<u8>) {
    let count = fuzzing::cases(QUICK_CASES);
    let mut outcomes = Outcomes::default();
    let started = Instant::now();
    for case in 0..count {
        let mut rng = Rng(case_seed(case));
        // The small file mostly (fast), the shipped one one case in eight.
        let original = &seeds[usize::from(rng.below(8) == 0).min(seeds.len() - 1)];
        let input = mutate(&mut rng, original);
        let began = Instant::now();
        let (result, peak) = peak_allocation(|| catch_unwind(AssertUnwindSafe(|| exercise(&input))));
        let took = began.elapsed();
        let reproduce = format!("{target} case {case} (REALDENOISE_FUZZ_SEED={}), {} bytes", base_seed(), input.len());
        match result {
            Ok(Ok(())) => outcomes.accepted += 1,
            Ok(Err(error)) => *outcomes.refused.entry(kind(&error)).or_default() += 1,
            Err(panic) => panic!("{reproduce}: panicked: {}", panic_message(panic.as_ref())),
        }
        assert!(took < HANG, "{reproduce}: took {took:?} (a hang)");
        let allowed = 4 * input.len() + MODEL_OVERHEAD;
        assert!(peak <= allowed, "{reproduce}: allocated {peak} bytes at peak, more than 4x the file plus {MODEL_OVERHEAD}");
        outcomes.slowest = outcomes.slowest.max(took);
        outcomes.largest_excess = outcomes.largest_excess.max(peak.saturating_sub(4 * input.len()));
        if count >= 10_000 && (case + 1) % 10_000 == 0 {
            eprintln!("fuzz {target}: {} cases, {:.0} s", case + 1, started.elapsed().as_secs_f64());
        }
    }
    // One line per target: the long mode's report.
    println!(
        "fuzz {target}: {count} cases in {:.1} s, 0 panics, 0 hangs; accepted {}; refused {:?}; slowest case {:.1} ms; most allocated beyond 4x the file: {:.1} MiB (allowed {} MiB)",
        started.elapsed().as_secs_f64(),
        outcomes.accepted,
        outcomes.refused,
        outcomes.slowest.as_secs_f64() * 1e3,
        outcomes.largest_excess as f64 / (1 << 20) as f64,
        MODEL_OVERHEAD >> 20
    );
    // The mutations must reach past the checksum, or the fuzzing is shallow.
    let deep = outcomes.accepted + outcomes.refused.iter().filter(|(k, _)| !matches!(**k, "ChecksumMismatch" | "Truncated" | "BadMagic")).map(|(_, n)| n).sum::<u64>();
    assert!(deep * 4 >= count, "{target}: only {deep} of {count} cases got past the container checks: {outcomes:?}");
}

#[test]
fn fuzz_weights_container() {
    fuzz("weights", &[small_weights(), shipped_weights()], mutate_bytes);
}

#[test]
fn fuzz_weights_header_json() {
    fuzz("header", &[small_weights(), shipped_weights()], mutate_header);
}

/// The table is compared with the network the config describes before any
/// parameter exists: a file that describes a network of ~150 million
/// parameters (600 MB as f32) but stores the small table costs no more
/// than the file itself.
#[test]
fn a_mismatched_table_is_refused_before_the_network_is_allocated() {
    let bytes = small_weights();
    let (mut header, data) = read_header(&bytes).unwrap();
    header.model = UNetConfig::new().with_base_channels(512).with_channel_multipliers(vec![1, 2, 4]).with_blocks_per_level(16).with_timesteps(20);
    let text = serde_json::to_vec(&header).unwrap();
    let mut huge = bytes[..12].to_vec();
    huge.extend_from_slice(&(text.len() as u32).to_le_bytes());
    huge.extend_from_slice(&text);
    huge.extend_from_slice(data);
    huge.extend_from_slice(&[0; 4]);
    set_checksum(&mut huge);
    let (result, peak) = peak_allocation(|| from_bytes::<Cpu>(&huge, &device()).map(|_| ()));
    assert!(matches!(result, Err(WeightsError::ArchitectureMismatch(_))), "{result:?}");
    assert!(peak < 4 * huge.len() + (1 << 20), "refusing the table allocated {peak} bytes for a {}-byte file", huge.len());
}
