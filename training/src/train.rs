//! The training loop: `t ~ U{1..T}`, `x_t = D(x0, y, t)`, Charbonnier loss,
//! AdamW with warm-up and cosine decay, gradient clipping, EMA of the weights.
//! A run lives in one directory and can stop and resume anywhere (another
//! machine, another backend): see [`crate::checkpoint`].

use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::grad_clipping::GradientClippingConfig;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};
use image::{Rgb32FImage, RgbImage};
use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;
use realdenoise::diffusion::{blend_batch, sample, SamplerKind, Schedule};
use realdenoise::{UNet, UNetConfig};
use serde::{Deserialize, Serialize};

use crate::batch::{centre_crop, draw_batch, stream, to_tensor, usable_photos, Degradation, PairBatch};
use crate::checkpoint::{self, BestScore, Checkpoint, Lineage, RunState};
use crate::curves::{self, LogRow};
use crate::metrics::psnr;

/// The file in a run directory that holds its [`TrainConfig`].
pub const CONFIG_FILE: &str = "config.json";

/// Hyper-parameters of one run; stored in the run directory and fixed for
/// its whole life (a resumed run reads them back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub model: UNetConfig,
    /// Total optimiser steps of the run.
    pub iterations: u64,
    pub batch_size: usize,
    /// Side of the square training crops (a multiple of the model's size multiple).
    pub patch_size: u32,
    pub learning_rate: f64,
    /// Learning rate at the end of the cosine decay.
    pub final_learning_rate: f64,
    pub warmup_iterations: u64,
    pub weight_decay: f32,
    /// Global L2 norm the gradients are clipped to.
    pub gradient_clip_norm: f32,
    pub ema_decay: f32,
    pub seed: u64,
    /// Validate (and redraw the curves) every this many steps.
    pub validate_every: u64,
    /// Save a checkpoint every this many steps (and when time runs out).
    pub checkpoint_every: u64,
    /// Validation crops: side and at most how many photos.
    pub validation_patch: u32,
    pub validation_photos: usize,
    /// Sampling steps used for the validation score (the shipped default).
    pub validation_steps: usize,
    /// A run whose newest EMA weights initialise this one (same model
    /// configuration; its optimiser state and schedule are not taken over).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
    /// The range darktable's calibrated noise is scaled by, log-uniformly
    /// ([`crate::noise::NoiseModel::level_scale`]). Runs before runs/heavy
    /// used (1, 4), which keeps most of that half of the crops below the
    /// "low" evaluation level.
    #[serde(default = "default_darktable_scale")]
    pub darktable_scale: (f32, f32),
}

fn default_darktable_scale() -> (f32, f32) {
    crate::noise::NoiseModel::default().level_scale
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            model: UNetConfig::new(),
            iterations: 20_000,
            batch_size: 16,
            patch_size: 96,
            learning_rate: 5e-4,
            final_learning_rate: 1e-5,
            warmup_iterations: 200,
            weight_decay: 1e-4,
            gradient_clip_norm: 1.0,
            ema_decay: 0.999,
            seed: 1,
            validate_every: 250,
            checkpoint_every: 250,
            validation_patch: 128,
            validation_photos: 8,
            validation_steps: 4,
            init_from: None,
            darktable_scale: default_darktable_scale(),
        }
    }
}

