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

use crate::batch::{draw_batch, stream, to_tensor, usable_photos, Degradation, PairBatch};
use crate::degradations::{FixedLevel, LevelsInTurn, NoiseVariant};
use crate::noise::NoiseLevel;
use crate::checkpoint::{self, BestScore, Checkpoint, Lineage, RunState};
use crate::curves::{self, LogRow, Validation};
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
    /// Learning rate at the end of the decay.
    pub final_learning_rate: f64,
    /// The shape of the learning rate over the run. Runs before 2026-12
    /// used a cosine decay over the whole run.
    #[serde(default)]
    pub schedule: LearningRateSchedule,
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
    /// Crops per validation photo, spread along its long side. Runs before
    /// 2026-12 took one (the centre crop).
    #[serde(default = "one")]
    pub validation_crops_per_photo: usize,
    /// The noise of the validation crops. Runs before 2026-12 used the
    /// middle level on every crop.
    #[serde(default)]
    pub validation_noise: ValidationNoise,
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

/// How the learning rate moves from its peak to `final_learning_rate`,
/// after the linear warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LearningRateSchedule {
    /// Cosine decay over all iterations after the warm-up. Extending the
    /// run re-stretches the curve, which changes the rate of every later step.
    #[default]
    Cosine,
    /// Warmup-stable-decay: the peak rate until the last
    /// [`WSD_DECAY_FRACTION`] of the iterations, then a linear decay to the
    /// final rate. The rate of a step does not depend on the run's length
    /// until the decay starts, so a run trained in chunks across sessions
    /// can be extended without changing what it has done, and only the
    /// final stretch anneals (Hägele et al. 2024, "Scaling Laws and
    /// Compute-Optimal Training Beyond Fixed Training Durations", find a
    /// 20 % linear cool-down matches a cosine decay of the same length).
    #[value(name = "wsd")]
    #[serde(rename = "wsd")]
    WarmupStableDecay,
}

/// Share of the iterations the [`LearningRateSchedule::WarmupStableDecay`]
/// schedule decays over.
pub const WSD_DECAY_FRACTION: f64 = 0.2;

impl LearningRateSchedule {
    /// Lower-case name, as the CLI takes it.
    pub fn name(self) -> &'static str {
        match self {
            LearningRateSchedule::Cosine => "cosine",
            LearningRateSchedule::WarmupStableDecay => "wsd",
        }
    }
}

fn one() -> usize {
    1
}

/// The noise levels of the validation crops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValidationNoise {
    /// The middle level on every crop (runs before 2026-12).
    #[default]
    MidLevel,
    /// The three levels in turn along the crops
    /// ([`crate::degradations::LevelsInTurn`]).
    LevelsInTurn,
}

impl ValidationNoise {
    /// The levels in words, for the model card.
    pub fn describe(self) -> &'static str {
        match self {
            ValidationNoise::MidLevel => "mid noise",
            ValidationNoise::LevelsInTurn => "the three noise levels in turn",
        }
    }
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
            schedule: LearningRateSchedule::WarmupStableDecay,
            warmup_iterations: 200,
            weight_decay: 1e-4,
            gradient_clip_norm: 1.0,
            ema_decay: 0.999,
            seed: 1,
            validate_every: 250,
            checkpoint_every: 250,
            validation_patch: 256,
            validation_photos: 8,
            validation_crops_per_photo: 3,
            validation_noise: ValidationNoise::LevelsInTurn,
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

    /// Learning rate at `step` (0-based): linear warm-up, then the
    /// schedule's way down to `final_learning_rate` at `iterations`.
    pub fn learning_rate_at(&self, step: u64) -> f64 {
        if step < self.warmup_iterations {
            return self.learning_rate * (step + 1) as f64 / self.warmup_iterations as f64;
        }
        let (peak, last) = (self.learning_rate, self.final_learning_rate);
        match self.schedule {
            LearningRateSchedule::Cosine => {
                let span = self.iterations.saturating_sub(self.warmup_iterations).max(1);
                let progress = ((step - self.warmup_iterations) as f64 / span as f64).min(1.0);
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
                last + (peak - last) * cosine
            }
            LearningRateSchedule::WarmupStableDecay => {
                let decay_start = self.decay_start().max(self.warmup_iterations);
                if step < decay_start {
                    return peak;
                }
                let span = self.iterations.saturating_sub(decay_start).max(1);
                let progress = ((step - decay_start) as f64 / span as f64).min(1.0);
                peak + (last - peak) * progress
            }
        }
    }

    /// The first step of the decay phase (the warm-up's end for cosine).
    pub fn decay_start(&self) -> u64 {
        match self.schedule {
            LearningRateSchedule::Cosine => self.warmup_iterations,
            LearningRateSchedule::WarmupStableDecay => self.iterations - (self.iterations as f64 * WSD_DECAY_FRACTION).round() as u64,
        }
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
            ("validation crops per photo", self.validation_crops_per_photo as u64),
        ] {
            if value == 0 {
                return refuse(format!("{name} must be at least 1"));
            }
        }
        if self.validation_crops_per_photo > MAX_VALIDATION_CROPS {
            return refuse(format!("validation crops per photo {} is above {MAX_VALIDATION_CROPS}", self.validation_crops_per_photo));
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
/// Most validation crops per photo.
const MAX_VALIDATION_CROPS: usize = 64;

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
    /// CPU seconds of this process spent in training steps (validation and
    /// checkpoints excluded); `None` where the platform does not report it.
    pub step_cpu_seconds: Option<f64>,
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
    /// CPU minutes of training steps (the process's CPU time spent in them,
    /// validation excluded) this call may use; the run is validated when
    /// they are spent. Equal budgets give proxy runs equal compute even on
    /// a machine that is busy with other work.
    pub cpu_minutes: Option<f64>,
}

