//! The U-Net's building blocks: residual blocks conditioned on the step, and
//! the resolution changes between levels.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::silu;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{backend::Backend, Tensor};

use super::norm::PixelGroupNorm;
use super::plan::conv_parameters;

pub(crate) fn conv3x3<B: Backend>(cin: usize, cout: usize, stride: usize, device: &B::Device) -> Conv2d<B> {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

/// `norm -> SiLU -> conv -> + step embedding -> norm -> SiLU -> conv`, plus a
/// (projected) identity path.
#[derive(Module, Debug)]
pub struct ResidualBlock<B: Backend> {
    norm_in: PixelGroupNorm<B>,
    conv_in: Conv2d<B>,
    time_projection: Linear<B>,
    norm_out: PixelGroupNorm<B>,
    conv_out: Conv2d<B>,
    skip_projection: Option<Conv2d<B>>,
}

impl<B: Backend> ResidualBlock<B> {
    pub fn new(cin: usize, cout: usize, time_channels: usize, groups: usize, device: &B::Device) -> Self {
        let skip_projection =
            (cin != cout).then(|| Conv2dConfig::new([cin, cout], [1, 1]).init(device));
        Self {
            norm_in: PixelGroupNorm::new(cin, groups, device),
            conv_in: conv3x3(cin, cout, 1, device),
            time_projection: LinearConfig::new(time_channels, cout).init(device),
            norm_out: PixelGroupNorm::new(cout, groups, device),
            conv_out: conv3x3(cout, cout, 1, device),
            skip_projection,
        }
    }

    /// `x`: `[batch, cin, h, w]`; `time`: `[batch, time_channels]` (already activated).
    pub fn forward(&self, x: Tensor<B, 4>, time: Tensor<B, 2>) -> Tensor<B, 4> {
        let h = self.conv_in.forward(silu(self.norm_in.forward(x.clone())));
        let [batch, channels] = [h.dims()[0], h.dims()[1]];
        let step = self.time_projection.forward(time).reshape([batch, channels, 1, 1]);
        let h = self.conv_out.forward(silu(self.norm_out.forward(h.add(step))));
        let identity = match &self.skip_projection {
            Some(projection) => projection.forward(x),
            None => x,
        };
        h.add(identity)
    }
}

/// The convolutions [`ResidualBlock::new`] builds, as `(input, output,
/// kernel)`: what the cost model counts for a block (`tests/library/model.rs`
/// checks both against the built network).
pub(crate) fn residual_block_convolutions(cin: usize, cout: usize) -> impl Iterator<Item = (usize, usize, usize)> {
    let projection = (cin != cout).then_some((cin, cout, 1));
    [(cin, cout, 3), (cout, cout, 3)].into_iter().chain(projection)
}

/// The parameters [`ResidualBlock::new`] builds: its convolutions, two
/// normalisations and the step projection.
pub(crate) fn residual_block_parameters(cin: usize, cout: usize, time_channels: usize) -> usize {
    let convolutions: usize =
        residual_block_convolutions(cin, cout).map(|(input, output, kernel)| conv_parameters(input, output, kernel)).sum();
    convolutions + 2 * cin + 2 * cout + time_channels * cout + cout
}

/// Halves the resolution with a strided convolution.
#[derive(Module, Debug)]
pub struct Downsample<B: Backend> {
    conv: Conv2d<B>,
}

impl<B: Backend> Downsample<B> {
    pub fn new(channels: usize, device: &B::Device) -> Self {
        Self { conv: conv3x3(channels, channels, 2, device) }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.conv.forward(x)
    }
}

/// Doubles the resolution: nearest-neighbour upsampling then a convolution
/// (no transposed convolution, which leaves checkerboard artefacts).
#[derive(Module, Debug)]
pub struct Upsample<B: Backend> {
    conv: Conv2d<B>,
}

impl<B: Backend> Upsample<B> {
    pub fn new(channels: usize, device: &B::Device) -> Self {
        Self { conv: conv3x3(channels, channels, 1, device) }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [_, _, height, width] = x.dims();
        let upsampled = interpolate(
            x,
            [height * 2, width * 2],
            InterpolateOptions::new(InterpolateMode::Nearest),
        );
        self.conv.forward(upsampled)
    }
}
