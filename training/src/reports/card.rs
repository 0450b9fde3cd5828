//! The model card (`weights/README.md`): architecture, training settings,
//! the lineage of runs the weights went through (steps, crops, wall time,
//! backend and hardware, as the runs recorded them), scores and licence.

use std::fmt::Write as _;

use realdenoise::weights::TrainingMetadata;

use super::lineage::RunLineage;
use crate::train::checkpoint::{BestScore, RunState};
use crate::train::{LearningRateSchedule, TrainConfig};

/// What the shipped model was trained on, for the weights header and card.
pub const DATA_DESCRIPTION: &str = "photographs from the Debian packages enlightenment-data, mate-backgrounds, \
plasma-workspace-wallpapers and palapeli-data (list: training/data/photos.json), each downscaled by an integer \
factor with a box filter";
pub const NOISE_DESCRIPTION: &str = "synthetic sRGB camera noise: unprocessing (inverse tone curve, gamma, random \
colour matrix, white balance and brightness), Bayer mosaic (RGGB only up to runs/ft128; from runs/bayer on, \
RGGB, GRBG, GBRG or BGGR at random), heteroscedastic Poisson-Gaussian noise from darktable's \
calibrated (a, b) profiles and Brooks et al.'s log-uniform ranges, Malvar-He-Cutler demosaic, re-processing, 8-bit \
quantisation, JPEG at quality 60-100 for 30% of crops";

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

/// What the model card says, from the exported run's records.
pub struct ModelCard<'a> {
    pub config: &'a TrainConfig,
    /// The state of the exported weights.
    pub state: &'a RunState,
    pub lineage: &'a RunLineage,
    /// Set when the exported weights are the run's best validated ones.
    pub best: Option<BestScore>,
    pub metadata: &'a TrainingMetadata,
    /// Hardware and wall time in words ([`describe_history`] by default).
    pub hardware: &'a str,
    /// Size of the weights file in bytes.
    pub size: usize,
    /// `eval`'s table, when given.
    pub scores: Option<&'a str>,
}

