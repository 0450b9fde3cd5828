//! Noise profiles: darktable's calibrated `(a, b)` per camera and ISO
//! (`variance = a*x + b`), read from its `noiseprofiles.json` or this
//! crate's compact form.

use std::collections::BTreeMap;
use std::ops::Range;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::NoiseError;

// ---------------------------------------------------------------------------
// Noise profiles (darktable)
// ---------------------------------------------------------------------------

/// Lowest read-noise variance `b` kept from darktable profiles. darktable fits
/// `variance = a*x + b` by least squares and the intercept `b` comes out
/// negative for about a fifth of its profiles (and tiny for many more); a
/// negative variance floor is meaningless for sampling, so `b` is clamped up to
/// this value (a standard deviation of 1e-4 of the white level, about a
/// quarter of a 12-bit raw step: negligible, but positive).
pub const DARKTABLE_B_FLOOR: f32 = 1e-8;

/// Lowest shot-noise gain `a` kept from darktable profiles (all real profiles
/// are far above it; it only guards against zero or negative entries).
pub const DARKTABLE_A_FLOOR: f32 = 1e-9;

/// One calibrated noise profile: variance `a[c]*x + b[c]` for the camera's
/// red, green and blue channels at one ISO setting, with `x` the raw value
/// normalised to the white level *after white balance* (darktable's profiling
/// space; [`NoiseParams::sample`] converts to un-balanced raw).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseProfile {
    /// Camera maker, e.g. "Canon".
    pub maker: String,
    /// Camera model, e.g. "EOS-1Ds".
    pub model: String,
    /// ISO setting the profile was measured at.
    pub iso: f32,
    /// Shot-noise gain per channel (R, G, B).
    pub a: [f32; 3],
    /// Read-noise variance per channel (R, G, B), already clamped to
    /// [`DARKTABLE_B_FLOOR`] when parsed from darktable.
    pub b: [f32; 3],
}

/// A set of calibrated camera noise profiles, grouped by camera so that
/// sampling can pick a camera first (cameras with many ISO steps do not
/// dominate) and then one of its ISO settings.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseProfiles {
    profiles: Vec<NoiseProfile>,
    /// Index ranges into `profiles`, one per (maker, model).
    cameras: Vec<Range<usize>>,
}

#[derive(Deserialize)]
struct DtFile {
    noiseprofiles: Vec<DtMaker>,
}

#[derive(Deserialize)]
struct DtMaker {
    maker: String,
    models: Vec<DtModel>,
}

#[derive(Deserialize)]
struct DtModel {
    model: String,
    profiles: Vec<DtProfile>,
}

#[derive(Deserialize)]
struct DtProfile {
    iso: f64,
    a: [f64; 3],
    b: [f64; 3],
    /// darktable marks profiles it does not trust with `"skip": true`.
    #[serde(default)]
    skip: bool,
}

#[derive(Serialize, Deserialize)]
struct CompactFile {
    /// Where the numbers come from, for people reading the file.
    #[serde(default)]
    source: String,
    profiles: Vec<NoiseProfile>,
}

impl NoiseProfiles {
    /// Parses darktable's `noiseprofiles.json` (Debian package `darktable`,
    /// `/usr/share/darktable/noiseprofiles.json`; GPL-3+ data).
    ///
    /// Profiles marked `"skip": true` and profiles with non-finite numbers are
    /// left out; `a` is clamped to [`DARKTABLE_A_FLOOR`] and `b` to
    /// [`DARKTABLE_B_FLOOR`] (see there for why).
    pub fn from_darktable_json(bytes: &[u8]) -> Result<NoiseProfiles, NoiseError> {
        let file: DtFile = serde_json::from_slice(bytes)?;
        let mut profiles = Vec::new();
        for maker in &file.noiseprofiles {
            for model in &maker.models {
                for p in &model.profiles {
                    let finite =
                        p.iso.is_finite() && p.a.iter().chain(p.b.iter()).all(|v| v.is_finite());
                    if p.skip || !finite {
                        continue;
                    }
                    profiles.push(NoiseProfile {
                        maker: maker.maker.clone(),
                        model: model.model.clone(),
                        iso: p.iso as f32,
                        a: p.a.map(|v| (v as f32).max(DARKTABLE_A_FLOOR)),
                        b: p.b.map(|v| (v as f32).max(DARKTABLE_B_FLOOR)),
                    });
                }
            }
        }
        Self::from_profiles(profiles)
    }

