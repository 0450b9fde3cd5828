//! `manifest.json`: what an output directory holds, with every file's hash.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::list::StreamKey;
use super::{io_err, DataError, Split, MANIFEST_FILE, MANIFEST_FORMAT};

// ---------------------------------------------------------------------------
// The manifest (output)
// ---------------------------------------------------------------------------

/// `manifest.json` of an output directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    pub downscale: String,
    /// SHA-256 of the photo list this set was built from.
    pub photo_list_sha256: String,
    pub debian: BTreeMap<String, String>,
    pub wheels: BTreeMap<String, String>,
    pub noise_profiles: ManifestFile,
    pub train: Vec<ManifestEntry>,
    pub val: Vec<ManifestEntry>,
    pub train_pixels: u64,
    pub val_pixels: u64,
    /// Bytes of train/ + val/ + noiseprofiles.json.
    pub total_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestFile {
    pub file: String,
    pub package: String,
    pub version: String,
    pub source_path: String,
    pub licence: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestEntry {
    pub name: String,
    /// Relative to the output directory, e.g. `train/e-bamboo.png`.
    pub file: String,
    pub package: String,
    pub version: String,
    pub source_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamKey>,
    pub licence: String,
    pub source_sha256: String,
    pub source_size: [u32; 2],
    pub factor: u32,
    pub size: [u32; 2],
    /// SHA-256 of the written PNG.
    pub sha256: String,
    pub bytes: u64,
}

impl Manifest {
    pub fn read(dir: &Path) -> Result<Self, DataError> {
        let path = dir.join(MANIFEST_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(DataError::MissingFile {
                    path,
                    hint: "no data set here; build it with `realdenoise-train fetch-data` \
                           (realdenoise_training::data::fetch_data)"
                        .into(),
                })
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        let m: Manifest = serde_json::from_str(&text)
            .map_err(|e| DataError::Invalid { what: path.display().to_string(), message: e.to_string() })?;
        if m.format != MANIFEST_FORMAT {
            return Err(DataError::Invalid {
                what: path.display().to_string(),
                message: format!("manifest format {} (expected {MANIFEST_FORMAT}); rebuild with fetch-data --force", m.format),
            });
        }
        Ok(m)
    }

    pub fn entries(&self, split: Split) -> &[ManifestEntry] {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
        }
    }
}

// ---------------------------------------------------------------------------
// Pure helpers: hashing, JPEG streams, box filter
// ---------------------------------------------------------------------------

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}
