//! Group normalisation with per-pixel statistics.
//!
//! Classic GroupNorm averages over the whole spatial extent, so a tile of an
//! image would be normalised differently from the full image and tiled
//! inference would show seams and colour shifts. Here the statistics of each
//! channel group are taken at every pixel separately (as NAFNet's channel
//! LayerNorm does), which makes the network translation-equivariant and its
//! output independent of the tile size.

use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{backend::Backend, Tensor};

const EPSILON: f64 = 1e-5;

/// Per-pixel group normalisation with a learned scale and shift per channel.
#[derive(Module, Debug)]
pub struct PixelGroupNorm<B: Backend> {
    pub gamma: Param<Tensor<B, 1>>,
    pub beta: Param<Tensor<B, 1>>,
    groups: usize,
}

impl<B: Backend> PixelGroupNorm<B> {
    pub fn new(channels: usize, groups: usize, device: &B::Device) -> Self {
        Self {
            gamma: Initializer::Ones.init([channels], device),
            beta: Initializer::Zeros.init([channels], device),
            groups,
        }
    }

    /// `x`: `[batch, channels, height, width]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [batch, channels, height, width] = x.dims();
        let grouped = x.reshape([batch, self.groups, channels / self.groups, height, width]);
        let (variance, mean) = grouped.clone().var_mean_bias(2);
        let normalised = grouped
            .sub(mean)
            .div(variance.add_scalar(EPSILON).sqrt())
            .reshape([batch, channels, height, width]);
        let gamma = self.gamma.val().reshape([1, channels, 1, 1]);
        let beta = self.beta.val().reshape([1, channels, 1, 1]);
        normalised.mul(gamma).add(beta)
    }
}
