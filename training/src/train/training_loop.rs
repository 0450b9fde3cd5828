//! The training loop: one call of [`train`] on a run directory. It resumes
//! from the run's checkpoint (or starts, from another run's weights when
//! the config says so), draws batches on a second thread, takes
//! optimisation steps, validates, keeps the best weights, logs, and
//! checkpoints; every call records what it ran on.

use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::Optimizer;
use burn::tensor::backend::AutodiffBackend;
use image::{Rgb32FImage, RgbImage};
use indicatif::{ProgressBar, ProgressStyle};
use realdenoise::UNet;

use super::batch::{draw_batch, stream, to_tensor, usable_photos, PairBatch};
use super::checkpoint::{self, BestScore, Checkpoint, Lineage, RunState};
use super::config::{TrainConfig, TrainError};
use super::curves::{self, LogRow, Validation};
use super::hardware::TrainCall;
use super::step::{optimisation_step, optimizer_for};
use super::validation::ValidationSet;
use crate::noise::degradations::{Degradation, NoiseVariant};

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

/// A clean and a noisy batch of crops, drawn on the batch thread.
type Batch = (Vec<Rgb32FImage>, Vec<Rgb32FImage>);

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
    let (model, average, state) = resume_or_start::<B, _>(run_dir, config, &mut optimizer, device)?;
    let end = stop.steps.map_or(config.iterations, |n| (state.step + n).min(config.iterations));
    let mut call = Call::<B>::open(Setting { run_dir, config, validation, backend_name, device }, state, stop)?;
    let first_step = call.first_step;
    // Batches are drawn (crop, augment, synthesise noise) on a second thread
    // while the model trains on the previous one.
    let outcome = std::thread::scope(|scope| -> Result<(), TrainError> {
        let (sender, receiver) = sync_channel::<Batch>(2);
        let usable = &usable;
        scope.spawn(move || send_batches(&sender, photos, usable, config, degradation, first_step, end));
        call.run(model, average, &mut optimizer, &receiver, end)
    });
    call.bar.finish_and_clear();
    outcome?;
    call.log.draw(run_dir);
    Ok(call.summary())
}

/// The batch thread: the batches of steps `first_step..end`, in order,
/// until the loop stops taking them.
fn send_batches(
    sender: &SyncSender<Batch>,
    photos: &[RgbImage],
    usable: &[usize],
    config: &TrainConfig,
    degradation: &dyn Degradation,
    first_step: u64,
    end: u64,
) {
    for step in first_step..end {
        let batch = draw_batch(photos, usable, config.batch_size, config.patch_size, degradation, config.seed, step);
        if sender.send(batch).is_err() {
            break;
        }
    }
}

/// The model, its EMA average and the run state: from the run's checkpoint,
/// else fresh (seeded), or from the parent run's EMA weights.
fn resume_or_start<B: AutodiffBackend, O: Optimizer<UNet<B>, B>>(
    run_dir: &Path,
    config: &TrainConfig,
    optimizer: &mut O,
    device: &B::Device,
) -> Result<(UNet<B>, UNet<B::InnerBackend>, RunState), TrainError> {
    B::seed(device, config.seed);
    let fresh = config.model.init::<B>(device).map_err(|e| TrainError::Config(e.to_string()))?;
    if let Some(Checkpoint { model, average, state }) = checkpoint::load::<B, _>(run_dir, fresh.clone(), optimizer, device)? {
        return Ok((model, average, state));
    }
    let (model, lineage) = match &config.init_from {
        Some(parent) => {
            let (model, lineage) = start_from_parent::<B>(parent, config, fresh, device)?;
            (model, Some(lineage))
        }
        None => (fresh, None),
    };
    let average = model.valid();
    Ok((model, average, RunState { initialised_from: lineage, ..RunState::new(config.seed) }))
}

/// What one call of [`train`] works with and does not change.
struct Setting<'a, B: AutodiffBackend> {
    run_dir: &'a Path,
    config: &'a TrainConfig,
    validation: &'a ValidationSet,
    backend_name: &'a str,
    device: &'a B::Device,
}

