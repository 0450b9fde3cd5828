//! Camera-noise synthesis: turns a clean sRGB photo into a realistically noisy
//! one, so the denoiser can be trained without real noisy/clean pairs.
//!
//! The pipeline follows "Unprocessing Images for Learned Raw Denoising"
//! (T. Brooks et al., CVPR 2019) and CBDNet (S. Guo et al., 2019):
//!
//! 1. sRGB -> linear: inverse smoothstep tone curve, then gamma expansion (2.2).
//! 2. linear sRGB -> camera RGB with a random colour-correction matrix (a convex
//!    mix of Brooks' four XYZ->camera matrices times sRGB->XYZ, rows summing 1).
//! 3. Undo white balance and brightening with Brooks' highlight-preserving
//!    "safe" inverse gains.
//! 4. Mosaic to a Bayer pattern: RGGB, GRBG, GBRG or BGGR at random for
//!    training ([`BayerPattern`]). Real photos bring any of the four, and
//!    the demosaic leaves a 2x2-periodic trace of it in the noise: a network
//!    trained on one pattern learns where red was sampled and loses about
//!    0.3 dB at high noise on the other three (measured on the RGGB-only
//!    weights of 2026-11-25).
//! 5. Heteroscedastic Gaussian noise, variance `a*x + b` per Bayer sample, with
//!    `(a, b)` from Brooks' log-log ranges or from darktable's calibrated
//!    camera noise profiles.
//! 6. Re-process: white balance, Malvar-He-Cutler demosaic (which spreads the
//!    noise spatially and across channels, as in real photos), colour
//!    correction, gamma and tone curve, clip, 8-bit quantisation.
//! 7. Optional JPEG round trip.
//!
//! Two deliberate differences from Brooks' code, both so that the *clean
//! input* is the exact training target (Brooks instead re-processes the clean
//! raw, so his target and input share one pipeline):
//!
//! * re-processing divides each Bayer sample by the very per-pixel gain that
//!   unprocessing multiplied it with (including brightness and the highlight
//!   mask), and re-applies the tone curve. Without noise the round trip is the
//!   identity up to demosaicing and 8-bit rounding, so it is colour-neutral;
//!   with global gains only, highlights would change colour between input and
//!   target and the network would learn a colour shift, not denoising.
//! * the clean camera-space image is not clipped before mosaicing (rows of the
//!   matrices sum to 1 and the gains are <= 1, so it stays in range for
//!   in-gamut colours); the *noisy* Bayer data is clipped to [0, 1] after white
//!   balance, as in Brooks' `process`.
//!
//! Brooks' code uses the sampled `read_noise` directly as a variance
//! (`variance = image * shot_noise + read_noise`); so does this module: `b` is
//! that value, not its square.
//!
//! Sizes: `synthesize` extends the image by 2 pixels on every side (linear
//! extrapolation in linear RGB) before mosaicing and crops them off after
//! demosaicing, so the output has exactly the input's size, odd sizes
//! included (an odd size needs no even padding: the Bayer colour of a pixel
//! only depends on the parity of its coordinates), and border pixels are
//! demosaiced from noisy neighbours like interior ones.

use image::Rgb32FImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Range;

