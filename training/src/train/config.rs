//! The settings of a run ([`TrainConfig`], stored in `config.json` and fixed
//! for the run's life), its learning-rate schedule and their validation.

use std::path::{Path, PathBuf};

use realdenoise::UNetConfig;
use serde::{Deserialize, Serialize};

use super::checkpoint;

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
    /// ([`crate::noise::degradations::LevelsInTurn`]).
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

#[cfg(test)]
mod tests {
    use super::*;

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
