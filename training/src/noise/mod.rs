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

mod bayer;
pub mod degradations;
mod isp;
mod params;
mod profiles;

pub use bayer::*;
pub use isp::*;
pub use params::*;
pub use profiles::*;

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
