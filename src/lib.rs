//! realdenoise: real-world photo denoising with the linear-interpolation
//! diffusion model of "Real-World Denoising via Diffusion Model"
//! (Yang, Liang, Su, arXiv:2305.04457), on burn.
//!
//! - [`model`]: the U-Net `S(x_t, t) -> x0_hat`, generic over any backend.
//! - [`diffusion`]: the forward blend `D(x0, y, t)` and the origin and
//!   improved samplers behind one [`diffusion::Sampler::step`].
//! - [`ensemble`]: averaging predictions over flipped and transposed
//!   copies of the input.
//! - [`tiling`]: overlapping, feathered tiles for images of any size.
//! - [`weights`]: the `.rdnz` weights file.
//! - [`denoiser`]: the pipeline that ties them together.
//! - [`checkout`] (native only): paths inside the repository, for the
//!   workspace's binaries.
//! - `web` (wasm32 only): the JavaScript API.

#[cfg(not(target_arch = "wasm32"))]
pub mod checkout;
pub mod denoiser;
pub mod diffusion;
pub mod ensemble;
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