impl ModelCard<'_> {
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# realdenoise model card\n");
        let _ = writeln!(s, "`realdenoise.rdnz` ({:.2} MB, f16) is the model the CLI and the npm package use by default.", self.size as f64 / 1e6);
        let _ = writeln!(s, "Inspect it with `realdenoise info weights/realdenoise.rdnz`.\n");
        self.architecture(&mut s);
        self.training(&mut s);
        self.lineage(&mut s);
        if let Some(scores) = self.scores {
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

    fn architecture(&self, s: &mut String) {
        let m = &self.config.model;
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
        let _ = writeln!(s, "Defaults: {} steps, {} sampler.\n", self.metadata.default_steps, self.metadata.default_sampler);
    }

    fn training(&self, s: &mut String) {
        let (config, state) = (self.config, self.state);
        let _ = writeln!(s, "## Training");
        let _ = writeln!(s, "- Data: {}.", DATA_DESCRIPTION);
        let (scale_min, scale_max) = config.darktable_scale;
        let _ = writeln!(
            s,
            "- Noise model: {NOISE_DESCRIPTION}. This run scaled darktable's (a, b) by a factor drawn log-uniformly from \
{scale_min}-{scale_max} to cover smaller sensors and underexposure, for half of the crops; Brooks' ranges gave the other half."
        );
        self.schedule(s);
        if let Some(best) = self.best {
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
        let _ = writeln!(s, "- Hardware and wall time: {}; {:.2} h in total.", self.hardware, state.total_seconds() / 3600.0);
        if !state.trained_on("cuda") {
            let _ = writeln!(
                s,
                "- **Reduced schedule**: no GPU was available to this run, so it trained on the CPU (see the lineage below) \
for a small fraction of a full schedule. The run is resumable on a GPU (`realdenoise-train train --run ... --backend cuda`), \
and the scores below will improve with it."
            );
        }
        let _ = writeln!(s, "- Reproduce: `make train` (see training/README.md).\n");
    }

    /// This run's own schedule (the lineage has every run's steps).
    fn schedule(&self, s: &mut String) {
        let config = self.config;
        let _ = writeln!(
            s,
            "- Schedule of this run: {} of {} planned iterations, batch {} crops of {}x{}, AdamW (peak lr {:e}, weight decay {:e}), \
{} warm-up steps then {} to {:e}, gradient clipping at norm {}, EMA decay {}, Charbonnier loss (eps 1e-3), \
t ~ U{{1..T}}, random crops, flips and 90-degree rotations.",
            self.state.step,
            config.iterations,
            config.batch_size,
            config.patch_size,
            config.patch_size,
            config.learning_rate,
            config.weight_decay,
            config.warmup_iterations,
            match config.schedule {
                LearningRateSchedule::Cosine => "cosine decay".to_string(),
                LearningRateSchedule::WarmupStableDecay => format!("a constant rate until step {} and a linear decay", config.decay_start()),
            },
            config.final_learning_rate,
            config.gradient_clip_norm,
            config.ema_decay
        );
    }

    fn lineage(&self, s: &mut String) {
        let runs = self.lineage.runs.len();
        let _ = writeln!(s, "## Lineage");
        let _ = writeln!(
            s,
            "These weights went through {} optimiser steps over {runs} run{}, oldest first{}, as the runs recorded them \
(hardware is recorded per call of `train` since 2026-12).\n",
            self.lineage.total_steps(),
            if runs == 1 { "" } else { "s" },
            if runs == 1 { "" } else { "; each started from the EMA weights of the one before" },
        );
        let _ = writeln!(s, "{}\n", self.lineage.table());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::lineage::{LineageRun, StepsSource};
    use crate::train::checkpoint::{Lineage, Segment};
    use crate::train::hardware::TrainCall;

    fn segment(backend: &str, first_step: u64, last_step: u64, seconds: f64) -> Segment {
        Segment { backend: backend.into(), first_step, last_step, seconds }
    }

    fn call() -> TrainCall {
        TrainCall { first_step: 0, backend: "cuda".into(), device: "Cuda(0)".into(), cpu: "Test CPU (16 threads)".into(), gpus: Some("NVIDIA H200, 143771 MiB".into()) }
    }

    /// A run of 500 steps on CUDA (hardware recorded) started from 3800
    /// steps of `runs/main` on the CPU (none recorded).
    fn child_of_main() -> RunState {
        let parent = RunState {
            step: 3800,
            seed: 1,
            elapsed_seconds: 7200.0,
            segments: vec![segment("cpu", 0, 2000, 3600.0), segment("cpu", 2000, 3800, 3600.0)],
            initialised_from: None,
            calls: Vec::new(),
        };
        RunState {
            step: 500,
            seed: 2,
            elapsed_seconds: 600.0,
            segments: vec![segment("cuda", 0, 500, 600.0)],
            initialised_from: Some(Lineage { run: "runs/main".into(), batch_size: 8, patch_size: 64, state: Box::new(parent) }),
            calls: vec![call()],
        }
    }

    /// The lineage of `child` and its parent, as [`RunLineage::trace`] reads it.
    fn lineage(child: &RunState) -> RunLineage {
        let parent = child.initialised_from.as_ref().expect("a parent");
        let run = |run: &str, steps, steps_from, batch_size, patch_size, state: &RunState| LineageRun {
            run: run.into(),
            steps,
            steps_from,
            batch_size: Some(batch_size),
            patch_size: Some(patch_size),
            seconds: Some(state.elapsed_seconds),
            backends: vec![state.segments[0].backend.clone()],
            calls: state.calls.clone(),
        };
        RunLineage {
            runs: vec![
                run("runs/main", parent.state.step, StepsSource::ChildRecord, 8, 64, &*parent.state),
                run("runs/child", child.step, StepsSource::Exported, 4, 128, child),
            ],
        }
    }

    fn render_card(state: &RunState, lineage: &RunLineage, best: Option<BestScore>, metadata: &TrainingMetadata, hardware: &str) -> String {
        ModelCard { config: &TrainConfig::default(), state, lineage, best, metadata, hardware, size: 1000, scores: None }.render()
    }

    #[test]
    fn history_lists_the_parent_run_first_and_merges_adjacent_segments() {
        let child = child_of_main();
        assert_eq!(describe_history(&child), "cpu: steps 0-3800 in 120.0 min (runs/main), then cuda: steps 0-500 in 10.0 min");
        assert_eq!(child.total_seconds(), 7800.0);
        assert!(child.trained_on("cuda") && child.trained_on("cpu") && !child.trained_on("wgpu"));
        let lineage = lineage(&child);
        let metadata = realdenoise::TrainingMetadata::untrained();
        let hardware = describe_history(&child);
        let card = render_card(&child, &lineage, None, &metadata, &hardware);
        assert!(card.contains("Started from the EMA weights of the run `runs/main` after its 3800 steps of 8 crops of 64x64"), "{card}");
        assert!(card.contains("2.17 h in total"), "{card}");
        assert!(!card.contains("Reduced schedule"), "a run with CUDA segments is not a reduced CPU schedule: {card}");
        assert!(!card.contains("best of the run's validations"), "newest weights are not called the best: {card}");
        let best = BestScore { step: 450, validation_psnr: 28.274 };
        let card = render_card(&child, &lineage, Some(best), &metadata, "cpu");
        assert!(card.contains("the EMA weights at step 450, the best of the run's validations so far (28.27 dB"), "{card}");
    }

    #[test]
    fn the_card_prints_the_lineage_total_and_each_runs_recorded_hardware() {
        let child = child_of_main();
        let lineage = lineage(&child);
        assert_eq!(lineage.total_steps(), 4300);
        let card = render_card(&child, &lineage, None, &realdenoise::TrainingMetadata::untrained(), "cpu");
        assert!(card.contains("## Lineage\nThese weights went through 4300 optimiser steps over 2 runs, oldest first; each started from the EMA weights of the one before"), "{card}");
        assert!(card.contains("| `runs/main` | 3800 (recorded by the next run) | 8 x 64 px | 2.00 h | cpu | not recorded |"), "{card}");
        assert!(
            card.contains("| `runs/child` | 500 (the exported state.json) | 4 x 128 px | 0.17 h | cuda | cuda on Cuda(0): Test CPU (16 threads); GPU: NVIDIA H200, 143771 MiB |"),
            "{card}"
        );
        assert!(card.contains("| **total** | **4300** | | 2.17 h | | |"), "{card}");
        assert!(card.contains("- Schedule of this run: 500 of 20000 planned iterations"), "{card}");
    }
}