/// Errors from loading noise profiles. Nothing in this module panics on
/// user-supplied data; it reports one of these instead.
#[derive(Debug, thiserror::Error)]
pub enum NoiseError {
    /// The bytes are not JSON of the expected shape (darktable's
    /// `noiseprofiles.json` or this module's compact form).
    #[error("noise profiles: invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The file parsed but held no usable profile (all skipped or invalid).
    #[error("noise profiles: no usable profile in the data")]
    NoProfiles,
    /// A profile in the compact form has a non-finite or non-positive value.
    #[error("noise profile {index} ({maker} {model} ISO {iso}): {reason}")]
    BadProfile {
        /// Position of the profile in the list.
        index: usize,
        /// Camera maker.
        maker: String,
        /// Camera model.
        model: String,
        /// ISO setting.
        iso: f32,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A [`NoiseModel`] setting is out of range (fraction outside [0, 1],
    /// empty or non-positive range...).
    #[error("noise model: {0}")]
    BadModel(&'static str),
}

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

// ---------------------------------------------------------------------------
// Sampling distribution and parameters
// ---------------------------------------------------------------------------

/// The distribution noise parameters are drawn from during training.
#[derive(Debug, Clone)]
pub struct NoiseModel {
    /// Calibrated camera profiles; `None` uses Brooks' ranges only.
    pub profiles: Option<NoiseProfiles>,
    /// Probability of taking `(a, b)` from a darktable profile (when
    /// `profiles` is set) instead of Brooks' ranges.
    pub darktable_fraction: f32,
    /// darktable profiles are multiplied (both `a` and `b`) by a factor drawn
    /// log-uniformly from this range. Its profiles come from large-sensor
    /// cameras whose noise is mostly mild (median `a` about 3e-5, against
    /// Brooks' 1e-4..1.2e-2); scaling up covers smaller sensors and
    /// underexposure. `(1.0, 1.0)` uses the profiles as measured.
    pub level_scale: (f32, f32),
    /// Brooks' shot-noise range `(min, max)`, sampled log-uniformly; the read
    /// noise follows his line `log b = 2.18 log a + 1.20 + N(0, 0.26)`.
    pub brooks_shot_range: (f32, f32),
    /// Probability of a JPEG round trip after re-processing.
    pub jpeg_probability: f32,
    /// JPEG quality range (inclusive), sampled uniformly.
    pub jpeg_quality: (u8, u8),
}

impl Default for NoiseModel {
    /// Brooks' ranges only, JPEG with probability 0.3 at quality 60..=100.
    fn default() -> Self {
        NoiseModel {
            profiles: None,
            darktable_fraction: 0.5,
            level_scale: (1.0, 4.0),
            brooks_shot_range: (1e-4, 0.012),
            jpeg_probability: 0.3,
            jpeg_quality: (60, 100),
        }
    }
}

impl NoiseModel {
    /// The default model, plus darktable profiles used for half the samples.
    pub fn with_profiles(profiles: NoiseProfiles) -> Self {
        NoiseModel {
            profiles: Some(profiles),
            ..Default::default()
        }
    }

    /// Checks that every setting is in range, so a bad configuration fails
    /// early instead of producing odd samples.
    pub fn validate(&self) -> Result<(), NoiseError> {
        let prob = |p: f32| (0.0..=1.0).contains(&p);
        if !prob(self.darktable_fraction) {
            return Err(NoiseError::BadModel("darktable_fraction must be in [0, 1]"));
        }
        if !prob(self.jpeg_probability) {
            return Err(NoiseError::BadModel("jpeg_probability must be in [0, 1]"));
        }
        let range = |r: (f32, f32)| r.0.is_finite() && r.1.is_finite() && r.0 > 0.0 && r.0 <= r.1;
        if !range(self.level_scale) {
            return Err(NoiseError::BadModel("level_scale must be 0 < min <= max"));
        }
        if !range(self.brooks_shot_range) {
            return Err(NoiseError::BadModel(
                "brooks_shot_range must be 0 < min <= max",
            ));
        }
        let (q0, q1) = self.jpeg_quality;
        if q0 == 0 || q0 > q1 || q1 > 100 {
            return Err(NoiseError::BadModel(
                "jpeg_quality must be 1 <= min <= max <= 100",
            ));
        }
        Ok(())
    }
}

/// Fixed noise levels for reproducible evaluation, in Brooks' raw space
/// (shot `a`, read variance `b` on Brooks' line `b = exp(2.18 ln a + 1.20)`).
/// The colour pipeline amplifies raw noise a lot (white-balance gains of ~2,
/// brightening, the inverse colour matrix, the gamma curve), so the sRGB
/// PSNRs are much lower than the raw `a` suggests. Measured on
/// `assets/sample-clean.png` (mean over 4 colour pipelines; printed by the
/// test `noise_levels_are_ordered_and_saved_for_inspection`): see each level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoiseLevel {
    /// Visible but mild, a good camera at moderate ISO: a = 1e-4, Brooks'
    /// lightest (about 34 dB sRGB PSNR; the noiseless round trip alone is
    /// about 36 dB on that photo, from demosaicing fine texture).
    Low,
    /// Clearly noisy, a phone indoors: a = 1e-3 (about 28 dB).
    Mid,
    /// Heavy, a phone at night (SIDD-like): a = 4e-3 (about 22 dB).
    High,
}

impl NoiseLevel {
    /// All levels, lightest first.
    pub const ALL: [NoiseLevel; 3] = [NoiseLevel::Low, NoiseLevel::Mid, NoiseLevel::High];

    /// The shot-noise gain `a` of this level.
    pub fn shot(self) -> f32 {
        match self {
            NoiseLevel::Low => 1e-4,
            NoiseLevel::Mid => 1e-3,
            NoiseLevel::High => 4e-3,
        }
    }

    /// The read-noise variance `b`, on Brooks' line without its random term.
    pub fn read(self) -> f32 {
        brooks_read(self.shot())
    }

    /// Lower-case name ("low", "mid", "high") for reports and file names.
    pub fn name(self) -> &'static str {
        match self {
            NoiseLevel::Low => "low",
            NoiseLevel::Mid => "mid",
            NoiseLevel::High => "high",
        }
    }
}

/// Brooks' mean read-noise variance for a shot-noise gain.
fn brooks_read(shot: f32) -> f32 {
    (2.18 * shot.ln() + 1.20).exp()
}

/// Everything that defines one synthetic capture. Sampled per image.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseParams {
    /// Where the sensor's colour filter array sits on the image: which
    /// colour the top-left pixel samples. Real photos come with any of the
    /// four (sensor, orientation and crop decide), and a network trained on
    /// one of them loses about 0.3 dB at high noise on the other three.
    pub pattern: BayerPattern,
    /// Shot-noise gain `a` per camera channel (R, G, B): variance grows by
    /// `a*x` with the raw value `x`.
    pub shot: [f32; 3],
    /// Read-noise variance `b` per camera channel (R, G, B).
    pub read: [f32; 3],
    /// White-balance gain of the red channel (the raw red is divided by it).
    pub red_gain: f32,
    /// White-balance gain of the blue channel.
    pub blue_gain: f32,
    /// Brightening gain, >= 1: the raw image is this much darker than the
    /// linear sRGB image (Brooks' `rgb_gain`).
    pub brightness: f32,
    /// Linear sRGB -> camera RGB matrix (rows sum to 1, so grey stays grey);
    /// re-processing applies its inverse.
    pub ccm: [[f32; 3]; 3],
    /// JPEG quality of the final round trip, `None` for no JPEG.
    pub jpeg_quality: Option<u8>,
    /// How the simulated camera interpolates the mosaic. Training always
    /// uses Malvar-He-Cutler; another method is a camera training never saw.
    pub demosaic: Demosaic,
    /// The tone curve between linear camera RGB and the 8-bit output.
    /// Training always uses Brooks'; another curve is an unseen camera.
    pub tone_curve: ToneCurve,
}

