//! Training for realdenoise: data preparation, camera-noise synthesis, the
//! training loop, evaluation and export. The model and the forward blend come
//! from the `realdenoise` library; nothing here copies them.

pub mod batch;
pub mod checkpoint;
pub mod cpu_time;
pub mod curves;
pub mod degradations;
pub mod ema;
pub mod eval;
pub mod export;
pub mod metrics;
pub mod data;
pub mod noise;
pub mod throughput;
pub mod train;