/// One call of [`train`] between steps: the run state, the best score so
/// far, the log, the limits and the accounting for [`TrainSummary`].
struct Call<'a, B: AutodiffBackend> {
    setting: Setting<'a, B>,
    state: RunState,
    best: Option<BestScore>,
    log: curves::Log,
    bar: ProgressBar,
    first_step: u64,
    started: Instant,
    /// Wall seconds and CPU seconds this call may use.
    deadline: Option<f64>,
    cpu_budget: Option<f64>,
    losses: Vec<f32>,
    last_psnr: Option<f64>,
    /// The stretch of steps since the last checkpoint (a [`checkpoint::Segment`]).
    segment_start: Instant,
    segment_first: u64,
    data_wait_seconds: f64,
    step_cpu_seconds: Option<f64>,
}

impl<'a, B: AutodiffBackend> Call<'a, B> {
    fn open(setting: Setting<'a, B>, mut state: RunState, stop: StopAfter) -> Result<Self, TrainError> {
        let (run_dir, config) = (setting.run_dir, setting.config);
        let best = checkpoint::read_best(run_dir)?;
        let log = curves::Log::open(run_dir, state.step).map_err(|source| TrainError::Io { path: run_dir.join(curves::LOG_FILE), source })?;
        let step_cpu_seconds = super::cpu_time::process_seconds().map(|_| 0.0);
        let cpu_budget = stop.cpu_minutes.map(|m| m * 60.0);
        if cpu_budget.is_some() && step_cpu_seconds.is_none() {
            return Err(TrainError::Config("--cpu-minutes needs the process's CPU time, which this platform does not report".into()));
        }
        let first_step = state.step;
        state.calls.push(TrainCall::here(setting.backend_name, setting.device, first_step));
        Ok(Self {
            bar: progress_bar(config.iterations, first_step),
            setting,
            state,
            best,
            log,
            first_step,
            started: Instant::now(),
            deadline: stop.minutes.map(|m| m * 60.0),
            cpu_budget,
            losses: Vec::new(),
            last_psnr: None,
            segment_start: Instant::now(),
            segment_first: first_step,
            data_wait_seconds: 0.0,
            step_cpu_seconds,
        })
    }

    /// Trains on the batches from `receiver` until step `end` or a limit.
    fn run<O: Optimizer<UNet<B>, B>>(
        &mut self,
        mut model: UNet<B>,
        mut average: UNet<B::InnerBackend>,
        optimizer: &mut O,
        receiver: &Receiver<Batch>,
        end: u64,
    ) -> Result<(), TrainError> {
        while self.state.step < end {
            let waiting = Instant::now();
            let Ok(batch) = receiver.recv() else { break };
            if self.state.step > self.first_step {
                self.data_wait_seconds += waiting.elapsed().as_secs_f64();
            }
            let (learning_rate, loss);
            (model, average, learning_rate, loss) = self.step(model, average, optimizer, batch)?;
            if self.after_step(&model, &average, optimizer, learning_rate, loss, end)? {
                break;
            }
        }
        Ok(())
    }

    /// One optimisation step on `batch` at the run's current step, with its
    /// CPU time counted; the learning rate and the loss.
    fn step<O: Optimizer<UNet<B>, B>>(
        &mut self,
        model: UNet<B>,
        average: UNet<B::InnerBackend>,
        optimizer: &mut O,
        (clean, noisy): Batch,
    ) -> Result<(UNet<B>, UNet<B::InnerBackend>, f64, f32), TrainError> {
        let (config, device, step) = (self.setting.config, self.setting.device, self.state.step);
        let cpu_before = super::cpu_time::process_seconds();
        let batch = PairBatch { clean: to_tensor::<B>(&clean, device), noisy: to_tensor::<B>(&noisy, device) };
        let mut rng = stream(config.seed, step, 2);
        let lr = config.learning_rate_at(step);
        let decay = super::ema::decay_at(config.ema_decay, step);
        let (model, average, loss) = optimisation_step(model, average, optimizer, &batch, &mut rng, config.model.timesteps, lr, decay);
        if !loss.is_finite() {
            return Err(TrainError::Diverged(loss, step));
        }
        if let (Some(total), Some(before), Some(after)) = (self.step_cpu_seconds.as_mut(), cpu_before, super::cpu_time::process_seconds()) {
            *total += after - before;
        }
        Ok((model, average, lr, loss))
    }