/// Fixed validation crops, clean and through each [`NoiseVariant`]: the
/// training variant scores fit (and picks the best weights), the unseen one
/// generalisation to a camera training never simulates.
pub struct ValidationSet {
    pub clean: Vec<Rgb32FImage>,
    /// Noisy crops per variant, [`NoiseVariant::ALL`] order.
    pub noisy: Vec<(NoiseVariant, Vec<Rgb32FImage>)>,
}

/// Crops scored per network evaluation, which bounds validation memory
/// (24 crops of 256 px at once need several GB in the U-Net's widest layer).
const VALIDATION_CHUNK: usize = 8;

impl ValidationSet {
    /// The run's validation: `validation_crops_per_photo` crops of
    /// `validation_patch` px from each of at most `validation_photos`
    /// validation photos (those that hold one), with seeded noise of the
    /// configured levels through both [`NoiseVariant`]s.
    pub fn for_config(photos: &[RgbImage], config: &TrainConfig, seed: u64) -> Self {
        let clean = validation_crops(photos, config.validation_patch, config.validation_photos, config.validation_crops_per_photo);
        let noisy = NoiseVariant::ALL
            .iter()
            .map(|&variant| {
                let images = match config.validation_noise {
                    ValidationNoise::MidLevel => FixedLevel::new(NoiseLevel::Mid).through(variant).degrade(&clean, seed),
                    ValidationNoise::LevelsInTurn => LevelsInTurn { variant }.degrade(&clean, seed),
                };
                (variant, images)
            })
            .collect();
        Self { clean, noisy }
    }

    /// Centre crops of at most `count` photos with `degradation`'s seeded
    /// noise, as the training variant only (the unseen score is then NaN).
    pub fn new(photos: &[RgbImage], patch: u32, count: usize, degradation: &dyn Degradation, seed: u64) -> Self {
        let clean = validation_crops(photos, patch, count, 1);
        let noisy = degradation.degrade(&clean, seed);
        Self { clean, noisy: vec![(NoiseVariant::Training, noisy)] }
    }

    /// Mean PSNR (dB) of `steps`-step improved sampling over the training
    /// variant's crops.
    pub fn score<B: Backend>(&self, model: &UNet<B>, steps: usize, device: &B::Device) -> f64 {
        self.score_variant(model, NoiseVariant::Training, steps, device)
    }

    /// Mean PSNR (dB) of `steps`-step improved sampling over `variant`'s
    /// crops; NaN for an empty set.
    pub fn score_variant<B: Backend>(&self, model: &UNet<B>, variant: NoiseVariant, steps: usize, device: &B::Device) -> f64 {
        let Some((_, noisy)) = self.noisy.iter().find(|(v, _)| *v == variant) else {
            return f64::NAN;
        };
        if self.clean.is_empty() {
            return f64::NAN;
        }
        let Ok(schedule) = Schedule::new(model.timesteps(), steps, 1.0) else {
            return f64::NAN;
        };
        let sampler = SamplerKind::Improved.sampler::<B>();
        let mut total = 0.0;
        for (noisy, clean) in noisy.chunks(VALIDATION_CHUNK).zip(self.clean.chunks(VALIDATION_CHUNK)) {
            let out = sample(model, sampler.as_ref(), &schedule, to_tensor::<B>(noisy, device));
            total += crate::batch::from_tensor(out).iter().zip(clean).map(|(a, b)| psnr(a, b)).sum::<f64>();
        }
        total / self.clean.len() as f64
    }
}

