//! The denoising network: a convolutional U-Net conditioned on the diffusion
//! step, generic over any burn backend.

mod blocks;
mod config;
mod embedding;
mod norm;
mod plan;
mod unet;

pub use config::{limits, ConfigError, UNetConfig};
pub use norm::PixelGroupNorm;
pub use plan::Convolution;
pub use unet::{pixel_shuffle, pixel_unshuffle, UNet};
