//! One optimisation step: the loss at a random `t` (Charbonnier on
//! `x_t = D(x0, y, t)`), backward, AdamW with clipping, and the EMA of the
//! weights. The training loop and `bench-step` both run exactly this.

use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};
use rand::Rng;
use realdenoise::diffusion::blend_batch;
use realdenoise::UNet;

use super::batch::PairBatch;
use super::config::TrainConfig;


/// Charbonnier loss `mean(sqrt((a - b)^2 + eps^2))` with eps = 1e-3.
pub fn charbonnier<B: Backend>(prediction: Tensor<B, 4>, target: Tensor<B, 4>) -> Tensor<B, 1> {
    const EPS: f32 = 1e-3;
    let diff = prediction.sub(target);
    diff.clone().mul(diff).add_scalar(EPS * EPS).sqrt().mean()
}

/// One optimiser step's forward pass: draws `t`, blends, predicts, scores.
pub fn loss_for_batch<B: Backend>(
    model: &UNet<B>,
    batch: &PairBatch<B>,
    timesteps: usize,
    rng: &mut impl Rng,
) -> Tensor<B, 1> {
    let n = batch.clean.dims()[0];
    let device = batch.clean.device();
    let t: Vec<f32> = (0..n).map(|_| rng.random_range(1..=timesteps) as f32).collect();
    let t = Tensor::<B, 1>::from_floats(t.as_slice(), &device);
    let x_t = blend_batch(batch.clean.clone(), batch.noisy.clone(), t.clone(), timesteps);
    charbonnier(model.forward(x_t, t), batch.clean.clone())
}

/// The optimiser AdamW with the run's weight decay and gradient clipping.
pub fn optimizer_for<B: AutodiffBackend>(config: &TrainConfig) -> impl Optimizer<UNet<B>, B> {
    AdamWConfig::new()
        .with_weight_decay(config.weight_decay)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(config.gradient_clip_norm)))
        .init::<B, UNet<B>>()
}

/// One training step on one batch: the loss at a random `t` per crop,
/// backward, the optimiser's update at `learning_rate`, and the EMA of the
/// weights. Returns the new model and average, and the loss (not finite when
/// training diverged; the caller decides). The training loop and
/// `bench-step` both run exactly this.
#[allow(clippy::too_many_arguments)]
pub fn optimisation_step<B: AutodiffBackend, O: Optimizer<UNet<B>, B>>(
    model: UNet<B>,
    average: UNet<B::InnerBackend>,
    optimizer: &mut O,
    batch: &PairBatch<B>,
    rng: &mut impl Rng,
    timesteps: usize,
    learning_rate: f64,
    ema_decay: f32,
) -> (UNet<B>, UNet<B::InnerBackend>, f32) {
    let loss = loss_for_batch(&model, batch, timesteps, rng);
    let loss_value: f32 = loss.clone().into_scalar().elem();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let model = optimizer.step(learning_rate, model, grads);
    let average = super::ema::update::<B, UNet<B>>(average, &model, ema_decay);
    (model, average, loss_value)
}