    /// Builds a set from a list of profiles. Fails with
    /// [`NoiseError::NoProfiles`] on an empty list and with
    /// [`NoiseError::BadProfile`] when a value is non-finite or not positive.
    pub fn from_profiles(mut profiles: Vec<NoiseProfile>) -> Result<NoiseProfiles, NoiseError> {
        if profiles.is_empty() {
            return Err(NoiseError::NoProfiles);
        }
        for (index, p) in profiles.iter().enumerate() {
            let reason = if !p.iso.is_finite() {
                Some("ISO is not finite")
            } else if !p.a.iter().all(|v| v.is_finite() && *v > 0.0) {
                Some("a must be finite and > 0")
            } else if !p.b.iter().all(|v| v.is_finite() && *v > 0.0) {
                Some("b must be finite and > 0")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(NoiseError::BadProfile {
                    index,
                    maker: p.maker.clone(),
                    model: p.model.clone(),
                    iso: p.iso,
                    reason,
                });
            }
        }
        // Group by camera; the stable sort keeps darktable's ISO order inside
        // a camera and makes the result independent of the input's camera order.
        profiles.sort_by(|x, y| (&x.maker, &x.model).cmp(&(&y.maker, &y.model)));
        let mut groups: BTreeMap<(String, String), Range<usize>> = BTreeMap::new();
        for (i, p) in profiles.iter().enumerate() {
            groups
                .entry((p.maker.clone(), p.model.clone()))
                .and_modify(|r| r.end = i + 1)
                .or_insert(i..i + 1);
        }
        let cameras = groups.into_values().collect();
        Ok(NoiseProfiles { profiles, cameras })
    }

    /// Serialises to the compact form carried in the training data directory
    /// (the training machines have no darktable): a JSON object with a
    /// `source` note and the list of `{maker, model, iso, a: [3], b: [3]}`.
    pub fn to_compact_json(&self) -> String {
        let file = CompactFile {
            source: "darktable noiseprofiles.json (GPL-3+), skipped profiles removed, \
                     a >= 1e-9 and b >= 1e-8 after clamping"
                .to_string(),
            profiles: self.profiles.clone(),
        };
        // Serialising plain structs of strings and finite floats cannot fail.
        serde_json::to_string(&file).unwrap_or_default()
    }

    /// Parses the compact form written by [`NoiseProfiles::to_compact_json`];
    /// values are validated (finite, positive), not clamped.
    pub fn from_compact_json(bytes: &[u8]) -> Result<NoiseProfiles, NoiseError> {
        let file: CompactFile = serde_json::from_slice(bytes)?;
        Self::from_profiles(file.profiles)
    }

    /// All profiles, grouped by camera (maker, model), ISO order kept.
    pub fn profiles(&self) -> &[NoiseProfile] {
        &self.profiles
    }

    /// Number of profiles.
    pub fn len(&self) -> usize {
        self.profiles.len()
    }

    /// Always false: an empty set cannot be built.
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }

    /// Number of distinct cameras (maker, model).
    pub fn camera_count(&self) -> usize {
        self.cameras.len()
    }

    /// Picks a camera uniformly, then one of its profiles uniformly. ISO
    /// steps are roughly geometric (100, 125, 160, 200...), so the noise level
    /// comes out roughly log-uniform over each camera's range.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> &NoiseProfile {
        let cam = &self.cameras[rng.random_range(0..self.cameras.len())];
        &self.profiles[rng.random_range(cam.clone())]
    }
}
