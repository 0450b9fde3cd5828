//! Checkpoints: model, EMA average, optimiser state and run state, written
//! as one directory that replaces the previous one atomically, so a run cut
//! off at any moment resumes from its last complete checkpoint. Tensors are
//! stored in f32 by burn's recorder, independent of the backend, so a run
//! can move between the CPU, wgpu and CUDA.
//!
//! The random state is not a blob: every random draw is derived from
//! `(seed, step)` (see [`crate::train::batch::stream`]), so `seed` and `step`
//! are the whole random state.
//!
//! Next to the newest checkpoint, a run keeps the EMA average that scored
//! highest in validation so far (`best/`): a long run's validation score
//! can peak before its end, and the newest weights are then not the ones
//! to ship (`export --best`).

use std::path::{Path, PathBuf};

use burn::module::{AutodiffModule, Module};
use burn::optim::Optimizer;
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder, RecorderError};
use burn::tensor::backend::AutodiffBackend;
use realdenoise::UNet;
use serde::{Deserialize, Serialize};

use super::hardware::TrainCall;

const STATE: &str = "state.json";
const BEST_SCORE: &str = "validation.json";

/// A directory of a run that is replaced whole: written complete under
/// `partial`, then swapped in by renames, so a run cut off at any moment
/// leaves a complete copy under `current` or `previous`. `marker` is the
/// file written last, which makes a copy complete.
struct Slot {
    current: &'static str,
    partial: &'static str,
    previous: &'static str,
    marker: &'static str,
}

const CHECKPOINT: Slot = Slot { current: "checkpoint", partial: "checkpoint.partial", previous: "checkpoint.previous", marker: STATE };
const BEST: Slot = Slot { current: "best", partial: "best.partial", previous: "best.previous", marker: BEST_SCORE };

impl Slot {
    /// Fills a fresh `partial` directory with `fill`, then swaps it in; the
    /// old copy stays readable as `previous` until the new one is in place.
    fn write(&self, run_dir: &Path, fill: impl FnOnce(&Path) -> Result<(), CheckpointError>) -> Result<(), CheckpointError> {
        let partial = run_dir.join(self.partial);
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(io(&partial))?;
        }
        std::fs::create_dir_all(&partial).map_err(io(&partial))?;
        fill(&partial)?;
        let (current, previous) = (run_dir.join(self.current), run_dir.join(self.previous));
        if previous.exists() {
            std::fs::remove_dir_all(&previous).map_err(io(&previous))?;
        }
        if current.exists() {
            std::fs::rename(&current, &previous).map_err(io(&current))?;
        }
        std::fs::rename(&partial, &current).map_err(io(&partial))?;
        if previous.exists() {
            std::fs::remove_dir_all(&previous).map_err(io(&previous))?;
        }
        Ok(())
    }

    /// The complete copy, if any (a run cut off between the two renames of
    /// [`Slot::write`] left it under the previous name).
    fn find(&self, run_dir: &Path) -> Option<PathBuf> {
        [self.current, self.previous].iter().map(|d| run_dir.join(d)).find(|d| d.join(self.marker).is_file())
    }
}

/// A stretch of training on one backend (for the model card).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub backend: String,
    pub first_step: u64,
    pub last_step: u64,
    pub seconds: f64,
}

/// Everything about a run besides tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Optimiser steps completed.
    pub step: u64,
    pub seed: u64,
    /// Training wall time over all segments.
    pub elapsed_seconds: f64,
    pub segments: Vec<Segment>,
    /// The run whose EMA weights this one started from, if any (its steps
    /// and time are part of the shipped model's history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initialised_from: Option<Lineage>,
    /// Every call of `train` that reached a checkpoint: its backend and
    /// hardware. Runs trained before 2026-12 have none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<TrainCall>,
}

/// Where a run's starting weights came from: the parent run's directory and
/// its history at the moment they were taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    pub run: String,
    pub batch_size: usize,
    pub patch_size: u32,
    pub state: Box<RunState>,
}

