//! Training: the run's settings ([`config`]), its batches ([`batch`]), one
//! optimisation step ([`step`]) with the EMA ([`ema`]), validation
//! ([`validation`]), the loop ([`training_loop`]), checkpoints
//! ([`checkpoint`]), the log and curves ([`curves`]), what each call ran on
//! ([`hardware`]), and the benchmarks of the data pipeline and the step
//! ([`throughput`]). A run lives in one directory and can stop and resume
//! anywhere (another machine, another backend).

pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod cpu_time;
pub mod curves;
pub mod ema;
pub mod hardware;
pub mod step;
pub mod throughput;
pub mod training_loop;
pub mod validation;

pub use config::{LearningRateSchedule, TrainConfig, TrainError, ValidationNoise, CONFIG_FILE, WSD_DECAY_FRACTION};
pub use step::{charbonnier, loss_for_batch, optimisation_step, optimizer_for};
pub use training_loop::{check_parent, train, LossTrend, StopAfter, TrainSummary};
pub use validation::{spread_crops, ValidationSet};
