//! The lineage of exported weights: the chain of runs they went through,
//! oldest first, read from what the runs recorded. The chain follows each
//! run's `config.json` `init_from` (resolved as written, else as a sibling
//! of the run that names it); a run's steps are those in the weights: the
//! exported state's step for the run itself, and for a parent the step its
//! weights were taken at, as the child recorded it (`initialised_from` in
//! the child's `state.json`), else the parent's `checkpoint/state.json`,
//! else the last row of its `log.csv`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::train::checkpoint::{self, Lineage, RunState};
use crate::train::curves::LOG_FILE;
use crate::train::hardware::TrainCall;
use crate::train::{TrainConfig, CONFIG_FILE};

/// Longest chain followed; a longer one is taken for a cycle.
const MAX_RUNS: usize = 64;

/// Where a run's step count was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepsSource {
    /// The exported weights' own `state.json`.
    Exported,
    /// The child run's record of the weights it started from.
    ChildRecord,
    /// The run's `checkpoint/state.json`.
    Checkpoint,
    /// The last row of the run's `log.csv`.
    Log,
}

impl StepsSource {
    pub fn describe(self) -> &'static str {
        match self {
            StepsSource::Exported => "the exported state.json",
            StepsSource::ChildRecord => "recorded by the next run",
            StepsSource::Checkpoint => "checkpoint/state.json",
            StepsSource::Log => LOG_FILE,
        }
    }
}

/// One run of a lineage.
#[derive(Debug, Clone, PartialEq)]
pub struct LineageRun {
    /// The run's directory, as the next run (or the exporter) names it.
    pub run: String,
    /// Optimiser steps of this run that the weights went through.
    pub steps: u64,
    pub steps_from: StepsSource,
    pub batch_size: Option<usize>,
    pub patch_size: Option<u32>,
    /// Training wall time of those steps, where recorded.
    pub seconds: Option<f64>,
    /// Backends of the run's checkpointed segments, in order, each once.
    pub backends: Vec<String>,
    /// What each recorded call of `train` ran on (none before 2026-12).
    pub calls: Vec<TrainCall>,
}

/// The runs behind exported weights, oldest first; the last is the
/// exported run itself.
#[derive(Debug, Clone, PartialEq)]
pub struct RunLineage {
    pub runs: Vec<LineageRun>,
}