impl RunState {
    pub fn new(seed: u64) -> Self {
        Self { step: 0, seed, elapsed_seconds: 0.0, segments: Vec::new(), initialised_from: None, calls: Vec::new() }
    }

    /// Training wall time of this run and every run it started from.
    pub fn total_seconds(&self) -> f64 {
        self.elapsed_seconds + self.initialised_from.as_ref().map_or(0.0, |l| l.state.total_seconds())
    }

    /// Ends the stretch of training on `backend` that began at `first_step`
    /// and has run `seconds` so far.
    pub fn close_segment(&mut self, backend: &str, first_step: u64, seconds: f64) {
        self.elapsed_seconds += seconds;
        self.segments.push(Segment { backend: backend.into(), first_step, last_step: self.step, seconds });
    }

    /// Whether this run or one it started from trained on a backend whose
    /// name starts with `prefix`.
    pub fn trained_on(&self, prefix: &str) -> bool {
        self.segments.iter().any(|s| s.backend.starts_with(prefix))
            || self.initialised_from.as_ref().is_some_and(|l| l.state.trained_on(prefix))
    }
}

/// The best validation score of a run so far and the step it was measured at.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BestScore {
    pub step: u64,
    /// Mean PSNR (dB) of the run's validation crops.
    pub validation_psnr: f64,
}

