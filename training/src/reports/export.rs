//! `export`: the EMA weights of a run as a `.rdnz` file (the format of
//! `realdenoise::weights`, f16) plus its model card.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::backend::NdArray;
use realdenoise::weights::{to_bytes, TrainingMetadata};
use realdenoise::SamplerKind;

use crate::checkpoint::{self, BestScore, RunState};
use crate::train::TrainConfig;

/// What the shipped model was trained on, for the weights header and card.
pub const DATA_DESCRIPTION: &str = "photographs from the Debian packages enlightenment-data, mate-backgrounds, \
plasma-workspace-wallpapers and palapeli-data (list: training/data/photos.json), each downscaled by an integer \
factor with a box filter";
pub const NOISE_DESCRIPTION: &str = "synthetic sRGB camera noise: unprocessing (inverse tone curve, gamma, random \
colour matrix, white balance and brightness), Bayer mosaic (RGGB only up to runs/ft128; from runs/bayer on, \
RGGB, GRBG, GBRG or BGGR at random), heteroscedastic Poisson-Gaussian noise from darktable's \
calibrated (a, b) profiles and Brooks et al.'s log-uniform ranges, Malvar-He-Cutler demosaic, re-processing, 8-bit \
quantisation, JPEG at quality 60-100 for 30% of crops";

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Run directory made by `train`.
    #[arg(long)]
    pub run: PathBuf,
    /// Weights file to write.
    #[arg(long, default_value = "weights/realdenoise.rdnz")]
    pub out: PathBuf,
    /// Model card to write.
    #[arg(long, default_value = "weights/README.md")]
    pub card: PathBuf,
    /// Evaluation summary (markdown from `eval`) to include in the card.
    #[arg(long)]
    pub eval: Option<PathBuf>,
    /// Recommended sampling steps stored in the header.
    #[arg(long, default_value_t = 4)]
    pub default_steps: usize,
    #[arg(long, default_value = "improved")]
    pub default_sampler: SamplerKind,
    /// Hardware description for the card (default: from the run's segments).
    #[arg(long)]
    pub hardware: Option<String>,
    /// Export the EMA weights that scored best in the run's validation
    /// (kept in RUN/best) instead of the newest ones.
    #[arg(long)]
    pub best: bool,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: &ExportArgs) -> Result<()> {
    for path in [&args.out, &args.card] {
        if path.exists() && !args.force {
            bail!("{} already exists; pass --force to replace it", path.display());
        }
    }
    let config = TrainConfig::read(&args.run)?;
    let device = Default::default();
    let fresh = config.model.init::<NdArray>(&device)?;
    let (average, state, best) = if args.best {
        let (average, state, best) = checkpoint::load_best_average::<NdArray>(&args.run, fresh, &device)?;
        (average, state, Some(best))
    } else {
        let (average, state) = checkpoint::load_average::<NdArray>(&args.run, fresh, &device)?;
        (average, state, None)
    };
    let hardware = args.hardware.clone().unwrap_or_else(|| describe_history(&state));
    let metadata = TrainingMetadata {
        trained: true,
        data: DATA_DESCRIPTION.into(),
        noise_model: NOISE_DESCRIPTION.into(),
        iterations: state.step,
        default_steps: args.default_steps,
        default_sampler: args.default_sampler,
        notes: format!(
            "{}{} steps of {} crops of {}px; {hardware}; {:.1} h of training",
            state.initialised_from.as_ref().map_or(String::new(), |p| format!(
                "{} steps of {} crops of {}px, then ",
                p.state.step, p.batch_size, p.patch_size
            )),
            state.step,
            config.batch_size,
            config.patch_size,
            state.total_seconds() / 3600.0
        ),
    };
    let bytes = to_bytes(&average, &config.model, &metadata);
    if bytes.len() > 8 << 20 {
        bail!("the weights are {} bytes, over the 8 MB budget", bytes.len());
    }
    write_atomically(&args.out, &bytes)?;
    let scores = match &args.eval {
        Some(path) => Some(std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?),
        None => None,
    };
    let card = model_card(&config, &state, best, &metadata, &hardware, bytes.len(), scores.as_deref());
    write_atomically(&args.card, card.as_bytes())?;
    println!("wrote {} ({} bytes) and {}", args.out.display(), bytes.len(), args.card.display());
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes).with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))
}