/// How a camera's image processor fills in the two colours each Bayer
/// sample lacks. They correlate the noise differently: Malvar-He-Cutler
/// spreads a sample's noise into a 5x5 neighbourhood with negative lobes,
/// bilinear into a 3x3 one with positive weights only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Demosaic {
    /// [`demosaic`]: bilinear plus a Laplacian correction (what training sees).
    #[default]
    MalvarHeCutler,
    /// Plain bilinear interpolation of each colour from its own samples.
    Bilinear,
}

/// The curve from linear light to the stored 8-bit value (and back, when
/// unprocessing a clean photo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ToneCurve {
    /// Brooks' gamma 2.2 plus smoothstep ([`linear_to_srgb`]; what training sees).
    #[default]
    Brooks,
    /// The sRGB transfer function of IEC 61966-2-1, without a tone curve:
    /// flatter shadows and no highlight roll-off.
    Srgb,
}

impl ToneCurve {
    /// Stored value in [0, 1] -> linear light.
    #[inline]
    pub fn to_linear(self, x: f32) -> f32 {
        match self {
            ToneCurve::Brooks => srgb_to_linear(x),
            ToneCurve::Srgb => {
                let x = x.clamp(0.0, 1.0);
                if x <= 0.04045 { x / 12.92 } else { ((x + 0.055) / 1.055).powf(2.4) }
            }
        }
    }

    /// Linear light -> stored value in [0, 1]; the inverse of [`ToneCurve::to_linear`].
    #[inline]
    pub fn from_linear(self, x: f32) -> f32 {
        match self {
            ToneCurve::Brooks => linear_to_srgb(x),
            ToneCurve::Srgb => {
                let x = x.clamp(0.0, 1.0);
                if x <= 0.003_130_8 { 12.92 * x } else { 1.055 * x.powf(1.0 / 2.4) - 0.055 }
            }
        }
    }
}

/// The four Bayer colour filter arrays, named by their top-left 2x2 block
/// read row by row. The mosaic itself is always RGGB ([`Bayer`]); another
/// pattern is RGGB shifted by [`BayerPattern::offset`] pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BayerPattern {
    /// Red at the top-left pixel (x even, y even).
    #[default]
    Rggb,
    /// Red at x odd, y even.
    Grbg,
    /// Red at x even, y odd.
    Gbrg,
    /// Red at x odd, y odd.
    Bggr,
}

impl BayerPattern {
    /// All four, in a fixed order.
    pub const ALL: [BayerPattern; 4] = [BayerPattern::Rggb, BayerPattern::Grbg, BayerPattern::Gbrg, BayerPattern::Bggr];

    /// `(dx, dy)`: image pixel `(x, y)` sits at RGGB position `(x + dx, y + dy)`,
    /// so the red samples are where `x + dx` and `y + dy` are both even.
    pub fn offset(self) -> (u32, u32) {
        match self {
            BayerPattern::Rggb => (0, 0),
            BayerPattern::Grbg => (1, 0),
            BayerPattern::Gbrg => (0, 1),
            BayerPattern::Bggr => (1, 1),
        }
    }

    /// The pattern's name in lower case (`rggb`, ...).
    pub fn name(self) -> &'static str {
        match self {
            BayerPattern::Rggb => "rggb",
            BayerPattern::Grbg => "grbg",
            BayerPattern::Gbrg => "gbrg",
            BayerPattern::Bggr => "bggr",
        }
    }
}

impl std::str::FromStr for BayerPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BayerPattern::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown Bayer pattern {s:?} (rggb, grbg, gbrg or bggr)"))
    }
}

/// Brooks' four XYZ -> camera matrices (from the unprocessing paper's code).
const XYZ2CAMS: [[[f32; 3]; 3]; 4] = [
    [
        [1.0234, -0.2969, -0.2266],
        [-0.5625, 1.6328, -0.0469],
        [-0.0703, 0.2188, 0.6406],
    ],
    [
        [0.4913, -0.0541, -0.0202],
        [-0.613, 1.3513, 0.2906],
        [-0.1564, 0.2151, 0.7183],
    ],
    [
        [0.838, -0.263, -0.0639],
        [-0.2887, 1.0725, 0.2496],
        [-0.0627, 0.1427, 0.5438],
    ],
    [
        [0.6596, -0.2079, -0.0562],
        [-0.4782, 1.3016, 0.1933],
        [-0.097, 0.1581, 0.5181],
    ],
];

/// Linear sRGB (D65) -> XYZ.
const RGB2XYZ: [[f32; 3]; 3] = [
    [0.4124564, 0.3575761, 0.1804375],
    [0.2126729, 0.7151522, 0.0721750],
    [0.0193339, 0.119192, 0.9503041],
];