impl TrainConfig {
    /// The configuration stored in a run directory ([`CONFIG_FILE`]).
    pub fn read(run_dir: &Path) -> Result<Self, TrainError> {
        let path = run_dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| TrainError::ConfigFile { reason: format!("cannot read {}: {e}", path.display()) })?;
        serde_json::from_str(&text).map_err(|e| TrainError::ConfigFile { reason: format!("{} is not a training configuration: {e}", path.display()) })
    }

    /// Learning rate at `step` (0-based): linear warm-up, then cosine decay
    /// to `final_learning_rate` at `iterations`.
    pub fn learning_rate_at(&self, step: u64) -> f64 {
        if step < self.warmup_iterations {
            return self.learning_rate * (step + 1) as f64 / self.warmup_iterations as f64;
        }
        let span = self.iterations.saturating_sub(self.warmup_iterations).max(1);
        let progress = ((step - self.warmup_iterations) as f64 / span as f64).min(1.0);
        let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.final_learning_rate + (self.learning_rate - self.final_learning_rate) * cosine
    }

    /// Checks every field, so that a bad setting is refused before a run
    /// directory or its `config.json` is written, not steps into the run.
    pub fn validate(&self) -> Result<(), TrainError> {
        let refuse = |message: String| Err(TrainError::Config(message));
        self.model.validate().map_err(|e| TrainError::Config(e.to_string()))?;
        let multiple = self.model.size_multiple() as u32;
        for (name, side) in [("patch size", self.patch_size), ("validation patch", self.validation_patch)] {
            if side == 0 || !side.is_multiple_of(multiple) || side > MAX_PATCH {
                return refuse(format!("{name} {side} must be a positive multiple of {multiple}, at most {MAX_PATCH}"));
            }
        }
        for (name, value) in [
            ("iterations", self.iterations),
            ("validate every", self.validate_every),
            ("checkpoint every", self.checkpoint_every),
            ("batch size", self.batch_size as u64),
            ("validation photos", self.validation_photos as u64),
        ] {
            if value == 0 {
                return refuse(format!("{name} must be at least 1"));
            }
        }
        if self.batch_size > MAX_BATCH {
            return refuse(format!("batch size {} is above {MAX_BATCH}", self.batch_size));
        }
        if self.validation_steps == 0 || self.validation_steps > self.model.timesteps {
            return refuse(format!("validation steps {} must lie in 1..={} (T)", self.validation_steps, self.model.timesteps));
        }
        // Zero is allowed: it freezes the weights (a test checks --init-from that way).
        if !(self.learning_rate.is_finite() && self.learning_rate >= 0.0) {
            return refuse(format!("learning rate {} must be a non-negative number", self.learning_rate));
        }
        if !(self.final_learning_rate.is_finite() && (0.0..=self.learning_rate).contains(&self.final_learning_rate)) {
            return refuse(format!("final learning rate {} must lie in [0, {}]", self.final_learning_rate, self.learning_rate));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return refuse(format!("weight decay {} must be a non-negative number", self.weight_decay));
        }
        if !(self.gradient_clip_norm.is_finite() && self.gradient_clip_norm > 0.0) {
            return refuse(format!("gradient clip norm {} must be a positive number", self.gradient_clip_norm));
        }
        // The noise model owns the rule for its ranges.
        let (low, high) = self.darktable_scale;
        crate::noise::NoiseModel { level_scale: self.darktable_scale, ..Default::default() }
            .validate()
            .map_err(|e| TrainError::Config(format!("darktable scale {low},{high}: {e}")))?;
        if !(0.0..1.0).contains(&self.ema_decay) {
            return refuse(format!("EMA decay {} must lie in [0, 1)", self.ema_decay));
        }
        Ok(())
    }
}

/// Largest training or validation crop side.
const MAX_PATCH: u32 = 4096;
/// Largest batch.
const MAX_BATCH: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("invalid training configuration: {0}")]
    Config(String),
    #[error("{reason}")]
    ConfigFile { reason: String },
    #[error("no training photo is at least {0} x {0} pixels")]
    NoUsablePhotos(u32),
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
    #[error("cannot write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the loss became {0} at step {1}; lower the learning rate")]
    Diverged(f32, u64),
    #[error("cannot start from {path}: {reason}")]
    Parent { path: PathBuf, reason: String },
}

/// What one call of [`train`] did.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub first_step: u64,
    pub last_step: u64,
    pub seconds: f64,
    /// `None` when the call took no step (the run was already finished).
    pub mean_loss: Option<LossTrend>,
    pub last_validation_psnr: Option<f64>,
    /// The run's best validation score so far (its weights are in `best/`).
    pub best: Option<BestScore>,
    /// Seconds the model sat idle waiting for the batch thread after the
    /// first batch (which nothing can overlap). Near zero when the data
    /// pipeline keeps up; on a fast GPU, the share of the time it starves.
    pub data_wait_seconds: f64,
}

/// Mean training loss over the first and the last fifth of one call's steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossTrend {
    pub first: f32,
    pub last: f32,
}

impl LossTrend {
    /// `None` for no losses: a mean of nothing is not a number to print.
    fn of(losses: &[f32]) -> Option<Self> {
        if losses.is_empty() {
            return None;
        }
        let window = (losses.len() / 5).max(1);
        let mean = |xs: &[f32]| xs.iter().sum::<f32>() / xs.len() as f32;
        Some(Self { first: mean(&losses[..window]), last: mean(&losses[losses.len() - window..]) })
    }
}

/// When to stop this call, besides reaching `iterations`.
#[derive(Debug, Clone, Copy, Default)]
pub struct StopAfter {
    pub minutes: Option<f64>,
    /// Steps to take in this call at most.
    pub steps: Option<u64>,
}

/// Fixed validation crops: clean and noisy tensors' source images.
pub struct ValidationSet {
    pub clean: Vec<Rgb32FImage>,
    pub noisy: Vec<Rgb32FImage>,
}

