//! The reviewed list of sources (`training/data/photos.json`): which file
//! of which package or wheel is a photograph, its hash and its downscale factor.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::manifest::sha256_hex;
use super::{DataError, PHOTOS_JSON};

// ---------------------------------------------------------------------------
// The photo list (training/data/photos.json)
// ---------------------------------------------------------------------------

/// The reviewed list of sources.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PhotoList {
    /// Debian package -> pinned version (as `apt-get download pkg=version` takes it).
    pub debian: BTreeMap<String, String>,
    /// PyPI project -> pinned version (for `pip download project==version`).
    pub wheels: BTreeMap<String, String>,
    pub noise_profiles: NoiseProfilesSource,
    pub train: Vec<PhotoSource>,
    pub validation: Vec<PhotoSource>,
    /// Files that were looked at and left out, with the reason (documentation only).
    #[serde(default)]
    pub rejected: Vec<Rejected>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NoiseProfilesSource {
    pub package: String,
    pub path: String,
    pub licence: String,
    pub sha256: String,
}

/// One kept photograph.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PhotoSource {
    /// Output file stem, unique over train and validation.
    pub name: String,
    /// Debian package or PyPI project.
    pub package: String,
    /// Path inside the package (`usr/share/...`) or the wheel (`skimage/data/...`).
    pub path: String,
    /// For `.edj` files: which embedded JPEG stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamKey>,
    /// Licence, quoted from the package's copyright file / metadata.
    pub licence: String,
    /// Integer box-downscale factor (1 = keep as is).
    pub factor: u32,
    /// SHA-256 of the source bytes (the file, or the JPEG stream).
    pub sha256: String,
    /// Source size in pixels, `[width, height]` (informative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_size: Option<[u32; 2]>,
}

/// Where a JPEG stream sits inside an Eet (`.edj`) archive.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct StreamKey {
    /// Index among the JPEG streams found by [`find_jpeg_streams`].
    pub index: usize,
    /// Byte offset of the stream's SOI marker.
    pub offset: u64,
    /// Length of the stream in bytes, SOI to EOI inclusive.
    pub length: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rejected {
    pub package: String,
    pub path: String,
    pub reason: String,
}

impl PhotoList {
    /// The list compiled into the binary.
    pub fn builtin() -> Result<Self, DataError> {
        Self::parse(PHOTOS_JSON, "built-in training/data/photos.json")
    }

    pub fn parse(text: &str, what: &str) -> Result<Self, DataError> {
        let list: PhotoList = serde_json::from_str(text)
            .map_err(|e| DataError::Invalid { what: what.to_string(), message: e.to_string() })?;
        list.validate(what)?;
        Ok(list)
    }

    /// Consistency checks: unique names, no validation photo in training,
    /// factors >= 1, packages pinned.
    pub fn validate(&self, what: &str) -> Result<(), DataError> {
        let bad = |message: String| DataError::Invalid { what: what.to_string(), message };
        let mut names = BTreeSet::new();
        for p in self.train.iter().chain(&self.validation) {
            if !names.insert(p.name.as_str()) {
                return Err(bad(format!("photo name `{}` appears twice", p.name)));
            }
            if p.name.is_empty() || !p.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(bad(format!("photo name `{}` must be [A-Za-z0-9_-]+", p.name)));
            }
            if p.factor == 0 {
                return Err(bad(format!("photo `{}` has factor 0", p.name)));
            }
            if p.sha256.len() != 64 {
                return Err(bad(format!("photo `{}` has no valid sha256", p.name)));
            }
        }
        let val_sources: BTreeSet<(&str, &str)> =
            self.validation.iter().map(|p| (p.package.as_str(), p.path.as_str())).collect();
        let val_hashes: BTreeSet<&str> = self.validation.iter().map(|p| p.sha256.as_str()).collect();
        for p in &self.train {
            if val_sources.contains(&(p.package.as_str(), p.path.as_str())) || val_hashes.contains(p.sha256.as_str()) {
                return Err(bad(format!("validation photo `{}` is also in the training list", p.name)));
            }
            if !self.debian.contains_key(&p.package) {
                return Err(bad(format!("training photo `{}`: package `{}` is not a pinned Debian package", p.name, p.package)));
            }
        }
        for p in &self.validation {
            if !self.wheels.contains_key(&p.package) {
                return Err(bad(format!("validation photo `{}`: `{}` is not a pinned wheel", p.name, p.package)));
            }
        }
        if !self.debian.contains_key(&self.noise_profiles.package) {
            return Err(bad(format!("noise profiles package `{}` is not pinned", self.noise_profiles.package)));
        }
        Ok(())
    }

    pub(super) fn sha256(&self) -> String {
        // Serialising the parsed list makes the hash independent of formatting.
        sha256_hex(&serde_json::to_vec(self).unwrap_or_default())
    }
}
