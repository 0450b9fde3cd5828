//! The `.rdnz` weights file: one self-describing file per model.
//!
//! Layout (all integers little-endian):
//!
//! | offset        | size | content                                         |
//! |---------------|------|-------------------------------------------------|
//! | 0             | 8    | magic `RDNZWTS\0`                               |
//! | 8             | 4    | format version (`u32`, currently 1)             |
//! | 12            | 4    | header length `L` in bytes (`u32`)              |
//! | 16            | L    | UTF-8 JSON [`Header`]: architecture, model config (incl. `T`), training metadata, tensor table |
//! | 16 + L        | 2·n  | the tensors' values as IEEE f16, in table order, row-major |
//! | end − 4       | 4    | CRC-32 (IEEE) of every preceding byte           |
//!
//! Reading checks, in order: length, magic, version, header, size, checksum,
//! then that every tensor matches the network the config describes. Each
//! failure is its own [`WeightsError`]; nothing panics on bad input.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{backend::Backend, Tensor, TensorData};
use half::f16;
use serde::{Deserialize, Serialize};

use crate::diffusion::SamplerKind;
use crate::model::{ConfigError, UNet, UNetConfig};

pub const MAGIC: [u8; 8] = *b"RDNZWTS\0";
pub const FORMAT_VERSION: u32 = 1;
pub const ARCHITECTURE: &str = "realdenoise-unet";
/// Conventional file extension.
pub const EXTENSION: &str = "rdnz";
const PREAMBLE: usize = 16;
const CHECKSUM: usize = 4;

/// What went wrong reading or writing a weights file.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("not a realdenoise weights file: the first bytes are not the magic 'RDNZWTS'")]
    BadMagic,
    #[error("weights file is truncated: {found} bytes, but its header promises {expected}")]
    Truncated { expected: usize, found: usize },
    #[error("weights format version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion { found: u32, supported: u32 },
    #[error("weights file is corrupted: CRC-32 is {computed:08x}, the file says {stored:08x}")]
    ChecksumMismatch { stored: u32, computed: u32 },
    #[error("weights header is not valid: {0}")]
    InvalidHeader(String),
    #[error("weights file has {0} unexpected bytes after its tensors")]
    TrailingBytes(usize),
    #[error("weights are for architecture '{found}', this build runs '{ARCHITECTURE}'")]
    UnknownArchitecture { found: String },
    #[error("the model configuration in the weights is invalid: {0}")]
    InvalidConfig(#[from] ConfigError),
    #[error("weights do not fit the architecture: {0}")]
    ArchitectureMismatch(String),
    #[error("weights contain a non-finite value in tensor '{0}'")]
    NonFinite(String),
    #[error("cannot read weights file {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// How the weights came to be: what the model card reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingMetadata {
    /// False for randomly initialised weights (development only).
    pub trained: bool,
    /// Training images.
    pub data: String,
    /// How the noisy inputs were made.
    pub noise_model: String,
    /// Optimiser steps taken.
    pub iterations: u64,
    /// Recommended number of sampling steps.
    pub default_steps: usize,
    /// Recommended sampler.
    pub default_sampler: SamplerKind,
    /// Free text: hardware, wall time, scores.
    #[serde(default)]
    pub notes: String,
}

impl TrainingMetadata {
    /// Metadata for weights that were never trained.
    pub fn untrained() -> Self {
        Self {
            trained: false,
            data: "none".into(),
            noise_model: "none".into(),
            iterations: 0,
            default_steps: 4,
            default_sampler: SamplerKind::Improved,
            notes: "randomly initialised; for tests and development only".into(),
        }
    }
}

/// Name and shape of one stored tensor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorEntry {
    pub name: String,
    pub shape: Vec<usize>,
}

impl TensorEntry {
    fn len(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The JSON header of a weights file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub architecture: String,
    pub model: UNetConfig,
    pub training: TrainingMetadata,
    pub tensors: Vec<TensorEntry>,
}

impl Header {
    /// Number of stored parameters.
    pub fn parameter_count(&self) -> usize {
        self.tensors.iter().map(TensorEntry::len).sum()
    }
}

/// Serialises a model and its metadata. Reads every parameter back from the
/// device synchronously, so it is for native use (training, tools).
pub fn to_bytes<B: Backend>(
    model: &UNet<B>,
    config: &UNetConfig,
    training: &TrainingMetadata,
) -> Vec<u8> {
    let mut collector = Collector::default();
    model.visit(&mut collector);
    let header = Header {
        architecture: ARCHITECTURE.into(),
        model: config.clone(),
        training: training.clone(),
        tensors: collector.entries,
    };
    let json = serde_json::to_vec(&header).expect("the header always serialises");
    let mut bytes = Vec::with_capacity(PREAMBLE + json.len() + 2 * collector.values.len() + CHECKSUM);
    bytes.extend_from_slice(&MAGIC);
    bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&(json.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&json);
    for value in collector.values {
        bytes.extend_from_slice(&f16::from_f32(value).to_le_bytes());
    }
    let checksum = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());
    bytes
}

