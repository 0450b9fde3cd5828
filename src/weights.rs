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
//! Reading checks, in order: length, magic, version, header (its length, its
//! JSON, the tensor table's size against [`limits`], the model config against
//! [`crate::model::limits`], the recommended steps against `T`), size,
//! checksum, then that every tensor matches the network the config
//! describes — compared on shapes alone, before any tensor is allocated.
//! Each failure is its own [`WeightsError`] naming the field; nothing panics
//! on bad input, all size arithmetic is checked, and the reader never
//! allocates more than the file's own size could justify: the f16 values
//! become f32 tensors (2x the data) once the table has matched.
//!
//! Limits a file must respect ([`limits`]): a JSON header of at most 1 MiB,
//! at most 4,096 tensors of rank 1 to 4, at most 2^26 parameters (128 MiB of
//! f16); a model config within [`crate::model::limits`] (RGB; at most 512 base
//! and 2,048 channels per level, 9 levels, 16 blocks per level, `T` 1,000);
//! recommended steps between 1 and `T`.

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

/// Bounds on what a header may declare, checked before anything it declares
/// is allocated. Far above the shipped model (1.8 MB, 64 tensors).
pub mod limits {
    /// Longest JSON header, in bytes.
    pub const HEADER_BYTES: usize = 1 << 20;
    /// Most tensors in the table.
    pub const TENSORS: usize = 4096;
    /// Highest tensor rank (convolution kernels are rank 4).
    pub const RANK: usize = 4;
    /// Most parameters in all (128 MiB as f16, 256 MiB once loaded as f32).
    pub const PARAMETERS: usize = 1 << 26;
}

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
    #[error("weights header field {field} is out of range: {found} (allowed: {allowed})")]
    OutOfRange { field: String, found: String, allowed: String },
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
    /// Number of values; saturates instead of overflowing on shapes that
    /// [`read_header`] would refuse.
    fn len(&self) -> usize {
        self.shape.iter().fold(1usize, |product, &side| product.saturating_mul(side))
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
    /// Number of stored parameters (saturating; exact for any header
    /// [`read_header`] accepted).
    pub fn parameter_count(&self) -> usize {
        self.tensors.iter().fold(0usize, |sum, entry| sum.saturating_add(entry.len()))
    }

    /// Checks the sizes the header declares against [`limits`] and the
    /// recommended steps against `T`, with checked arithmetic: after this,
    /// [`Header::parameter_count`] is exact and small enough to allocate.
    fn check_limits(&self) -> Result<usize, WeightsError> {
        let out_of_range = |field: String, found: String, allowed: String| WeightsError::OutOfRange { field, found, allowed };
        if self.tensors.len() > limits::TENSORS {
            return Err(out_of_range("tensors".into(), format!("{} entries", self.tensors.len()), format!("at most {}", limits::TENSORS)));
        }
        let mut total: usize = 0;
        for (index, entry) in self.tensors.iter().enumerate() {
            let field = || format!("tensors[{index}].shape ('{}')", entry.name);
            if entry.shape.is_empty() || entry.shape.len() > limits::RANK || entry.shape.contains(&0) {
                return Err(out_of_range(field(), format!("{:?}", entry.shape), format!("1 to {} sides, each at least 1", limits::RANK)));
            }
            total = entry
                .shape
                .iter()
                .try_fold(1usize, |product, &side| product.checked_mul(side))
                .and_then(|count| total.checked_add(count))
                .filter(|&total| total <= limits::PARAMETERS)
                .ok_or_else(|| {
                    out_of_range(field(), format!("{:?}", entry.shape), format!("at most {} parameters in all", limits::PARAMETERS))
                })?;
        }
        self.model.validate()?;
        let steps = self.training.default_steps;
        if steps == 0 || steps > self.model.timesteps {
            return Err(out_of_range("training.default_steps".into(), steps.to_string(), format!("1 to T = {}", self.model.timesteps)));
        }
        Ok(total)
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
    if header_length > limits::HEADER_BYTES {
        return Err(WeightsError::OutOfRange {
            field: "header length".into(),
            found: format!("{header_length} bytes"),
            allowed: format!("at most {} bytes", limits::HEADER_BYTES),
        });
    }
    // The checksum sits right after the data; `end` (at least PREAMBLE +
    // CHECKSUM, checked above) is where it ends.
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
    // A header that parses but is refused is also reported as corruption
    // when the whole file fails its checksum (a flipped bit, not a foreign file).
    let parameters = if header.architecture != ARCHITECTURE {
        Err(WeightsError::UnknownArchitecture { found: header.architecture.clone() })
    } else {
        header.check_limits()
    }
    .map_err(|refused| verify_checksum(bytes.len()).err().unwrap_or(refused))?;
    // Bounded by limits::PARAMETERS, so the sums below cannot overflow.
    let data_length = 2 * parameters;
    let expected = header_end + data_length + CHECKSUM;
    if bytes.len() < expected {
        return Err(WeightsError::Truncated { expected, found: bytes.len() });
    }
    verify_checksum(expected)?;
    if bytes.len() > expected {
        return Err(WeightsError::TrailingBytes(bytes.len() - expected));
    }
    Ok((header, &bytes[header_end..header_end + data_length]))
}

/// Reads a weights file and builds the model it describes on `device`.
pub fn from_bytes<B: Backend>(
    bytes: &[u8],
    device: &B::Device,
) -> Result<(UNet<B>, Header), WeightsError> {
    let (header, data) = read_header(bytes)?;
    // burn initialises parameters lazily: until a value is read, this
    // network is shapes only, so a table that does not match costs nothing.
    let model = header.model.init::<B>(device)?;
    let mut collector = Collector { read_values: false, ..Collector::default() };
    model.visit(&mut collector);
    check_tensor_table(&collector.entries, &header.tensors)?;

    let mut offset = 0;
    for entry in &header.tensors {
        let end = offset + 2 * entry.len();
        if data[offset..end].chunks_exact(2).any(|v| !f16::from_le_bytes([v[0], v[1]]).is_finite()) {
            return Err(WeightsError::NonFinite(entry.name.clone()));
        }
        offset = end;
    }
    let mut loader = Loader { entries: &header.tensors, data, next: 0, offset: 0 };
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
        // The lazy shape leaves an uninitialised parameter uninitialised.
        self.entries.push(TensorEntry { name: self.path.join("."), shape: param.lazy_shape().dims::<D>().to_vec() });
        if self.read_values {
            let data = param.val().into_data().convert::<f32>();
            self.values.extend(data.iter::<f32>());
        }
    }
}

/// Replaces every float parameter, in visiting order, by the stored values,
/// without ever initialising the parameter it replaces.
/// The table was checked against the model beforehand, so shapes agree.
struct Loader<'a> {
    entries: &'a [TensorEntry],
    /// The f16 values, little-endian.
    data: &'a [u8],
    next: usize,
    offset: usize,
}

impl<B: Backend> ModuleMapper<B> for Loader<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let entry = &self.entries[self.next];
        let end = self.offset + 2 * entry.len();
        let values: Vec<f32> =
            self.data[self.offset..end].chunks_exact(2).map(|v| f16::from_le_bytes([v[0], v[1]]).to_f32()).collect();
        let tensor = Tensor::<B, D>::from_data(TensorData::new(values, entry.shape.clone()), &param.lazy_device());
        self.next += 1;
        self.offset = end;
        let id = param.id;
        param.transform_for_load(tensor, id)
    }
}