impl ValidationSet {
    /// Centre crops of the validation photos with seeded noise.
    pub fn new(photos: &[RgbImage], patch: u32, count: usize, degradation: &dyn Degradation, seed: u64) -> Self {
        let clean: Vec<Rgb32FImage> = photos
            .iter()
            .filter(|p| p.width() >= patch && p.height() >= patch)
            .take(count)
            .map(|p| image::DynamicImage::ImageRgb8(centre_crop(p, patch)).to_rgb32f())
            .collect();
        let noisy = degradation.degrade(&clean, seed);
        Self { clean, noisy }
    }

    /// Mean PSNR (dB) of `steps`-step improved sampling over the set.
    pub fn score<B: Backend>(&self, model: &UNet<B>, steps: usize, device: &B::Device) -> f64 {
        if self.clean.is_empty() {
            return f64::NAN;
        }
        let y = to_tensor::<B>(&self.noisy, device);
        let Ok(schedule) = Schedule::new(model.timesteps(), steps, 1.0) else {
            return f64::NAN;
        };
        let sampler = SamplerKind::Improved.sampler::<B>();
        let out = sample(model, sampler.as_ref(), &schedule, y);
        let images = crate::batch::from_tensor(out);
        let total: f64 = images.iter().zip(&self.clean).map(|(a, b)| psnr(a, b)).sum();
        total / images.len() as f64
    }
}

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

/// The configuration of the run in `parent`, if a run with `config` can
/// start from it: it has a checkpoint and the same model configuration.
pub fn check_parent(parent: &Path, config: &TrainConfig) -> Result<TrainConfig, TrainError> {
    let fail = |reason: String| TrainError::Parent { path: parent.to_path_buf(), reason };
    let parent_config = TrainConfig::read(parent).map_err(|e| fail(e.to_string()))?;
    if parent_config.model != config.model {
        return Err(fail(format!("its model configuration {:?} differs from this run's {:?}", parent_config.model, config.model)));
    }
    if checkpoint::find(parent).is_none() {
        return Err(fail("it has no checkpoint".into()));
    }
    Ok(parent_config)
}

/// The newest EMA weights of the run in `parent`, loaded into `fresh`, and
/// the parent's history. The parent must have the same model configuration.
fn start_from_parent<B: AutodiffBackend>(
    parent: &Path,
    config: &TrainConfig,
    fresh: UNet<B>,
    device: &B::Device,
) -> Result<(UNet<B>, Lineage), TrainError> {
    let parent_config = check_parent(parent, config)?;
    let (model, state) = checkpoint::load_average::<B>(parent, fresh, device)?;
    let lineage = Lineage {
        run: parent.display().to_string(),
        batch_size: parent_config.batch_size,
        patch_size: parent_config.patch_size,
        state: Box::new(state),
    };
    Ok((model, lineage))
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
    let average = crate::ema::update::<B, UNet<B>>(average, &model, ema_decay);
    (model, average, loss_value)
}