impl NoiseParams {
    /// Draws a full set of parameters from `model`. The order of random draws
    /// is fixed, so a seeded generator gives reproducible parameters.
    pub fn sample<R: Rng + ?Sized>(rng: &mut R, model: &NoiseModel) -> NoiseParams {
        let mut p = Self::random_pipeline(rng);
        let use_darktable = rng.random::<f32>() < model.darktable_fraction;
        match (&model.profiles, use_darktable) {
            (Some(profiles), true) => {
                let profile = profiles.sample(rng);
                let scale = log_uniform(rng, model.level_scale);
                // darktable measures noise after white balance (its red `a`
                // is about twice its green one, the red WB gain): a value
                // y = g*x has variance a*y + b, so the raw x has variance
                // (a/g)*x + b/g^2. Our own WB gains stand in for the camera's.
                let g = [p.red_gain, 1.0, p.blue_gain];
                p.shot = std::array::from_fn(|c| profile.a[c] * scale / g[c]);
                p.read = std::array::from_fn(|c| profile.b[c] * scale / (g[c] * g[c]));
            }
            _ => {
                let shot = log_uniform(rng, model.brooks_shot_range);
                let z: f32 = StandardNormal.sample(rng);
                let read = brooks_read(shot) * (0.26 * z).exp();
                p.shot = [shot; 3];
                p.read = [read; 3];
            }
        }
        if rng.random::<f32>() < model.jpeg_probability {
            let (q0, q1) = model.jpeg_quality;
            let (q0, q1) = (q0.clamp(1, 100), q1.clamp(1, 100));
            p.jpeg_quality = Some(rng.random_range(q0.min(q1)..=q1.max(q0)));
        }
        p.pattern = BayerPattern::ALL[rng.random_range(0..BayerPattern::ALL.len())];
        p
    }

    /// Parameters for a fixed evaluation level: the noise is the level's
    /// `(a, b)` on all channels; the colour pipeline (matrix, gains) is still
    /// random, drawn from `rng`; no JPEG; the RGGB pattern (set `pattern`
    /// for another).
    pub fn for_level<R: Rng + ?Sized>(level: NoiseLevel, rng: &mut R) -> NoiseParams {
        let mut p = Self::random_pipeline(rng);
        p.shot = [level.shot(); 3];
        p.read = [level.read(); 3];
        p
    }

    /// Noise-free parameters with an identity colour pipeline (no matrix, no
    /// gains, no JPEG): only the tone curves, mosaic, demosaic and 8-bit
    /// rounding remain. For tests and as a neutral starting point.
    pub fn identity() -> NoiseParams {
        NoiseParams {
            shot: [0.0; 3],
            read: [0.0; 3],
            red_gain: 1.0,
            blue_gain: 1.0,
            brightness: 1.0,
            ccm: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            jpeg_quality: None,
            pattern: BayerPattern::Rggb,
            demosaic: Demosaic::MalvarHeCutler,
            tone_curve: ToneCurve::Brooks,
        }
    }

    /// The same parameters without noise and without JPEG (for round-trip
    /// checks of the colour pipeline).
    pub fn without_noise(&self) -> NoiseParams {
        NoiseParams {
            shot: [0.0; 3],
            read: [0.0; 3],
            jpeg_quality: None,
            ..self.clone()
        }
    }

    /// Random colour matrix and gains, no noise, no JPEG (Brooks'
    /// `random_ccm` and `random_gains`).
    fn random_pipeline<R: Rng + ?Sized>(rng: &mut R) -> NoiseParams {
        // Convex mix of the four matrices with uniform weights, as Brooks does
        // (his U(1e-8, 1e8) weights are U(0, 1) up to scale).
        let w: [f32; 4] = std::array::from_fn(|_| rng.random::<f32>() + 1e-6);
        let wsum: f32 = w.iter().sum();
        let mut xyz2cam = [[0.0f32; 3]; 3];
        for (k, m) in XYZ2CAMS.iter().enumerate() {
            for i in 0..3 {
                for j in 0..3 {
                    xyz2cam[i][j] += m[i][j] * w[k] / wsum;
                }
            }
        }
        let mut ccm = matmul(&xyz2cam, &RGB2XYZ);
        for row in ccm.iter_mut() {
            let s: f32 = row.iter().sum();
            for v in row.iter_mut() {
                *v /= s;
            }
        }
        // Brightness: 1 / N(0.8, 0.1). The normal is clamped to [0.5, 1.0] so
        // that the gain is >= 1: the raw image is never brighter than the
        // sRGB one, hence never clipped before the noise (which would lose
        // highlight colour the target still has); 2.3% of draws are clamped.
        let normal = Normal::new(0.8f32, 0.1).unwrap_or_else(|_| unreachable!());
        let brightness = 1.0 / normal.sample(rng).clamp(0.5, 1.0);
        let red_gain = rng.random_range(1.9f32..2.4);
        let blue_gain = rng.random_range(1.5f32..1.9);
        NoiseParams {
            shot: [0.0; 3],
            read: [0.0; 3],
            red_gain,
            blue_gain,
            brightness,
            ccm,
            jpeg_quality: None,
            pattern: BayerPattern::Rggb,
            demosaic: Demosaic::MalvarHeCutler,
            tone_curve: ToneCurve::Brooks,
        }
    }
}

fn log_uniform<R: Rng + ?Sized>(rng: &mut R, (lo, hi): (f32, f32)) -> f32 {
    let (l0, l1) = (lo.ln(), hi.ln());
    if l1 > l0 {
        (l0 + (l1 - l0) * rng.random::<f32>()).exp()
    } else {
        lo
    }
}