#[derive(Debug, thiserror::Error)]
pub enum LineageError {
    #[error("{child} started from {parent}, which is neither found (as written, nor next to {child}) nor recorded in its state.json")]
    NotFound { child: String, parent: PathBuf },
    #[error("{run} has neither a checkpoint nor a log.csv row to count its steps")]
    NoSteps { run: String },
    #[error("the init_from links of {run} loop (or are over 64 runs long)")]
    Cycle { run: String },
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl RunLineage {
    /// The lineage of the weights in `run_dir` whose state is `state` (the
    /// newest checkpoint's or the best weights').
    pub fn trace(run_dir: &Path, config: &TrainConfig, state: &RunState) -> Result<Self, LineageError> {
        let name = run_dir.display().to_string();
        let mut runs = vec![LineageRun::recorded(name.clone(), state.step, StepsSource::Exported, Some(config), None, Some(state))];
        let mut seen: BTreeSet<PathBuf> = run_dir.canonicalize().into_iter().collect();
        let mut child = Link { name, dir: Some(run_dir.to_path_buf()), config: Some(config.clone()), state: Some(state.clone()) };
        while let Some(parent) = child.parent_path() {
            if runs.len() >= MAX_RUNS {
                return Err(LineageError::Cycle { run: runs[0].run.clone() });
            }
            let link = child.follow(&parent)?;
            if let Some(dir) = link.dir.as_ref().and_then(|d| d.canonicalize().ok()) {
                if !seen.insert(dir) {
                    return Err(LineageError::Cycle { run: runs[0].run.clone() });
                }
            }
            runs.push(link.run(child.state.as_ref().and_then(|s| s.initialised_from.as_ref()))?);
            child = link;
        }
        runs.reverse();
        Ok(Self { runs })
    }

    /// Optimiser steps over the whole lineage.
    pub fn total_steps(&self) -> u64 {
        self.runs.iter().map(|r| r.steps).sum()
    }

    /// Training wall time over the runs that recorded it.
    pub fn recorded_seconds(&self) -> f64 {
        self.runs.iter().filter_map(|r| r.seconds).sum()
    }

    /// "5500 steps of 8 crops of 64 px (runs/main), then ...".
    pub fn describe_steps(&self) -> String {
        self.runs.iter().map(|r| format!("{} steps of {} ({})", r.steps, r.crops(), r.run)).collect::<Vec<_>>().join(", then ")
    }

    /// The model card's table: one row per run and the total.
    pub fn table(&self) -> String {
        let mut rows = vec![
            "| run | steps | crops per step | wall time | backend | hardware |".to_string(),
            "|---|---|---|---|---|---|".to_string(),
        ];
        for r in &self.runs {
            rows.push(format!(
                "| `{}` | {} ({}) | {} | {} | {} | {} |",
                r.run,
                r.steps,
                r.steps_from.describe(),
                r.crops(),
                r.seconds.map_or("not recorded".into(), hours),
                if r.backends.is_empty() { "not recorded".into() } else { r.backends.join(", ") },
                r.hardware(),
            ));
        }
        rows.push(format!("| **total** | **{}** | | {} | | |", self.total_steps(), hours(self.recorded_seconds())));
        rows.join("\n")
    }
}

fn hours(seconds: f64) -> String {
    format!("{:.2} h", seconds / 3600.0)
}

impl LineageRun {
    fn recorded(
        run: String,
        steps: u64,
        steps_from: StepsSource,
        config: Option<&TrainConfig>,
        lineage: Option<&Lineage>,
        state: Option<&RunState>,
    ) -> Self {
        let mut backends: Vec<String> = Vec::new();
        for segment in state.iter().flat_map(|s| &s.segments) {
            if !backends.contains(&segment.backend) {
                backends.push(segment.backend.clone());
            }
        }
        Self {
            run,
            steps,
            steps_from,
            batch_size: config.map(|c| c.batch_size).or(lineage.map(|l| l.batch_size)),
            patch_size: config.map(|c| c.patch_size).or(lineage.map(|l| l.patch_size)),
            seconds: state.map(|s| s.elapsed_seconds),
            backends,
            calls: state.map_or_else(Vec::new, |s| s.calls.clone()),
        }
    }

    /// "8 x 64 px", or "not recorded".
    pub fn crops(&self) -> String {
        match (self.batch_size, self.patch_size) {
            (Some(b), Some(p)) => format!("{b} x {p} px"),
            _ => "not recorded".into(),
        }
    }

    /// What the recorded calls ran on, each distinct once, or "not recorded".
    pub fn hardware(&self) -> String {
        let mut seen: Vec<String> = Vec::new();
        for call in &self.calls {
            let described = call.describe();
            if !seen.contains(&described) {
                seen.push(described);
            }
        }
        if seen.is_empty() {
            "not recorded".into()
        } else {
            seen.join("; ")
        }
    }
}

/// A run on the way up the chain: its directory (when found), its config
/// and the state that describes the weights taken from it.
struct Link {
    name: String,
    dir: Option<PathBuf>,
    config: Option<TrainConfig>,
    state: Option<RunState>,
}

impl Link {
    /// The run this one started from: its config's `init_from`, else its
    /// state's record.
    fn parent_path(&self) -> Option<PathBuf> {
        let recorded = self.state.as_ref().and_then(|s| s.initialised_from.as_ref()).map(|l| PathBuf::from(&l.run));
        self.config.as_ref().and_then(|c| c.init_from.clone()).or(recorded)
    }