/// Trains (or resumes) the run in `run_dir` until `config.iterations` or
/// `stop`, checkpointing on the way and at the end.
#[allow(clippy::too_many_arguments)]
pub fn train<B: AutodiffBackend>(
    run_dir: &Path,
    config: &TrainConfig,
    photos: &[RgbImage],
    validation: &ValidationSet,
    degradation: &dyn Degradation,
    backend_name: &str,
    device: &B::Device,
    stop: StopAfter,
) -> Result<TrainSummary, TrainError> {
    config.validate()?;
    let usable = usable_photos(photos, config.patch_size);
    if usable.is_empty() {
        return Err(TrainError::NoUsablePhotos(config.patch_size));
    }
    std::fs::create_dir_all(run_dir).map_err(|source| TrainError::Io { path: run_dir.into(), source })?;

    let mut optimizer = optimizer_for::<B>(config);

    B::seed(device, config.seed);
    let fresh = config.model.init::<B>(device).map_err(|e| TrainError::Config(e.to_string()))?;
    let (mut model, mut average, mut state) = match checkpoint::load::<B, _>(run_dir, fresh.clone(), &mut optimizer, device)? {
        Some(Checkpoint { model, average, state }) => (model, average, state),
        None => {
            let (model, lineage) = match &config.init_from {
                Some(parent) => {
                    let (model, lineage) = start_from_parent::<B>(parent, config, fresh, device)?;
                    (model, Some(lineage))
                }
                None => (fresh, None),
            };
            let average = model.valid();
            (model, average, RunState { initialised_from: lineage, ..RunState::new(config.seed) })
        }
    };
    let mut best = checkpoint::read_best(run_dir)?;
    let mut log = curves::Log::open(run_dir, state.step).map_err(|source| TrainError::Io { path: run_dir.join(curves::LOG_FILE), source })?;

    let first_step = state.step;
    let end = match stop.steps {
        Some(n) => (first_step + n).min(config.iterations),
        None => config.iterations,
    };
    let started = Instant::now();
    let deadline = stop.minutes.map(|m| m * 60.0);
    let timesteps = config.model.timesteps;
    let bar = ProgressBar::new(config.iterations).with_position(first_step);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {per_sec}  eta {eta}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    let mut losses = Vec::new();
    let mut last_psnr = None;
    let mut segment_start = Instant::now();
    let mut segment_first = first_step;
    let mut data_wait_seconds = 0.0;

    // Batches are drawn (crop, augment, synthesise noise) on a second thread
    // while the model trains on the previous one.
    let outcome = std::thread::scope(|scope| -> Result<(), TrainError> {
        let (sender, receiver) = sync_channel::<(Vec<Rgb32FImage>, Vec<Rgb32FImage>)>(2);
        let usable = &usable;
        scope.spawn(move || {
            for step in first_step..end {
                let batch = draw_batch(photos, usable, config.batch_size, config.patch_size, degradation, config.seed, step);
                if sender.send(batch).is_err() {
                    break;
                }
            }
        });

        while state.step < end {
            let waiting = Instant::now();
            let Ok((clean, noisy)) = receiver.recv() else { break };
            let step = state.step;
            if step > first_step {
                data_wait_seconds += waiting.elapsed().as_secs_f64();
            }
            let batch = PairBatch { clean: to_tensor::<B>(&clean, device), noisy: to_tensor::<B>(&noisy, device) };
            let mut rng = stream(config.seed, step, 2);
            let lr = config.learning_rate_at(step);
            let decay = crate::ema::decay_at(config.ema_decay, step);
            let loss_value;
            (model, average, loss_value) = optimisation_step(model, average, &mut optimizer, &batch, &mut rng, timesteps, lr, decay);
            if !loss_value.is_finite() {
                return Err(TrainError::Diverged(loss_value, step));
            }
            state.step += 1;
            losses.push(loss_value);
            bar.set_position(state.step);
            bar.set_message(format!("loss {loss_value:.4}  lr {lr:.2e}"));

            let validate_now = state.step % config.validate_every == 0 || state.step == config.iterations;
            let psnr_now = if validate_now {
                let score = validation.score(&average, config.validation_steps, device);
                let one_step = validation.score(&average, 1, device);
                last_psnr = Some(score);
                if score.is_finite() && best.is_none_or(|b| score > b.validation_psnr) {
                    let score = BestScore { step: state.step, validation_psnr: score };
                    let mut snapshot = state.clone();
                    snapshot.close_segment(backend_name, segment_first, segment_start.elapsed().as_secs_f64());
                    checkpoint::save_best(run_dir, &average, &snapshot, score)?;
                    best = Some(score);
                }
                bar.println(format!("step {}: validation PSNR {score:.2} dB ({} steps), {one_step:.2} dB (1 step)", state.step, config.validation_steps));
                Some((score, one_step))
            } else {
                None
            };
            let elapsed = state.elapsed_seconds + segment_start.elapsed().as_secs_f64();
            log.push(LogRow { step: state.step, learning_rate: lr, loss: loss_value, seconds: elapsed, validation: psnr_now })
                .map_err(|source| TrainError::Io { path: run_dir.join(curves::LOG_FILE), source })?;
            if validate_now {
                log.draw(run_dir);
            }

            let out_of_time = deadline.is_some_and(|d| started.elapsed().as_secs_f64() >= d);
            if state.step % config.checkpoint_every == 0 || state.step == end || out_of_time {
                state.close_segment(backend_name, segment_first, segment_start.elapsed().as_secs_f64());
                checkpoint::save(run_dir, &model, &average, &optimizer, &state)?;
                segment_start = Instant::now();
                segment_first = state.step;
            }
            if out_of_time {
                bar.println(format!("time limit reached at step {}; checkpoint saved, resume with the same command", state.step));
                break;
            }
        }
        drop(receiver);
        Ok(())
    });
    bar.finish_and_clear();
    outcome?;
    log.draw(run_dir);

    Ok(TrainSummary {
        first_step,
        last_step: state.step,
        seconds: started.elapsed().as_secs_f64(),
        mean_loss: LossTrend::of(&losses),
        last_validation_psnr: last_psnr,
        best,
        data_wait_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_trend_averages_the_first_and_last_fifth_and_is_none_without_steps() {
        assert_eq!(LossTrend::of(&[]), None);
        let losses: Vec<f32> = (1..=10).map(|i| i as f32).collect();
        assert_eq!(LossTrend::of(&losses), Some(LossTrend { first: 1.5, last: 9.5 }));
        assert_eq!(LossTrend::of(&[4.0]), Some(LossTrend { first: 4.0, last: 4.0 }));
    }

    #[test]
    fn configs_from_before_the_darktable_scale_read_as_its_old_value_and_bad_ranges_are_refused() {
        let mut json = serde_json::to_value(TrainConfig::default()).expect("serialises");
        json.as_object_mut().expect("an object").remove("darktable_scale");
        let old: TrainConfig = serde_json::from_value(json).expect("reads without the field");
        assert_eq!(old.darktable_scale, (1.0, 4.0));
        for bad in [(4.0, 1.0), (0.0, 2.0), (1.0, f32::INFINITY)] {
            let config = TrainConfig { darktable_scale: bad, ..TrainConfig::default() };
            assert!(matches!(config.validate(), Err(TrainError::Config(_))), "{bad:?}");
        }
        assert!(TrainConfig { darktable_scale: (1.0, 16.0), ..TrainConfig::default() }.validate().is_ok());
    }

    #[test]
    fn every_field_is_validated() {
        let base = TrainConfig::default();
        assert!(base.validate().is_ok());
        let bad: Vec<(&str, TrainConfig)> = vec![
            ("validate every", TrainConfig { validate_every: 0, ..base.clone() }),
            ("checkpoint every", TrainConfig { checkpoint_every: 0, ..base.clone() }),
            ("iterations", TrainConfig { iterations: 0, ..base.clone() }),
            ("batch size", TrainConfig { batch_size: 0, ..base.clone() }),
            ("batch size", TrainConfig { batch_size: 1 << 20, ..base.clone() }),
            ("patch size", TrainConfig { patch_size: 90, ..base.clone() }),
            ("patch size", TrainConfig { patch_size: 1 << 20, ..base.clone() }),
            ("validation patch", TrainConfig { validation_patch: 0, ..base.clone() }),
            ("validation photos", TrainConfig { validation_photos: 0, ..base.clone() }),
            ("validation steps", TrainConfig { validation_steps: 0, ..base.clone() }),
            ("validation steps", TrainConfig { validation_steps: 101, ..base.clone() }),
            ("learning rate", TrainConfig { learning_rate: f64::NAN, ..base.clone() }),
            ("learning rate", TrainConfig { learning_rate: -1e-4, ..base.clone() }),
            ("final learning rate", TrainConfig { final_learning_rate: 1.0, ..base.clone() }),
            ("final learning rate", TrainConfig { final_learning_rate: -1e-5, ..base.clone() }),
            ("weight decay", TrainConfig { weight_decay: -1.0, ..base.clone() }),
            ("gradient clip norm", TrainConfig { gradient_clip_norm: 0.0, ..base.clone() }),
            ("gradient clip norm", TrainConfig { gradient_clip_norm: f32::INFINITY, ..base.clone() }),
            ("EMA decay", TrainConfig { ema_decay: 1.0, ..base.clone() }),
            ("channels", TrainConfig { model: UNetConfig::new().with_base_channels(1 << 20), ..base.clone() }),
        ];
        for (name, config) in bad {
            match config.validate() {
                Err(TrainError::Config(message)) => assert!(message.contains(name), "{name}: {message}"),
                other => panic!("{name}: expected a refusal, got {other:?}"),
            }
        }
    }

    #[test]
    fn learning_rate_warms_up_then_decays_to_the_floor() {
        let config = TrainConfig { iterations: 1000, warmup_iterations: 100, learning_rate: 1e-3, final_learning_rate: 1e-5, ..TrainConfig::default() };
        assert!((config.learning_rate_at(0) - 1e-5).abs() < 1e-12);
        assert!((config.learning_rate_at(99) - 1e-3).abs() < 1e-12);
        assert!((config.learning_rate_at(100) - 1e-3).abs() < 1e-12);
        let mid = config.learning_rate_at(550);
        assert!((mid - (1e-5 + (1e-3 - 1e-5) * 0.5)).abs() < 1e-9, "{mid}");
        assert!((config.learning_rate_at(1000) - 1e-5).abs() < 1e-12);
        assert!(config.learning_rate_at(700) < config.learning_rate_at(600));
    }
}