fn matmul(a: &[[f32; 3]; 3], b: &[[f32; 3]; 3]) -> [[f32; 3]; 3] {
    let mut m = [[0.0f32; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            m[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    m
}

/// Inverse of a 3x3 matrix (cofactors, computed in f64). The colour matrices
/// used here are well conditioned; a singular one yields the identity rather
/// than infinities.
pub fn invert3(m: &[[f32; 3]; 3]) -> [[f32; 3]; 3] {
    let a = m.map(|r| r.map(f64::from));
    let c = |i: usize, j: usize| {
        let (i1, i2) = ((i + 1) % 3, (i + 2) % 3);
        let (j1, j2) = ((j + 1) % 3, (j + 2) % 3);
        a[i1][j1] * a[i2][j2] - a[i1][j2] * a[i2][j1]
    };
    let det = a[0][0] * c(0, 0) + a[0][1] * c(0, 1) + a[0][2] * c(0, 2);
    if !det.is_finite() || det.abs() < 1e-12 {
        return [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    }
    // inverse = adjugate / det; the adjugate is the transposed cofactors.
    std::array::from_fn(|i| std::array::from_fn(|j| (c(j, i) / det) as f32))
}

#[inline]
fn apply3(m: &[[f32; 3]; 3], v: [f32; 3]) -> [f32; 3] {
    [
        m[0][0] * v[0] + m[0][1] * v[1] + m[0][2] * v[2],
        m[1][0] * v[0] + m[1][1] * v[1] + m[1][2] * v[2],
        m[2][0] * v[0] + m[2][1] * v[1] + m[2][2] * v[2],
    ]
}

// ---------------------------------------------------------------------------
// Tone curves
// ---------------------------------------------------------------------------

/// sRGB value -> linear: inverse smoothstep tone curve
/// `0.5 - sin(asin(1 - 2x) / 3)`, then gamma expansion `max(x, 1e-8)^2.2`
/// (Brooks' approximation of a camera's tone curve and gamma; not the exact
/// sRGB transfer function, on purpose: it is what the noise model was fit
/// with). Input is clamped to [0, 1].
#[inline]
pub fn srgb_to_linear(x: f32) -> f32 {
    let x = x.clamp(0.0, 1.0);
    let t = 0.5 - ((1.0 - 2.0 * x).asin() / 3.0).sin();
    t.max(1e-8).powf(2.2)
}

/// Linear -> sRGB value: gamma compression `max(x, 1e-8)^(1/2.2)`, then the
/// smoothstep tone curve `3x^2 - 2x^3`; input clamped to [0, 1]. Inverse of
/// [`srgb_to_linear`].
#[inline]
pub fn linear_to_srgb(x: f32) -> f32 {
    let g = x.clamp(0.0, 1.0).max(1e-8).powf(1.0 / 2.2);
    (3.0 * g * g - 2.0 * g * g * g).clamp(0.0, 1.0)
}

/// Rounds to the nearest 8-bit level, as saving a PNG/JPEG would.
#[inline]
pub fn quantize8(x: f32) -> f32 {
    (x.clamp(0.0, 1.0) * 255.0).round() / 255.0
}

// ---------------------------------------------------------------------------
// Bayer data
// ---------------------------------------------------------------------------

/// A single-channel RGGB Bayer image: even rows R G R G..., odd rows
/// G B G B...; one value per pixel, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Bayer {
    /// Width in pixels (any value >= 1; odd widths are fine).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height` samples, row-major.
    pub data: Vec<f32>,
}

impl Bayer {
    /// Colour channel (0 = R, 1 = G, 2 = B) sampled at `(x, y)` in RGGB.
    #[inline]
    pub fn channel(x: u32, y: u32) -> usize {
        match (y & 1, x & 1) {
            (0, 0) => 0,
            (1, 1) => 2,
            _ => 1,
        }
    }
}

/// Keeps, for every pixel, the channel an RGGB sensor samples there.
pub fn mosaic(image: &Rgb32FImage) -> Bayer {
    let (w, h) = image.dimensions();
    let src = image.as_raw();
    let mut data = vec![0.0f32; w as usize * h as usize];
    data.par_chunks_mut(w as usize)
        .enumerate()
        .for_each(|(y, row)| {
            for (x, v) in row.iter_mut().enumerate() {
                let i = (y * w as usize + x) * 3;
                *v = src[i + Bayer::channel(x as u32, y as u32)];
            }
        });
    Bayer {
        width: w,
        height: h,
        data,
    }
}

/// Mirror index without repeating the edge sample (reflect-101), folded as
/// often as needed; it preserves parity, hence the Bayer colour. `n >= 2`.
#[inline]
fn reflect(i: isize, n: isize) -> usize {
    let period = 2 * (n - 1);
    let m = i.rem_euclid(period);
    (if m >= n { period - m } else { m }) as usize
}

/// Malvar-He-Cutler demosaicing ("High-quality linear interpolation for
/// demosaicing of Bayer-patterned color images", ICASSP 2004): bilinear
/// interpolation corrected by the Laplacian of the sampled channel. It
/// interpolates noise from neighbours into every channel, which gives the
/// spatially correlated, chroma-blotchy noise of real photos. Borders use
/// reflect-101, so any size >= 2x2 works; 1-pixel-wide or -high images are
/// widened by edge replication first.
pub fn demosaic(bayer: &Bayer) -> Rgb32FImage {
    demosaic_with(bayer, Demosaic::MalvarHeCutler)
}

/// Demosaics with the given method; same border handling as [`demosaic`].
pub fn demosaic_with(bayer: &Bayer, method: Demosaic) -> Rgb32FImage {
    let (w, h) = (bayer.width, bayer.height);
    if w == 0 || h == 0 {
        return Rgb32FImage::new(w, h);
    }
    if w < 2 || h < 2 {
        let (pw, ph) = (w.max(2), h.max(2));
        let mut data = Vec::with_capacity(pw as usize * ph as usize);
        for y in 0..ph {
            for x in 0..pw {
                // Replicate the 1-pixel dimension. The copied samples then sit
                // at sites of another colour, so colours are approximate;
                // `synthesize` avoids this by padding in RGB before mosaicing.
                let sx = x.min(w - 1);
                let sy = y.min(h - 1);
                data.push(bayer.data[(sy * w + sx) as usize]);
            }
        }
        let full = demosaic_with(
            &Bayer {
                width: pw,
                height: ph,
                data,
            },
            method,
        );
        return image::imageops::crop_imm(&full, 0, 0, w, h).to_image();
    }
    // Pad by 2 on every side with reflect-101 so the 5x5 kernels need no
    // bounds checks.
    let (wi, hi) = (w as isize, h as isize);
    let pw = w as usize + 4;
    let mut padded = vec![0.0f32; pw * (h as usize + 4)];
    padded.par_chunks_mut(pw).enumerate().for_each(|(py, row)| {
        let sy = reflect(py as isize - 2, hi);
        let src = &bayer.data[sy * w as usize..(sy + 1) * w as usize];
        for (px, v) in row.iter_mut().enumerate() {
            *v = src[reflect(px as isize - 2, wi)];
        }
    });
    let mut out = vec![0.0f32; w as usize * h as usize * 3];
    out.par_chunks_mut(w as usize * 3)
        .enumerate()
        .for_each(|(y, row)| {
            let p = |dx: isize, dy: isize, x: usize| -> f32 {
                padded[((y as isize + 2 + dy) as usize) * pw + (x as isize + 2 + dx) as usize]
            };
            for x in 0..w as usize {
                let c = p(0, 0, x);
                // Sums of neighbours at the distances the kernels use.
                let n1 = p(-1, 0, x) + p(1, 0, x) + p(0, -1, x) + p(0, 1, x);
                let h1 = p(-1, 0, x) + p(1, 0, x);
                let v1 = p(0, -1, x) + p(0, 1, x);
                let h2 = p(-2, 0, x) + p(2, 0, x);
                let v2 = p(0, -2, x) + p(0, 2, x);
                let diag = p(-1, -1, x) + p(1, -1, x) + p(-1, 1, x) + p(1, 1, x);
                // G at R or B: 4c + 2*n1 - (h2 + v2), / 8.
                let g_at_rb = (4.0 * c + 2.0 * n1 - h2 - v2) / 8.0;
                // R/B at G, neighbours of that colour left/right:
                // 5c + 4*h1 - diag - h2 + v2/2, / 8.
                let at_g_row = (5.0 * c + 4.0 * h1 - diag - h2 + 0.5 * v2) / 8.0;
                // Same, neighbours above/below.
                let at_g_col = (5.0 * c + 4.0 * v1 - diag - v2 + 0.5 * h2) / 8.0;
                // B at R or R at B: 6c + 2*diag - 3/2 (h2 + v2), / 8.
                let rb_at_br = (6.0 * c + 2.0 * diag - 1.5 * (h2 + v2)) / 8.0;
                if method == Demosaic::Bilinear {
                    let (g, h1, v1, d) = (n1 / 4.0, h1 / 2.0, v1 / 2.0, diag / 4.0);
                    let rgb = match (y & 1, x & 1) {
                        (0, 0) => [c, g, d],
                        (0, _) => [h1, c, v1],
                        (_, 0) => [v1, c, h1],
                        _ => [d, g, c],
                    };
                    row[x * 3..x * 3 + 3].copy_from_slice(&rgb);
                    continue;
                }
                let rgb = match (y & 1, x & 1) {
                    (0, 0) => [c, g_at_rb, rb_at_br],  // R site
                    (0, _) => [at_g_row, c, at_g_col], // G in an R row: R left/right
                    (_, 0) => [at_g_col, c, at_g_row], // G in a B row: B left/right
                    _ => [rb_at_br, g_at_rb, c],       // B site
                };
                row[x * 3..x * 3 + 3].copy_from_slice(&rgb);
            }
        });
    Rgb32FImage::from_raw(w, h, out).unwrap_or_else(|| unreachable!("buffer size matches"))
}

/// Rows per independently seeded noise block: the noise of a block depends
/// only on the image seed and the block index, never on scheduling.
const NOISE_BLOCK_ROWS: usize = 16;

/// Adds heteroscedastic Gaussian noise to each Bayer sample: variance
/// `shot[c] * max(x, 0) + read[c]` for the sample's channel `c` (a Gaussian
/// approximation of Poisson shot noise plus Gaussian read noise; Brooks and
/// CBDNet do the same). Values are not clipped (see [`process`]).
///
/// One seed is drawn from `rng`; blocks of rows then use their own ChaCha8
/// streams, in parallel, so the result does not depend on the thread count.
pub fn add_noise_bayer<R: Rng + ?Sized>(
    bayer: &mut Bayer,
    shot: [f32; 3],
    read: [f32; 3],
    rng: &mut R,
) {
    let seed: u64 = rng.random();
    if shot.iter().chain(read.iter()).all(|v| *v == 0.0) {
        return;
    }
    let w = bayer.width as usize;
    if w == 0 {
        return;
    }
    bayer
        .data
        .par_chunks_mut(w * NOISE_BLOCK_ROWS)
        .enumerate()
        .for_each(|(block, chunk)| {
            let mut brng = ChaCha8Rng::seed_from_u64(seed);
            brng.set_stream(block as u64);
            for (r, row) in chunk.chunks_mut(w).enumerate() {
                let y = (block * NOISE_BLOCK_ROWS + r) as u32;
                for (x, v) in row.iter_mut().enumerate() {
                    let c = Bayer::channel(x as u32, y);
                    let var = (shot[c] * v.max(0.0) + read[c]).max(0.0);
                    let z: f32 = StandardNormal.sample(&mut brng);
                    *v += z * var.sqrt();
                }
            }
        });
}

// ---------------------------------------------------------------------------
// The pipeline
// ---------------------------------------------------------------------------

/// A clean image taken back to raw sensor data by [`unprocess`].
#[derive(Debug, Clone, PartialEq)]
pub struct Unprocessed {
    /// Clean RGGB data in [0, 1]-ish raw units (white level 1).
    pub bayer: Bayer,
    /// Per sample, the gain [`process`] multiplies by to white-balance and
    /// brighten: the exact inverse of the gain unprocessing applied there,
    /// highlight mask included.
    pub wb_gain: Vec<f32>,
}

/// Steps 1-4: sRGB -> linear -> camera RGB -> undo white balance and
/// brightness (Brooks' safe inverse gains: near white, the gains fade to 1 so
/// highlights are not dimmed into false colours) -> RGGB mosaic.
pub fn unprocess(clean: &Rgb32FImage, params: &NoiseParams) -> Unprocessed {
    let lin: Vec<f32> = clean
        .as_raw()
        .par_iter()
        .map(|v| params.tone_curve.to_linear(*v))
        .collect();
    unprocess_linear(&lin, clean.width(), clean.height(), params)
}

/// [`unprocess`] from linear RGB (interleaved, `w * h * 3` values).
fn unprocess_linear(lin: &[f32], w: u32, h: u32, params: &NoiseParams) -> Unprocessed {
    let inv_b = 1.0 / params.brightness;
    let gains = [inv_b / params.red_gain, inv_b, inv_b / params.blue_gain];
    let n = w as usize * h as usize;
    let mut data = vec![0.0f32; n];
    let mut wb_gain = vec![1.0f32; n];
    let row_len = w.max(1) as usize;
    data.par_chunks_mut(row_len)
        .zip(wb_gain.par_chunks_mut(row_len))
        .enumerate()
        .for_each(|(y, (drow, grow))| {
            for x in 0..drow.len() {
                let i = (y * w as usize + x) * 3;
                let cam = apply3(&params.ccm, [lin[i], lin[i + 1], lin[i + 2]]);
                let gray = (cam[0] + cam[1] + cam[2]) / 3.0;
                let mask = ((gray - 0.9).max(0.0) / 0.1).powi(2).min(1.0);
                let c = Bayer::channel(x as u32, y as u32);
                let safe = (mask + (1.0 - mask) * gains[c]).max(gains[c]);
                drow[x] = cam[c] * safe;
                grow[x] = 1.0 / safe;
            }
        });
    Unprocessed {
        bayer: Bayer {
            width: w,
            height: h,
            data,
        },
        wb_gain,
    }
}

/// Margin added around the image before mosaicing, in pixels: the 5x5
/// demosaic kernel reaches 2 pixels out.
const PAD: u32 = 2;

/// Linear RGB of `clean`, extended by `PAD` pixels on every side (and by
/// `lead.0` / `lead.1` more on the left / top, which moves the RGGB mosaic
/// of the padded image to another pattern on `clean`) by linear
/// extrapolation (`f(-k) = 2 f(0) - f(k)`, clamped to [0, 1]; edge
/// replication when a side is shorter than 3 pixels).
///
/// Why: the demosaic corrects each interpolated colour with the Laplacian of
/// the sampled one, so a mirrored border (a kink in every gradient) puts
/// errors of several 8-bit levels into dark colours next to bright ones.
/// Extrapolation keeps gradients straight, and the margin samples then get
/// their own noise like real sensor pixels outside a crop, so border pixels
/// have the same noise statistics as the interior.
fn linear_padded(clean: &Rgb32FImage, lead: (u32, u32), tone: ToneCurve) -> (Vec<f32>, u32, u32) {
    let (w, h) = clean.dimensions();
    let (left, top) = (PAD + lead.0, PAD + lead.1);
    let (pw, ph) = (w + left + PAD, h + top + PAD);
    let src = clean.as_raw();
    // Source coordinate and weight pairs for one axis: value = sum w_k f(i_k).
    let axis = |i: i64, n: i64| -> [(usize, f32); 2] {
        if i >= 0 && i < n {
            [(i as usize, 1.0), (0, 0.0)]
        } else if n < 3 {
            [(i.clamp(0, n - 1) as usize, 1.0), (0, 0.0)]
        } else if i < 0 {
            [(0, 2.0), ((-i).min(n - 1) as usize, -1.0)]
        } else {
            let m = 2 * (n - 1) - i;
            [((n - 1) as usize, 2.0), (m.max(0) as usize, -1.0)]
        }
    };
    let lin_at = |x: usize, y: usize, c: usize| tone.to_linear(src[(y * w as usize + x) * 3 + c]);
    let mut out = vec![0.0f32; pw as usize * ph as usize * 3];
    out.par_chunks_mut(pw as usize * 3)
        .enumerate()
        .for_each(|(py, row)| {
            let ys = axis(py as i64 - top as i64, h as i64);
            for px in 0..pw as usize {
                let xs = axis(px as i64 - left as i64, w as i64);
                for c in 0..3 {
                    let mut v = 0.0;
                    for &(yi, wy) in &ys {
                        if wy == 0.0 {
                            continue;
                        }
                        for &(xi, wx) in &xs {
                            if wx != 0.0 {
                                v += wy * wx * lin_at(xi, yi, c);
                            }
                        }
                    }
                    row[px * 3 + c] = v.clamp(0.0, 1.0);
                }
            }
        });
    (out, pw, ph)
}

/// Step 6: white balance (per-sample gains from [`unprocess`]), clip to
/// [0, 1] as the sensor range, demosaic (`params.demosaic`), colour
/// correction (inverse of `params.ccm`), tone curve (`params.tone_curve`),
/// clip, 8-bit quantisation. No JPEG.
pub fn process(bayer: &Bayer, wb_gain: &[f32], params: &NoiseParams) -> Rgb32FImage {
    let balanced = Bayer {
        width: bayer.width,
        height: bayer.height,
        data: bayer
            .data
            .par_iter()
            .zip(wb_gain.par_iter())
            .map(|(v, g)| (v * g).clamp(0.0, 1.0))
            .collect(),
    };
    let mut img = demosaic_with(&balanced, params.demosaic);
    let cam2rgb = invert3(&params.ccm);
    let w = img.width().max(1) as usize;
    img.par_chunks_mut(w * 3).for_each(|row| {
        for px in row.chunks_exact_mut(3) {
            let rgb = apply3(&cam2rgb, [px[0], px[1], px[2]]);
            for c in 0..3 {
                px[c] = quantize8(params.tone_curve.from_linear(rgb[c]));
            }
        }
    });
    img
}

/// JPEG-compresses and decodes an image at `quality` (1..=100). If encoding
/// or decoding fails (it does not for valid in-memory RGB data), the input
/// is returned unchanged rather than panicking mid-training.
pub fn jpeg_roundtrip(img: &Rgb32FImage, quality: u8) -> Rgb32FImage {
    let bytes: Vec<u8> = img
        .as_raw()
        .iter()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    let mut buf = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality.clamp(1, 100));
    if image::ImageEncoder::write_image(
        enc,
        &bytes,
        img.width(),
        img.height(),
        image::ExtendedColorType::Rgb8,
    )
    .is_err()
    {
        return img.clone();
    }
    match image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg) {
        Ok(decoded) if decoded.width() == img.width() && decoded.height() == img.height() => {
            decoded.to_rgb32f()
        }
        _ => img.clone(),
    }
}

/// The noisy version of `clean` (same size) for `params`; the clean input is
/// the training target. Pixel values of `clean` are clamped to [0, 1].
pub fn synthesize<R: Rng + ?Sized>(
    clean: &Rgb32FImage,
    params: &NoiseParams,
    rng: &mut R,
) -> Rgb32FImage {
    let (w, h) = clean.dimensions();
    if w == 0 || h == 0 {
        return clean.clone();
    }
    // PAD is even, so the padded image's RGGB mosaic falls on `clean` with
    // the pattern's offset.
    let (dx, dy) = params.pattern.offset();
    let (lin, pw, ph) = linear_padded(clean, (dx, dy), params.tone_curve);
    let mut raw = unprocess_linear(&lin, pw, ph, params);
    add_noise_bayer(&mut raw.bayer, params.shot, params.read, rng);
    let full = process(&raw.bayer, &raw.wb_gain, params);
    let out = image::imageops::crop_imm(&full, PAD + dx, PAD + dy, w, h).to_image();
    match params.jpeg_quality {
        Some(q) => jpeg_roundtrip(&out, q),
        None => out,
    }
}

/// The random generator of item `index` of a batch: ChaCha8 seeded with
/// `seed`, on stream `index`, so every item has its own reproducible stream.
pub fn item_rng(seed: u64, index: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index as u64);
    rng
}

/// Noisy versions of a batch, in parallel (rayon). Item `i` draws its
/// parameters and noise from [`item_rng`]`(seed, i)` only, so the result is
/// the same for any thread count and any batch split.
pub fn synthesize_batch(cleans: &[Rgb32FImage], model: &NoiseModel, seed: u64) -> Vec<Rgb32FImage> {
    cleans
        .par_iter()
        .enumerate()
        .map(|(i, clean)| {
            let mut rng = item_rng(seed, i);
            let params = NoiseParams::sample(&mut rng, model);
            synthesize(clean, &params, &mut rng)
        })
        .collect()
}