    /// Counts the step, validates, logs and checkpoints when due; whether
    /// the call must stop here (time or CPU budget spent).
    fn after_step<O: Optimizer<UNet<B>, B>>(
        &mut self,
        model: &UNet<B>,
        average: &UNet<B::InnerBackend>,
        optimizer: &O,
        learning_rate: f64,
        loss: f32,
        end: u64,
    ) -> Result<bool, TrainError> {
        let (run_dir, config) = (self.setting.run_dir, self.setting.config);
        let out_of_compute = self.cpu_budget.zip(self.step_cpu_seconds).is_some_and(|(budget, used)| used >= budget);
        self.state.step += 1;
        let step = self.state.step;
        self.losses.push(loss);
        self.bar.set_position(step);
        self.bar.set_message(format!("loss {loss:.4}  lr {learning_rate:.2e}"));

        let validate_now = step % config.validate_every == 0 || step == config.iterations || out_of_compute;
        let validation = if validate_now { Some(self.validate(average)?) } else { None };
        let seconds = self.state.elapsed_seconds + self.segment_start.elapsed().as_secs_f64();
        self.log
            .push(LogRow { step, learning_rate, loss, seconds, validation })
            .map_err(|source| TrainError::Io { path: run_dir.join(curves::LOG_FILE), source })?;
        if validate_now {
            self.log.draw(run_dir);
        }

        let out_of_time = self.deadline.is_some_and(|d| self.started.elapsed().as_secs_f64() >= d);
        if step % config.checkpoint_every == 0 || step == end || out_of_time || out_of_compute {
            self.checkpoint(model, average, optimizer)?;
        }
        if out_of_time {
            self.bar.println(format!("time limit reached at step {step}; checkpoint saved, resume with the same command"));
        } else if out_of_compute {
            self.bar.println(format!("CPU budget spent at step {step}; validated and checkpoint saved"));
        }
        Ok(out_of_time || out_of_compute)
    }

    /// Scores the EMA weights (default steps, one step, the unseen camera)
    /// and keeps them in `best/` when they beat the best so far.
    fn validate(&mut self, average: &UNet<B::InnerBackend>) -> Result<Validation, TrainError> {
        let Setting { run_dir, config, validation, device, .. } = self.setting;
        let score = validation.score(average, config.validation_steps, device);
        let one_step = validation.score(average, 1, device);
        let unseen = validation.score_variant(average, NoiseVariant::Unseen, config.validation_steps, device);
        self.last_psnr = Some(score);
        if score.is_finite() && self.best.is_none_or(|b| score > b.validation_psnr) {
            let best = BestScore { step: self.state.step, validation_psnr: score };
            let mut snapshot = self.state.clone();
            snapshot.close_segment(self.setting.backend_name, self.segment_first, self.segment_start.elapsed().as_secs_f64());
            checkpoint::save_best(run_dir, average, &snapshot, best)?;
            self.best = Some(best);
        }
        self.bar.println(format!(
            "step {}: validation PSNR {score:.2} dB ({} steps), {one_step:.2} dB (1 step), unseen camera {unseen:.2} dB",
            self.state.step, config.validation_steps
        ));
        Ok(Validation { psnr: score, one_step_psnr: one_step, unseen_psnr: Some(unseen).filter(|v| v.is_finite()) })
    }

    /// Closes the current segment and writes the checkpoint.
    fn checkpoint<O: Optimizer<UNet<B>, B>>(&mut self, model: &UNet<B>, average: &UNet<B::InnerBackend>, optimizer: &O) -> Result<(), TrainError> {
        self.state.close_segment(self.setting.backend_name, self.segment_first, self.segment_start.elapsed().as_secs_f64());
        checkpoint::save(self.setting.run_dir, model, average, optimizer, &self.state)?;
        self.segment_start = Instant::now();
        self.segment_first = self.state.step;
        Ok(())
    }

    fn summary(self) -> TrainSummary {
        TrainSummary {
            first_step: self.first_step,
            last_step: self.state.step,
            seconds: self.started.elapsed().as_secs_f64(),
            mean_loss: LossTrend::of(&self.losses),
            last_validation_psnr: self.last_psnr,
            best: self.best,
            data_wait_seconds: self.data_wait_seconds,
            step_cpu_seconds: self.step_cpu_seconds,
        }
    }
}

fn progress_bar(iterations: u64, first_step: u64) -> ProgressBar {
    let bar = ProgressBar::new(iterations).with_position(first_step);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {per_sec}  eta {eta}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
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
}
