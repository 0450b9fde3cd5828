//! Checkpoints: model, EMA average, optimiser state and run state, written
//! as one directory that replaces the previous one atomically, so a run cut
//! off at any moment resumes from its last complete checkpoint. Tensors are
//! stored in f32 by burn's recorder, independent of the backend, so a run
//! can move between the CPU, wgpu and CUDA.
//!
//! The random state is not a blob: every random draw is derived from
//! `(seed, step)` (see [`crate::batch::stream`]), so `seed` and `step`
//! are the whole random state.

use std::path::{Path, PathBuf};

use burn::module::{AutodiffModule, Module};
use burn::optim::Optimizer;
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder, RecorderError};
use burn::tensor::backend::AutodiffBackend;
use realdenoise::UNet;
use serde::{Deserialize, Serialize};

const DIR: &str = "checkpoint";
const PARTIAL: &str = "checkpoint.partial";
const PREVIOUS: &str = "checkpoint.previous";
const STATE: &str = "state.json";

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
        Self { step: 0, seed, elapsed_seconds: 0.0, segments: Vec::new(), initialised_from: None }
    }

    /// Training wall time of this run and every run it started from.
    pub fn total_seconds(&self) -> f64 {
        self.elapsed_seconds + self.initialised_from.as_ref().map_or(0.0, |l| l.state.total_seconds())
    }

    /// Whether this run or one it started from trained on a backend whose
    /// name starts with `prefix`.
    pub fn trained_on(&self, prefix: &str) -> bool {
        self.segments.iter().any(|s| s.backend.starts_with(prefix))
            || self.initialised_from.as_ref().is_some_and(|l| l.state.trained_on(prefix))
    }
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
    let partial = run_dir.join(PARTIAL);
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(io(&partial))?;
    }
    std::fs::create_dir_all(&partial).map_err(io(&partial))?;
    let rec = recorder();
    let record = |what, path: PathBuf, result: Result<(), RecorderError>| {
        result.map_err(|source| CheckpointError::Record { what, path, source })
    };
    record("model", partial.join("model"), model.clone().save_file(partial.join("model"), &rec))?;
    record("EMA average", partial.join("average"), average.clone().save_file(partial.join("average"), &rec))?;
    record(
        "optimiser",
        partial.join("optimizer"),
        Recorder::<B>::record(&rec, optimizer.to_record(), partial.join("optimizer.bin")).map(|_| ()),
    )?;
    let state_json = serde_json::to_vec_pretty(state).map_err(|e| CheckpointError::Corrupt { path: partial.join(STATE), reason: e.to_string() })?;
    std::fs::write(partial.join(STATE), state_json).map_err(io(&partial))?;

    let current = run_dir.join(DIR);
    let previous = run_dir.join(PREVIOUS);
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

/// The directory of the newest complete checkpoint, if any (a run cut off
/// between the two renames of [`save`] left it under the previous name).
pub fn find(run_dir: &Path) -> Option<PathBuf> {
    [DIR, PREVIOUS].iter().map(|d| run_dir.join(d)).find(|d| d.join(STATE).is_file())
}

/// Reads the run state of the newest checkpoint without loading tensors.
pub fn read_state(run_dir: &Path) -> Result<Option<RunState>, CheckpointError> {
    let Some(dir) = find(run_dir) else { return Ok(None) };
    let path = dir.join(STATE);
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    serde_json::from_slice(&bytes).map(Some).map_err(|e| CheckpointError::Corrupt { path, reason: e.to_string() })
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
    let state = read_state(run_dir)?.ok_or_else(|| CheckpointError::Corrupt { path: dir.clone(), reason: "state.json missing".into() })?;
    let average = fresh
        .load_file(dir.join("average"), &recorder(), device)
        .map_err(|e| CheckpointError::Corrupt { path: dir.clone(), reason: format!("EMA average: {e}") })?;
    Ok((average, state))
}
