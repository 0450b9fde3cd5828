//! The reverse-process interface shared by both samplers.

use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

use super::{ImprovedSampler, OriginSampler};

/// Anything that estimates the clean image from `x_t` at step `t`: the U-Net,
/// or a stand-in (an oracle, the identity) in tests.
pub trait Predictor<B: Backend> {
    /// `x_t`: `[batch, 3, h, w]`. Returns `x0_hat` of the same shape.
    fn predict(&self, x_t: Tensor<B, 4>, t: usize) -> Tensor<B, 4>;
}

/// One reverse step `t -> t_prev`, in the convention of diffusers' and
/// candle's schedulers: the caller evaluates the network (once, or several
/// times and averages, as [`crate::ensemble`] does) and owns the loop, so it
/// can preview `x0_hat`, report progress or stop between steps. The one
/// loop, which images, training's validation and the tests share, is in
/// [`crate::denoiser`].
pub trait Sampler<B: Backend> {
    /// Takes the model output `x0_hat` (the estimate of the clean image made
    /// at `x_t`) and returns `(x_{t_prev}, x0_hat)`, as diffusers'
    /// `scheduler.step(model_output, t, sample)` returns `prev_sample` and
    /// `pred_original_sample` (here the network predicts `x0` directly, so
    /// the second is its output unchanged). `y` is the noisy input (`x_T`).
    fn step(
        &self,
        x0_hat: Tensor<B, 4>,
        x_t: Tensor<B, 4>,
        y: &Tensor<B, 4>,
        t: usize,
        t_prev: usize,
        timesteps: usize,
    ) -> (Tensor<B, 4>, Tensor<B, 4>);
}

/// The two samplers of the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SamplerKind {
    /// Cold Diffusion Algorithm 1: re-blend the estimate with `y` at `t_prev`.
    Origin,
    /// Cold Diffusion Algorithm 2: move `x_t` by the change of the blend;
    /// averages the predictions and is more robust to their errors.
    #[default]
    Improved,
}

impl SamplerKind {
    /// Every sampler, the default first.
    pub const ALL: [SamplerKind; 2] = [SamplerKind::Improved, SamplerKind::Origin];

    pub fn sampler<B: Backend>(self) -> Box<dyn Sampler<B>> {
        match self {
            SamplerKind::Origin => Box::new(OriginSampler),
            SamplerKind::Improved => Box::new(ImprovedSampler),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SamplerKind::Origin => "origin",
            SamplerKind::Improved => "improved",
        }
    }
}

impl std::str::FromStr for SamplerKind {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "origin" => Ok(Self::Origin),
            "improved" => Ok(Self::Improved),
            other => Err(format!("unknown sampler '{other}' (expected 'improved' or 'origin')")),
        }
    }
}

impl std::fmt::Display for SamplerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