/// The segments of the runs this one started from, oldest first, then its own.
pub fn describe_history(state: &RunState) -> String {
    match &state.initialised_from {
        Some(parent) => format!("{} ({}), then {}", describe_history(&parent.state), parent.run, describe_segments(state)),
        None => describe_segments(state),
    }
}

/// "cpu (burn ndarray): steps 0-1200, 1.2 h; ..." from the run's history.
pub fn describe_segments(state: &RunState) -> String {
    let mut merged: Vec<(String, u64, u64, f64)> = Vec::new();
    for s in &state.segments {
        match merged.last_mut() {
            Some(last) if last.0 == s.backend && last.2 == s.first_step => {
                last.2 = s.last_step;
                last.3 += s.seconds;
            }
            _ => merged.push((s.backend.clone(), s.first_step, s.last_step, s.seconds)),
        }
    }
    merged
        .iter()
        .map(|(b, first, last, secs)| format!("{b}: steps {first}-{last} in {:.1} min", secs / 60.0))
        .collect::<Vec<_>>()
        .join("; ")
}

fn model_card(
    config: &TrainConfig,
    state: &RunState,
    best: Option<BestScore>,
    metadata: &TrainingMetadata,
    hardware: &str,
    size: usize,
    scores: Option<&str>,
) -> String {
    let m = &config.model;
    let mut s = String::new();
    let _ = writeln!(s, "# realdenoise model card\n");
    let _ = writeln!(s, "`realdenoise.rdnz` ({:.2} MB, f16) is the model the CLI and the npm package use by default.", size as f64 / 1e6);
    let _ = writeln!(s, "Inspect it with `realdenoise info weights/realdenoise.rdnz`.\n");
    let _ = writeln!(s, "## Architecture");
    let _ = writeln!(
        s,
        "Convolutional U-Net predicting the clean image (x0) from x_t and t (linear-interpolation diffusion, arXiv:2305.04457): \
base width {}, channel multipliers {:?}, {} residual blocks per level, {} normalisation groups, T = {}. \
{:.1} GFLOP per megapixel per step.\n",
        m.base_channels,
        m.channel_multipliers,
        m.blocks_per_level,
        m.norm_groups,
        m.timesteps,
        m.flops_per_pixel() * 1e6 / 1e9
    );
    let _ = writeln!(s, "Defaults: {} steps, {} sampler.\n", metadata.default_steps, metadata.default_sampler);
    let _ = writeln!(s, "## Training");
    let _ = writeln!(s, "- Data: {}.", DATA_DESCRIPTION);
    let (scale_min, scale_max) = config.darktable_scale;
    let _ = writeln!(
        s,
        "- Noise model: {NOISE_DESCRIPTION}. This run scaled darktable's (a, b) by a factor drawn log-uniformly from \
{scale_min}-{scale_max} to cover smaller sensors and underexposure, for half of the crops; Brooks' ranges gave the other half."
    );
    let _ = writeln!(
        s,
        "- Schedule: {} of {} planned iterations, batch {} crops of {}x{}, AdamW (peak lr {:e}, weight decay {:e}), \
{} warm-up steps then {} to {:e}, gradient clipping at norm {}, EMA decay {}, Charbonnier loss (eps 1e-3), \
t ~ U{{1..T}}, random crops, flips and 90-degree rotations.",
        state.step,
        config.iterations,
        config.batch_size,
        config.patch_size,
        config.patch_size,
        config.learning_rate,
        config.weight_decay,
        config.warmup_iterations,
        match config.schedule {
            crate::train::LearningRateSchedule::Cosine => "cosine decay".to_string(),
            crate::train::LearningRateSchedule::WarmupStableDecay => format!("a constant rate until step {} and a linear decay", config.decay_start()),
        },
        config.final_learning_rate,
        config.gradient_clip_norm,
        config.ema_decay
    );
    if let Some(best) = best {
        let _ = writeln!(
            s,
            "- Shipped: the EMA weights at step {}, the best of the run's validations so far ({:.2} dB mean PSNR on \
{} validation crops of {}px at {}, {} steps), not necessarily its newest.",
            best.step,
            best.validation_psnr,
            config.validation_photos * config.validation_crops_per_photo,
            config.validation_patch,
            config.validation_noise.describe(),
            config.validation_steps
        );
    }
    if let Some(parent) = &state.initialised_from {
        let _ = writeln!(
            s,
            "- Started from the EMA weights of the run `{}` after its {} steps of {} crops of {}x{} ({}; {:.2} h).",
            parent.run,
            parent.state.step,
            parent.batch_size,
            parent.patch_size,
            parent.patch_size,
            describe_segments(&parent.state),
            parent.state.total_seconds() / 3600.0
        );
    }
    let _ = writeln!(s, "- Hardware and wall time: {hardware}; {:.2} h in total.", state.total_seconds() / 3600.0);
    if !state.trained_on("cuda") {
        let _ = writeln!(
            s,
            "- **Reduced schedule**: no GPU was available to this run, so it trained on a 2-core CPU for a small \
fraction of a full schedule. The run is resumable on a GPU (`realdenoise-train train --run ... --backend cuda`), \
and the scores below will improve with it."
        );
    }
    let _ = writeln!(s, "- Reproduce: `make train` (see training/README.md).\n");
    if let Some(scores) = scores {
        let _ = writeln!(s, "## Validation scores\n");
        let _ = writeln!(s, "{}\n", scores.trim());
    }
    let _ = writeln!(s, "## Licence");
    let _ = writeln!(
        s,
        "Weights: MIT OR Apache-2.0, like the code. Training photos keep their own licences (per file in \
training/data/photos.json; the Debian packages' copyright files). darktable's noise profiles are GPL-3+ data; \
only their fitted (a, b) values inform the noise model."
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Lineage, Segment};

    fn segment(backend: &str, first_step: u64, last_step: u64, seconds: f64) -> Segment {
        Segment { backend: backend.into(), first_step, last_step, seconds }
    }

    #[test]
    fn history_lists_the_parent_run_first_and_merges_adjacent_segments() {
        let parent = RunState {
            step: 3800,
            seed: 1,
            elapsed_seconds: 7200.0,
            segments: vec![segment("cpu", 0, 2000, 3600.0), segment("cpu", 2000, 3800, 3600.0)],
            initialised_from: None,
        };
        let child = RunState {
            step: 500,
            seed: 2,
            elapsed_seconds: 600.0,
            segments: vec![segment("cuda", 0, 500, 600.0)],
            initialised_from: Some(Lineage { run: "runs/main".into(), batch_size: 8, patch_size: 64, state: Box::new(parent) }),
        };
        assert_eq!(describe_history(&child), "cpu: steps 0-3800 in 120.0 min (runs/main), then cuda: steps 0-500 in 10.0 min");
        assert_eq!(child.total_seconds(), 7800.0);
        assert!(child.trained_on("cuda") && child.trained_on("cpu") && !child.trained_on("wgpu"));
        let card = model_card(&TrainConfig::default(), &child, None, &realdenoise::TrainingMetadata::untrained(), &describe_history(&child), 1000, None);
        assert!(card.contains("Started from the EMA weights of the run `runs/main` after its 3800 steps of 8 crops of 64x64"), "{card}");
        assert!(card.contains("2.17 h in total"), "{card}");
        assert!(!card.contains("Reduced schedule"), "a run with CUDA segments is not a reduced CPU schedule: {card}");
        assert!(!card.contains("best of the run's validations"), "newest weights are not called the best: {card}");
        let best = BestScore { step: 450, validation_psnr: 28.274 };
        let card = model_card(&TrainConfig::default(), &child, Some(best), &realdenoise::TrainingMetadata::untrained(), "cpu", 1000, None);
        assert!(card.contains("the EMA weights at step 450, the best of the run's validations so far (28.27 dB"), "{card}");
    }
}
