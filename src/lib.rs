//! realdenoise: real-world photo denoising with the linear-interpolation
//! diffusion model of "Real-World Denoising via Diffusion Model"
//! (Yang, Liang, Su, arXiv:2305.04457), on burn.
//!
//! - [`model`]: the U-Net `S(x_t, t) -> x0_hat`, generic over any backend.
//! - [`diffusion`]: the forward blend `D(x0, y, t)` and the origin and
//!   improved samplers behind one [`diffusion::Sampler::step`], which takes
//!   the network's output and returns `(x_prev, x0_hat)`.
//! - [`ensemble`]: averaging predictions over flipped and transposed
//!   copies of the input.
//! - [`tiling`]: overlapping, feathered tiles for images of any size.
//! - [`weights`]: the `.rdnz` weights file.
//! - [`denoiser`]: the pipeline that ties them together, and the one
//!   sampling loop (every tile of an image; `denoiser::sample` for a batch).
//! - [`device`]: where a backend is chosen: `auto`'s policy, software
//!   adapters, memory budgets and limits, for every binary and the browser.
//! - [`checkout`] (native only): paths inside the repository, for the
//!   workspace's binaries.
//! - [`host`] (native only): what machine a binary runs on, for its records.
//! - `web` (wasm32 only): the JavaScript API.

#[cfg(not(target_arch = "wasm32"))]
pub mod checkout;
pub mod denoiser;
pub mod device;
pub mod diffusion;
pub mod ensemble;
#[cfg(not(target_arch = "wasm32"))]
pub mod host;
pub mod model;
pub mod tiling;
pub mod weights;

#[cfg(target_arch = "wasm32")]
pub mod web;

pub use denoiser::{DenoiseError, DenoiseOptions, Denoiser, Progress};
pub use diffusion::{SamplerKind, Schedule};
pub use ensemble::Ensemble;
pub use model::{UNet, UNetConfig};
pub use weights::{TrainingMetadata, WeightsError};

// README.md's Rust example compiles as a doctest, so the API the README
// shows is the one the crate has.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
