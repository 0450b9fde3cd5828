//! `realdenoise init-weights`: untrained weights for development and tests.

use std::path::Path;

use anyhow::{bail, Context, Result};
use burn::backend::NdArray;
use burn::tensor::backend::Backend;
use realdenoise::weights::{to_bytes, TrainingMetadata};
use realdenoise::UNetConfig;

pub fn run(output: &Path, seed: u64, force: bool) -> Result<()> {
    if output.exists() && !force {
        bail!("{} already exists; pass --force to overwrite it", output.display());
    }
    let device = Default::default();
    NdArray::<f32>::seed(&device, seed);
    let config = UNetConfig::new();
    let model = config.init::<NdArray>(&device)?;
    let bytes = to_bytes(&model, &config, &TrainingMetadata::untrained());
    std::fs::write(output, &bytes).with_context(|| format!("cannot write {}", output.display()))?;
    println!("wrote {} ({} bytes, untrained, seed {seed})", output.display(), bytes.len());
    Ok(())
}