/// `per_photo` crops of `side` px from each of the first `photos` photos
/// that hold one.
fn validation_crops(photos: &[RgbImage], side: u32, count: usize, per_photo: usize) -> Vec<Rgb32FImage> {
    photos
        .iter()
        .filter(|p| p.width() >= side && p.height() >= side)
        .take(count)
        .flat_map(|p| spread_crops(p, side, per_photo))
        .map(|c| image::DynamicImage::ImageRgb8(c).to_rgb32f())
        .collect()
}

/// `count` crops of `side` px spread evenly along the photo's long side
/// (centred across the short one); one crop is the centre crop.
pub fn spread_crops(photo: &RgbImage, side: u32, count: usize) -> Vec<RgbImage> {
    let (w, h) = photo.dimensions();
    let (side_w, side_h) = (side.min(w), side.min(h));
    let (free_x, free_y) = (w - side_w, h - side_h);
    (0..count)
        .map(|k| {
            let along = |free: u32| (u64::from(free) * (k as u64 + 1) / (count as u64 + 1)) as u32;
            let (x, y) = if w >= h { (along(free_x), free_y / 2) } else { (free_x / 2, along(free_y)) };
            image::imageops::crop_imm(photo, x, y, side_w, side_h).to_image()
        })
        .collect()
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
    let mut step_cpu_seconds = crate::cpu_time::process_seconds().map(|_| 0.0);
    let cpu_budget = stop.cpu_minutes.map(|m| m * 60.0);
    if cpu_budget.is_some() && step_cpu_seconds.is_none() {
        return Err(TrainError::Config("--cpu-minutes needs the process's CPU time, which this platform does not report".into()));
    }

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
            let cpu_before = crate::cpu_time::process_seconds();
            let batch = PairBatch { clean: to_tensor::<B>(&clean, device), noisy: to_tensor::<B>(&noisy, device) };
            let mut rng = stream(config.seed, step, 2);
            let lr = config.learning_rate_at(step);
            let decay = crate::ema::decay_at(config.ema_decay, step);
            let loss_value;
            (model, average, loss_value) = optimisation_step(model, average, &mut optimizer, &batch, &mut rng, timesteps, lr, decay);
            if !loss_value.is_finite() {
                return Err(TrainError::Diverged(loss_value, step));
            }
            if let (Some(total), Some(before), Some(after)) = (step_cpu_seconds.as_mut(), cpu_before, crate::cpu_time::process_seconds()) {
                *total += after - before;
            }
            let out_of_compute = cpu_budget.zip(step_cpu_seconds).is_some_and(|(budget, used)| used >= budget);
            state.step += 1;
            losses.push(loss_value);
            bar.set_position(state.step);
            bar.set_message(format!("loss {loss_value:.4}  lr {lr:.2e}"));

            let validate_now = state.step % config.validate_every == 0 || state.step == config.iterations || out_of_compute;
            let psnr_now = if validate_now {
                let score = validation.score(&average, config.validation_steps, device);
                let one_step = validation.score(&average, 1, device);
                let unseen = validation.score_variant(&average, NoiseVariant::Unseen, config.validation_steps, device);
                last_psnr = Some(score);
                if score.is_finite() && best.is_none_or(|b| score > b.validation_psnr) {
                    let score = BestScore { step: state.step, validation_psnr: score };
                    let mut snapshot = state.clone();
                    snapshot.close_segment(backend_name, segment_first, segment_start.elapsed().as_secs_f64());
                    checkpoint::save_best(run_dir, &average, &snapshot, score)?;
                    best = Some(score);
                }
                bar.println(format!(
                    "step {}: validation PSNR {score:.2} dB ({} steps), {one_step:.2} dB (1 step), unseen camera {unseen:.2} dB",
                    state.step, config.validation_steps
                ));
                Some(Validation { psnr: score, one_step_psnr: one_step, unseen_psnr: Some(unseen).filter(|v| v.is_finite()) })
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
            if state.step % config.checkpoint_every == 0 || state.step == end || out_of_time || out_of_compute {
                state.close_segment(backend_name, segment_first, segment_start.elapsed().as_secs_f64());
                checkpoint::save(run_dir, &model, &average, &optimizer, &state)?;
                segment_start = Instant::now();
                segment_first = state.step;
            }
            if out_of_time {
                bar.println(format!("time limit reached at step {}; checkpoint saved, resume with the same command", state.step));
                break;
            }
            if out_of_compute {
                bar.println(format!("CPU budget spent at step {}; validated and checkpoint saved", state.step));
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
        step_cpu_seconds,
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
    fn warmup_stable_decay_holds_the_peak_then_decays_linearly_and_extends_without_rewriting_the_past() {
        let config = TrainConfig { iterations: 1000, warmup_iterations: 100, learning_rate: 1e-3, final_learning_rate: 1e-5, ..TrainConfig::default() };
        assert_eq!(config.schedule, LearningRateSchedule::WarmupStableDecay, "new runs use wsd");
        assert_eq!(config.decay_start(), 800);
        assert!((config.learning_rate_at(0) - 1e-5).abs() < 1e-12, "warm-up starts at peak / warm-up steps");
        for step in [100, 500, 799] {
            assert_eq!(config.learning_rate_at(step), 1e-3, "step {step}");
        }
        assert!((config.learning_rate_at(900) - (1e-3 + 1e-5) / 2.0).abs() < 1e-9, "{}", config.learning_rate_at(900));
        assert!((config.learning_rate_at(1000) - 1e-5).abs() < 1e-12);
        // Extending to 2000 before the decay starts keeps every step so far.
        let extended = TrainConfig { iterations: 2000, ..config.clone() };
        assert!((0..800).all(|s| extended.learning_rate_at(s) == config.learning_rate_at(s)));
        // Cosine re-stretches: the same extension changes the middle steps.
        let cosine = TrainConfig { schedule: LearningRateSchedule::Cosine, ..config.clone() };
        let stretched = TrainConfig { iterations: 2000, ..cosine.clone() };
        assert!(stretched.learning_rate_at(500) > cosine.learning_rate_at(500) * 1.2);
        assert!((cosine.learning_rate_at(550) - (1e-3 + 1e-5) / 2.0).abs() < 1e-9, "cosine is half-way at the middle");
    }

    #[test]
    fn configs_from_before_december_keep_their_schedule_and_validation() {
        let mut json = serde_json::to_value(TrainConfig::default()).expect("serialises");
        let fields = json.as_object_mut().expect("an object");
        for field in ["schedule", "validation_crops_per_photo", "validation_noise"] {
            assert!(fields.remove(field).is_some(), "{field} is serialised");
        }
        let old: TrainConfig = serde_json::from_value(json).expect("reads without the fields");
        assert_eq!(old.schedule, LearningRateSchedule::Cosine);
        assert_eq!(old.validation_crops_per_photo, 1);
        assert_eq!(old.validation_noise, ValidationNoise::MidLevel);
        let new = TrainConfig::default();
        assert_eq!(new.validation_photos * new.validation_crops_per_photo, 24, "the issue asks for at least 24 crops");
        assert_eq!(new.validation_patch, 256);
    }

    #[test]
    fn crops_spread_along_the_long_side_and_one_crop_is_the_centre_crop() {
        let photo = RgbImage::from_fn(600, 300, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, (x / 256) as u8]));
        let one = spread_crops(&photo, 256, 1);
        assert_eq!(one, vec![crate::batch::centre_crop(&photo, 256)]);
        let three = spread_crops(&photo, 256, 3);
        assert_eq!(three.len(), 3);
        // Free space 344 px: the crops start at 86, 172 and 258, 22 px down.
        let starts: Vec<(u8, u8, u8)> = three.iter().map(|c| { let p = c.get_pixel(0, 0).0; (p[0], p[1], p[2]) }).collect();
        assert_eq!(starts, vec![(86, 22, 0), (172, 22, 0), (2, 22, 1)]);
        assert!(three.iter().all(|c| c.dimensions() == (256, 256)));
        let tall = RgbImage::from_fn(300, 600, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, (y / 256) as u8]));
        let along_y: Vec<u8> = spread_crops(&tall, 256, 3).iter().map(|c| c.get_pixel(0, 0).0[1]).collect();
        assert_eq!(along_y, vec![86, 172, 2]);
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
            ("validation crops per photo", TrainConfig { validation_crops_per_photo: 0, ..base.clone() }),
            ("validation crops per photo", TrainConfig { validation_crops_per_photo: 65, ..base.clone() }),
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
        let config = TrainConfig {
            iterations: 1000,
            warmup_iterations: 100,
            learning_rate: 1e-3,
            final_learning_rate: 1e-5,
            schedule: LearningRateSchedule::Cosine,
            ..TrainConfig::default()
        };
        assert!((config.learning_rate_at(0) - 1e-5).abs() < 1e-12);
        assert!((config.learning_rate_at(99) - 1e-3).abs() < 1e-12);
        assert!((config.learning_rate_at(100) - 1e-3).abs() < 1e-12);
        let mid = config.learning_rate_at(550);
        assert!((mid - (1e-5 + (1e-3 - 1e-5) * 0.5)).abs() < 1e-9, "{mid}");
        assert!((config.learning_rate_at(1000) - 1e-5).abs() < 1e-12);
        assert!(config.learning_rate_at(700) < config.learning_rate_at(600));
    }
}