    /// The parent named `parent`: found on disk and/or recorded in this
    /// run's state.
    fn follow(&self, parent: &Path) -> Result<Link, LineageError> {
        let dir = resolve(self.dir.as_deref(), parent);
        let recorded = self.state.as_ref().and_then(|s| s.initialised_from.as_ref());
        let state = match (recorded, &dir) {
            (Some(lineage), _) => Some((*lineage.state).clone()),
            (None, Some(dir)) => checkpoint::read_state(dir)?,
            (None, None) => return Err(LineageError::NotFound { child: self.name.clone(), parent: parent.to_path_buf() }),
        };
        let config = dir.as_deref().and_then(|d| TrainConfig::read(d).ok());
        Ok(Link { name: parent.display().to_string(), dir, config, state })
    }

    /// This run's entry, given the child's record of it.
    fn run(&self, record: Option<&Lineage>) -> Result<LineageRun, LineageError> {
        let mut logged_seconds = None;
        let (steps, from) = match (record, &self.state, &self.dir) {
            (Some(l), _, _) => (l.state.step, StepsSource::ChildRecord),
            (None, Some(s), _) => (s.step, StepsSource::Checkpoint),
            (None, None, Some(dir)) => match last_logged(dir)? {
                Some((step, seconds)) => {
                    logged_seconds = Some(seconds);
                    (step, StepsSource::Log)
                }
                None => return Err(LineageError::NoSteps { run: self.name.clone() }),
            },
            (None, None, None) => return Err(LineageError::NoSteps { run: self.name.clone() }),
        };
        let mut run = LineageRun::recorded(self.name.clone(), steps, from, self.config.as_ref(), record, self.state.as_ref());
        run.seconds = run.seconds.or(logged_seconds);
        Ok(run)
    }
}

/// `init_from` as written (absolute, or relative to the working directory),
/// else the directory of that name next to the child run.
fn resolve(child: Option<&Path>, init_from: &Path) -> Option<PathBuf> {
    let sibling = child.and_then(Path::parent).zip(init_from.file_name()).map(|(p, n)| p.join(n));
    [Some(init_from.to_path_buf()), sibling].into_iter().flatten().find(|d| d.join(CONFIG_FILE).is_file())
}

/// The step and seconds of the last row of the run's log, if it has one.
fn last_logged(dir: &Path) -> Result<Option<(u64, f64)>, LineageError> {
    let path = dir.join(LOG_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(LineageError::Io { path, source }),
    };
    Ok(text.lines().rev().find_map(|line| {
        let mut fields = line.split(',');
        let step = fields.next()?.trim().parse().ok()?;
        let seconds = fields.nth(2)?.trim().parse().ok()?;
        Some((step, seconds))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::checkpoint::Segment;

    fn state(step: u64, seconds: f64, backend: &str, parent: Option<Lineage>) -> RunState {
        RunState {
            step,
            seed: 1,
            elapsed_seconds: seconds,
            segments: vec![Segment { backend: backend.into(), first_step: 0, last_step: step, seconds }],
            initialised_from: parent,
            calls: Vec::new(),
        }
    }

    fn write_run(dir: &Path, config: &TrainConfig, state: Option<&RunState>, log: Option<&str>) {
        std::fs::create_dir_all(dir.join("checkpoint")).expect("run dir");
        std::fs::write(dir.join(CONFIG_FILE), serde_json::to_string(config).expect("config")).expect("config.json");
        if let Some(state) = state {
            std::fs::write(dir.join("checkpoint/state.json"), serde_json::to_string(state).expect("state")).expect("state.json");
        }
        if let Some(log) = log {
            std::fs::write(dir.join(LOG_FILE), log).expect("log.csv");
        }
    }

    /// Three fake runs, `first <- second <- third`: `first` has only a log
    /// (counted from its last row), `second` a checkpoint, and `third`
    /// (exported) recorded `second`'s state when it started from it.
    #[test]
    fn a_chain_of_three_runs_sums_their_steps_from_what_each_recorded() {
        let root = tempfile::tempdir().expect("temp dir");
        let (first, second, third) = (root.path().join("first"), root.path().join("second"), root.path().join("third"));
        let first_config = TrainConfig { batch_size: 8, patch_size: 64, ..TrainConfig::default() };
        write_run(&first, &first_config, None, Some("step,learning_rate,loss,seconds,validation_psnr\n499,1e-3,0.1,900.0,\n500,1e-3,0.1,1000.5,28.0\n"));
        let second_config = TrainConfig { batch_size: 4, patch_size: 128, init_from: Some("first".into()), ..TrainConfig::default() };
        let mut second_state = state(300, 600.0, "cpu (burn ndarray)", None);
        second_state.calls.push(TrainCall {
            first_step: 0,
            backend: "cpu (burn ndarray)".into(),
            device: "Cpu".into(),
            cpu: "Test CPU (2 threads)".into(),
            gpus: None,
        });
        // The parent went on after `third` took its weights at step 300:
        // the lineage counts the 300 steps in the weights, not the 400 now.
        write_run(&second, &second_config, Some(&RunState { step: 400, ..second_state.clone() }), None);
        let third_config = TrainConfig { batch_size: 4, patch_size: 128, init_from: Some(second.clone()), ..TrainConfig::default() };
        let record = Lineage { run: second.display().to_string(), batch_size: 4, patch_size: 128, state: Box::new(second_state) };
        let third_state = state(250, 400.0, "cuda (burn cuda)", Some(record));
        write_run(&third, &third_config, Some(&third_state), None);

        let lineage = RunLineage::trace(&third, &third_config, &RunState { step: 200, ..third_state }).expect("traced");
        let steps: Vec<(u64, StepsSource)> = lineage.runs.iter().map(|r| (r.steps, r.steps_from)).collect();
        assert_eq!(steps, vec![(500, StepsSource::Log), (300, StepsSource::ChildRecord), (200, StepsSource::Exported)]);
        assert_eq!(lineage.total_steps(), 1000);
        assert_eq!(lineage.recorded_seconds(), 1000.5 + 600.0 + 400.0);
        assert_eq!(lineage.runs[0].crops(), "8 x 64 px");
        assert_eq!(lineage.runs[0].run, "first");
        assert_eq!(lineage.runs[0].hardware(), "not recorded");
        assert_eq!(lineage.runs[1].hardware(), "cpu (burn ndarray) on Cpu: Test CPU (2 threads)");
        assert_eq!(lineage.runs[2].backends, vec!["cuda (burn cuda)".to_string()]);
        assert_eq!(lineage.describe_steps(), format!("500 steps of 8 x 64 px (first), then 300 steps of 4 x 128 px ({}), then 200 steps of 4 x 128 px ({})", second.display(), third.display()));
        let table = lineage.table();
        assert!(table.contains("| `first` | 500 (log.csv) | 8 x 64 px | 0.28 h | not recorded | not recorded |"), "{table}");
        assert!(table.contains("| **total** | **1000** | | 0.56 h | | |"), "{table}");

        // Without the child's record, the parent's checkpoint counts.
        let unrecorded = RunState { initialised_from: None, ..state(250, 400.0, "cpu", None) };
        let lineage = RunLineage::trace(&third, &third_config, &unrecorded).expect("traced");
        assert_eq!(lineage.runs[1].steps_from, StepsSource::Checkpoint);
        assert_eq!(lineage.total_steps(), 500 + 400 + 250);
    }

    #[test]
    fn a_missing_parent_or_a_loop_is_refused() {
        let root = tempfile::tempdir().expect("temp dir");
        let (a, b) = (root.path().join("run-a"), root.path().join("run-b"));
        let config = |parent: &str| TrainConfig { init_from: Some(parent.into()), ..TrainConfig::default() };
        write_run(&a, &config("run-b"), Some(&state(10, 1.0, "cpu", None)), None);
        write_run(&b, &config("run-a"), Some(&state(20, 1.0, "cpu", None)), None);
        let looped = RunLineage::trace(&a, &config("run-b"), &state(10, 1.0, "cpu", None));
        assert!(matches!(looped, Err(LineageError::Cycle { .. })), "{looped:?}");
        let missing = RunLineage::trace(&a, &config("no-such-run"), &state(10, 1.0, "cpu", None));
        assert!(matches!(missing, Err(LineageError::NotFound { .. })), "{missing:?}");
    }
}
