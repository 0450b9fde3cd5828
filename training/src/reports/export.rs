//! `export`: the EMA weights of a run as a `.rdnz` file (the format of
//! `realdenoise::weights`, f16) plus its model card ([`super::card`]).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::backend::NdArray;
use realdenoise::weights::{to_bytes, TrainingMetadata};
use realdenoise::SamplerKind;

use super::card::{describe_history, ModelCard, DATA_DESCRIPTION, NOISE_DESCRIPTION};
use super::lineage::RunLineage;
use crate::train::checkpoint;
use crate::train::TrainConfig;

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
    let lineage = RunLineage::trace(&args.run, &config, &state)?;
    let hardware = args.hardware.clone().unwrap_or_else(|| describe_history(&state));
    let metadata = TrainingMetadata {
        trained: true,
        data: DATA_DESCRIPTION.into(),
        noise_model: NOISE_DESCRIPTION.into(),
        iterations: lineage.total_steps(),
        default_steps: args.default_steps,
        default_sampler: args.default_sampler,
        notes: format!("{}; {hardware}; {:.1} h of training", lineage.describe_steps(), state.total_seconds() / 3600.0),
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
    let card = ModelCard { config: &config, state: &state, lineage: &lineage, best, metadata: &metadata, hardware: &hardware, size: bytes.len(), scores: scores.as_deref() }.render();
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

