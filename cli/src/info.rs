//! `realdenoise info`.

use std::path::Path;

use anyhow::{Context, Result};
use realdenoise::weights::{read_file, read_header, FORMAT_VERSION};

pub fn run(path: &Path) -> Result<()> {
    let bytes = read_file(path)?;
    let (header, _) = read_header(&bytes).with_context(|| format!("{} is not usable", path.display()))?;
    let model = &header.model;
    let training = &header.training;
    println!("file:           {} ({} bytes)", path.display(), bytes.len());
    println!("format:         realdenoise weights v{FORMAT_VERSION}, checksum ok");
    println!("architecture:   {}", header.architecture);
    println!("parameters:     {}", header.parameter_count());
    println!("tensors:        {}", header.tensors.len());
    println!("T (timesteps):  {}", model.timesteps);
    println!("base channels:  {}", model.base_channels);
    println!("multipliers:    {:?}", model.channel_multipliers);
    println!("blocks/level:   {}", model.blocks_per_level);
    println!("norm groups:    {}", model.norm_groups);
    println!("GFLOP/MP/step:  {:.1}", model.flops_per_pixel() * 1e-3);
    println!("trained:        {}", if training.trained { "yes" } else { "NO (random initialisation)" });
    println!("data:           {}", training.data);
    println!("noise model:    {}", training.noise_model);
    println!("iterations:     {}", training.iterations);
    println!("default steps:  {}", training.default_steps);
    println!("default sampler: {}", training.default_sampler.name());
    if !training.notes.is_empty() {
        println!("notes:          {}", training.notes);
    }
    Ok(())
}
