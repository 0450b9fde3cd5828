//! Training for realdenoise. The model and the forward blend come from the
//! `realdenoise` library; nothing here copies them. Four rooms:
//!
//! - [`data`]: fetching the photographs and noise profiles, building and
//!   loading the data set;
//! - [`noise`]: the camera-noise pipeline (noise profiles, the image
//!   processor both ways, the Bayer mosaic, the degradations built on it);
//! - [`train`]: the training loop (settings, batches, the optimisation step,
//!   EMA, validation, checkpoints, curves, benchmarks);
//! - [`reports`]: evaluation, metrics, export and the model card with the
//!   run's lineage.

pub mod data;
pub mod noise;
pub mod reports;
pub mod train;