/// Parses and checks a weights file without building the model: everything
/// but the match against the architecture.
pub fn read_header(bytes: &[u8]) -> Result<(Header, &[u8]), WeightsError> {
    if bytes.len() < PREAMBLE + CHECKSUM {
        if bytes.len() >= MAGIC.len() && bytes[..MAGIC.len()] != MAGIC {
            return Err(WeightsError::BadMagic);
        }
        return Err(WeightsError::Truncated { expected: PREAMBLE + CHECKSUM, found: bytes.len() });
    }
    if bytes[..MAGIC.len()] != MAGIC {
        return Err(WeightsError::BadMagic);
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(WeightsError::UnsupportedVersion { found: version, supported: FORMAT_VERSION });
    }
    let header_length = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes")) as usize;
    let header_end = PREAMBLE.saturating_add(header_length);
    if header_end.saturating_add(CHECKSUM) > bytes.len() {
        return Err(WeightsError::Truncated {
            expected: header_end.saturating_add(CHECKSUM),
            found: bytes.len(),
        });
    }
    // The checksum sits right after the data; `end` is where it ends.
    let verify_checksum = |end: usize| {
        let stored = u32::from_le_bytes(bytes[end - CHECKSUM..end].try_into().expect("4 bytes"));
        let computed = crc32fast::hash(&bytes[..end - CHECKSUM]);
        if stored == computed {
            Ok(())
        } else {
            Err(WeightsError::ChecksumMismatch { stored, computed })
        }
    };
    let header: Header = match serde_json::from_slice(&bytes[PREAMBLE..header_end]) {
        Ok(header) => header,
        Err(error) => {
            // A damaged header in an otherwise complete file is corruption.
            verify_checksum(bytes.len())?;
            return Err(WeightsError::InvalidHeader(error.to_string()));
        }
    };
    let data_length = 2 * header.parameter_count();
    let expected = header_end + data_length + CHECKSUM;
    if bytes.len() < expected {
        return Err(WeightsError::Truncated { expected, found: bytes.len() });
    }
    verify_checksum(expected)?;
    if bytes.len() > expected {
        return Err(WeightsError::TrailingBytes(bytes.len() - expected));
    }
    if header.architecture != ARCHITECTURE {
        return Err(WeightsError::UnknownArchitecture { found: header.architecture });
    }
    header.model.validate()?;
    Ok((header, &bytes[header_end..header_end + data_length]))
}

/// Reads a weights file and builds the model it describes on `device`.
pub fn from_bytes<B: Backend>(
    bytes: &[u8],
    device: &B::Device,
) -> Result<(UNet<B>, Header), WeightsError> {
    let (header, data) = read_header(bytes)?;
    let model = header.model.init::<B>(device)?;

    let mut collector = Collector { read_values: false, ..Collector::default() };
    model.visit(&mut collector);
    check_tensor_table(&collector.entries, &header.tensors)?;

    let mut values = Vec::with_capacity(data.len() / 2);
    for chunk in data.chunks_exact(2) {
        values.push(f16::from_le_bytes([chunk[0], chunk[1]]).to_f32());
    }
    let mut offset = 0;
    for entry in &header.tensors {
        let end = offset + entry.len();
        if values[offset..end].iter().any(|v| !v.is_finite()) {
            return Err(WeightsError::NonFinite(entry.name.clone()));
        }
        offset = end;
    }
    let mut loader = Loader { entries: &header.tensors, values: &values, next: 0, offset: 0 };
    let model = model.map(&mut loader);
    Ok((model, header))
}

/// Reads a weights file from disk.
#[cfg(not(target_arch = "wasm32"))]
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>, WeightsError> {
    std::fs::read(path).map_err(|source| WeightsError::Io { path: path.display().to_string(), source })
}

fn check_tensor_table(expected: &[TensorEntry], found: &[TensorEntry]) -> Result<(), WeightsError> {
    if expected.len() != found.len() {
        return Err(WeightsError::ArchitectureMismatch(format!(
            "the configured network has {} tensors, the file stores {}",
            expected.len(),
            found.len()
        )));
    }
    for (want, have) in expected.iter().zip(found) {
        if want != have {
            return Err(WeightsError::ArchitectureMismatch(format!(
                "expected tensor '{}' of shape {:?}, the file has '{}' of shape {:?}",
                want.name, want.shape, have.name, have.shape
            )));
        }
    }
    Ok(())
}

/// Walks the module tree, recording parameter names (dotted paths), shapes
/// and, when asked, values.
struct Collector {
    path: Vec<String>,
    entries: Vec<TensorEntry>,
    values: Vec<f32>,
    read_values: bool,
}

impl Default for Collector {
    fn default() -> Self {
        Self { path: Vec::new(), entries: Vec::new(), values: Vec::new(), read_values: true }
    }
}

impl<B: Backend> ModuleVisitor<B> for Collector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let tensor = param.val();
        self.entries.push(TensorEntry { name: self.path.join("."), shape: tensor.dims().to_vec() });
        if self.read_values {
            let data = tensor.into_data().convert::<f32>();
            self.values.extend(data.iter::<f32>());
        }
    }
}

/// Replaces every float parameter, in visiting order, by the stored values.
/// The table was checked against the model beforehand, so shapes agree.
struct Loader<'a> {
    entries: &'a [TensorEntry],
    values: &'a [f32],
    next: usize,
    offset: usize,
}

impl<B: Backend> ModuleMapper<B> for Loader<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, old, mapper) = param.consume();
        let entry = &self.entries[self.next];
        let end = self.offset + entry.len();
        let data = TensorData::new(self.values[self.offset..end].to_vec(), entry.shape.clone());
        let tensor = Tensor::<B, D>::from_data(data, &old.device()).set_require_grad(old.is_require_grad());
        self.next += 1;
        self.offset = end;
        Param::from_mapped_value(id, tensor, mapper)
    }
}
