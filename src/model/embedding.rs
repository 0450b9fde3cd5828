//! Sinusoidal embedding of the diffusion step followed by a small MLP.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{activation::silu, backend::Backend, Tensor, TensorData};

/// The embedding treats `t` on a fixed 0..1000 scale whatever `T` is, so the
/// sinusoid frequencies cover the same range for every trained `T`.
const TIME_SCALE: f32 = 1000.0;
const MAX_PERIOD: f32 = 10_000.0;

/// The parameters [`TimestepEmbedding::new`] builds: two linear layers.
pub(crate) fn timestep_embedding_parameters(sinusoid_channels: usize, channels: usize) -> usize {
    sinusoid_channels * channels + channels + channels * channels + channels
}

#[derive(Module, Debug)]
pub struct TimestepEmbedding<B: Backend> {
    hidden: Linear<B>,
    output: Linear<B>,
    sinusoid_channels: usize,
    timesteps: usize,
}

impl<B: Backend> TimestepEmbedding<B> {
    pub fn new(sinusoid_channels: usize, channels: usize, timesteps: usize, device: &B::Device) -> Self {
        Self {
            hidden: LinearConfig::new(sinusoid_channels, channels).init(device),
            output: LinearConfig::new(channels, channels).init(device),
            sinusoid_channels,
            timesteps,
        }
    }

    /// `t`: `[batch]` diffusion steps (0..=T, may be fractional). Returns `[batch, channels]`.
    pub fn forward(&self, t: Tensor<B, 1>) -> Tensor<B, 2> {
        let half = self.sinusoid_channels / 2;
        let frequencies: Vec<f32> = (0..half)
            .map(|i| (-(MAX_PERIOD.ln()) * i as f32 / half as f32).exp())
            .collect();
        let frequencies = Tensor::<B, 1>::from_data(TensorData::new(frequencies, [half]), &t.device());
        let scaled = t.mul_scalar(TIME_SCALE / self.timesteps as f32);
        let angles = scaled.unsqueeze_dim::<2>(1).mul(frequencies.unsqueeze_dim::<2>(0));
        let sinusoid = Tensor::cat(vec![angles.clone().sin(), angles.cos()], 1);
        self.output.forward(silu(self.hidden.forward(sinusoid)))
    }
}