pub struct Checkpoint<B: AutodiffBackend> {
    pub model: UNet<B>,
    pub average: UNet<B::InnerBackend>,
    pub state: RunState,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot write checkpoint {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot record {what} in {path}: {source}")]
    Record { what: &'static str, path: PathBuf, source: RecorderError },
    #[error("checkpoint {path} is unreadable: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

fn recorder() -> BinFileRecorder<FullPrecisionSettings> {
    BinFileRecorder::default()
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io { path: path.to_path_buf(), source }
}

/// Writes a complete checkpoint next to the old one, then swaps them.
pub fn save<B: AutodiffBackend, O: Optimizer<UNet<B>, B>>(
    run_dir: &Path,
    model: &UNet<B>,
    average: &UNet<B::InnerBackend>,
    optimizer: &O,
    state: &RunState,
) -> Result<(), CheckpointError> {
    CHECKPOINT.write(run_dir, |dir| {
        let rec = recorder();
        let record = |what, path: PathBuf, result: Result<(), RecorderError>| {
            result.map_err(|source| CheckpointError::Record { what, path, source })
        };
        record("model", dir.join("model"), model.clone().save_file(dir.join("model"), &rec))?;
        record("EMA average", dir.join("average"), average.clone().save_file(dir.join("average"), &rec))?;
        record(
            "optimiser",
            dir.join("optimizer"),
            Recorder::<B>::record(&rec, optimizer.to_record(), dir.join("optimizer.bin")).map(|_| ()),
        )?;
        write_json(&dir.join(STATE), state)
    })
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<(), CheckpointError> {
    let json = serde_json::to_vec_pretty(value).map_err(|e| CheckpointError::Corrupt { path: path.to_path_buf(), reason: e.to_string() })?;
    std::fs::write(path, json).map_err(io(path))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, CheckpointError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&bytes).map_err(|e| CheckpointError::Corrupt { path: path.to_path_buf(), reason: e.to_string() })
}

/// Keeps `average` as the run's best EMA weights, with the run's state at
/// that step and the score that made them the best (written last).
pub fn save_best<B: burn::tensor::backend::Backend>(
    run_dir: &Path,
    average: &UNet<B>,
    state: &RunState,
    score: BestScore,
) -> Result<(), CheckpointError> {
    BEST.write(run_dir, |dir| {
        average
            .clone()
            .save_file(dir.join("average"), &recorder())
            .map_err(|source| CheckpointError::Record { what: "best EMA average", path: dir.join("average"), source })?;
        write_json(&dir.join(STATE), state)?;
        write_json(&dir.join(BEST_SCORE), &score)
    })
}

/// The best validation score of the run so far, if it has validated.
pub fn read_best(run_dir: &Path) -> Result<Option<BestScore>, CheckpointError> {
    BEST.find(run_dir).map(|dir| read_json(&dir.join(BEST_SCORE))).transpose()
}

/// The directory of the newest complete checkpoint, if any.
pub fn find(run_dir: &Path) -> Option<PathBuf> {
    CHECKPOINT.find(run_dir)
}

/// Reads the run state of the newest checkpoint without loading tensors.
pub fn read_state(run_dir: &Path) -> Result<Option<RunState>, CheckpointError> {
    find(run_dir).map(|dir| read_json(&dir.join(STATE))).transpose()
}

/// Loads the newest checkpoint into `fresh` (which fixes the architecture)
/// and `optimizer`; `None` when the run has not checkpointed yet.
pub fn load<B: AutodiffBackend, O: Optimizer<UNet<B>, B>>(
    run_dir: &Path,
    fresh: UNet<B>,
    optimizer: &mut O,
    device: &B::Device,
) -> Result<Option<Checkpoint<B>>, CheckpointError> {
    let Some(dir) = find(run_dir) else { return Ok(None) };
    let Some(state) = read_state(run_dir)? else { return Ok(None) };
    let rec = recorder();
    let corrupt = |what: &str, source: RecorderError| CheckpointError::Corrupt { path: dir.clone(), reason: format!("{what}: {source}") };
    let average = fresh.valid().load_file(dir.join("average"), &rec, device).map_err(|e| corrupt("EMA average", e))?;
    let model = fresh.load_file(dir.join("model"), &rec, device).map_err(|e| corrupt("model", e))?;
    let optimizer_record = Recorder::<B>::load(&rec, dir.join("optimizer.bin"), device).map_err(|e| corrupt("optimiser", e))?;
    *optimizer = optimizer.clone().load_record(optimizer_record);
    Ok(Some(Checkpoint { model, average, state }))
}

/// Loads only the EMA average of the newest checkpoint (for export and
/// evaluation), on any backend.
pub fn load_average<B: burn::tensor::backend::Backend>(
    run_dir: &Path,
    fresh: UNet<B>,
    device: &B::Device,
) -> Result<(UNet<B>, RunState), CheckpointError> {
    let Some(dir) = find(run_dir) else {
        return Err(CheckpointError::Corrupt { path: run_dir.to_path_buf(), reason: "no checkpoint in this run directory yet".into() });
    };
    load_average_in(&dir, fresh, device)
}

/// Loads the run's best EMA weights (see [`save_best`]), their run state
/// and score.
pub fn load_best_average<B: burn::tensor::backend::Backend>(
    run_dir: &Path,
    fresh: UNet<B>,
    device: &B::Device,
) -> Result<(UNet<B>, RunState, BestScore), CheckpointError> {
    let Some(dir) = BEST.find(run_dir) else {
        return Err(CheckpointError::Corrupt { path: run_dir.to_path_buf(), reason: "this run has kept no best weights (it has not validated yet)".into() });
    };
    let score = read_json(&dir.join(BEST_SCORE))?;
    let (average, state) = load_average_in(&dir, fresh, device)?;
    Ok((average, state, score))
}

fn load_average_in<B: burn::tensor::backend::Backend>(
    dir: &Path,
    fresh: UNet<B>,
    device: &B::Device,
) -> Result<(UNet<B>, RunState), CheckpointError> {
    let state = read_json(&dir.join(STATE))?;
    let average = fresh
        .load_file(dir.join("average"), &recorder(), device)
        .map_err(|e| CheckpointError::Corrupt { path: dir.to_path_buf(), reason: format!("EMA average: {e}") })?;
    Ok((average, state))
}
