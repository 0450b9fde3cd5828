//! `realdenoise denoise`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::tensor::backend::Backend;
use indicatif::{ProgressBar, ProgressStyle};
use realdenoise::checkout::repository_path;
use realdenoise::denoiser::{block_on, Callback, DEFAULT_MEMORY_BUDGET};
use realdenoise::{DenoiseOptions, Denoiser};

use crate::backend::{max_buffer_bytes, resolve, Resolved};
use crate::files::{check_input, identity, load, output_format, save};
use crate::DenoiseArgs;

/// Trained weights, then the untrained development file, in `weights/`.
const SHIPPED_WEIGHTS: [&str; 2] = ["realdenoise.rdnz", "realdenoise-untrained.rdnz"];

/// One input and where its result goes.
struct Job {
    input: PathBuf,
    output: PathBuf,
}

pub fn run(args: DenoiseArgs) -> Result<()> {
    let jobs = plan_jobs(&args)?;
    let weights_path = match &args.weights {
        Some(path) => path.clone(),
        None => default_weights()?,
    };
    let bytes = realdenoise::weights::read_file(&weights_path)?;
    let backend = resolve(args.backend)?;
    if !args.quiet {
        eprintln!("weights: {}  backend: {}", weights_path.display(), backend.name());
    }
    match backend {
        Resolved::Cpu => process::<burn::backend::NdArray>(&Default::default(), None, &bytes, &weights_path, &jobs, &args),
        Resolved::Wgpu => {
            let device = Default::default();
            let limit = max_buffer_bytes::<cubecl::wgpu::WgpuRuntime>(&device);
            process::<burn::backend::Wgpu>(&device, limit, &bytes, &weights_path, &jobs, &args)
        }
        #[cfg(feature = "cuda")]
        Resolved::Cuda => {
            let device = Default::default();
            let limit = max_buffer_bytes::<cubecl::cuda::CudaRuntime>(&device);
            process::<burn::backend::Cuda>(&device, limit, &bytes, &weights_path, &jobs, &args)
        }
        #[cfg(not(feature = "cuda"))]
        Resolved::Cuda => unreachable!("resolve() refuses CUDA in builds without it"),
    }
}

/// Where the shipped weights are: `$REALDENOISE_WEIGHTS_DIR`, else the
/// repository's `weights/` (see [`repository_path`]). Trained weights first.
pub fn default_weights() -> Result<PathBuf> {
    let directory = std::env::var_os("REALDENOISE_WEIGHTS_DIR").map(PathBuf::from).unwrap_or_else(|| repository_path("weights"));
    SHIPPED_WEIGHTS
        .iter()
        .map(|name| directory.join(name))
        .find(|path| path.exists())
        .with_context(|| {
            format!(
                "no weights found in {} (looked for {}); pass --weights FILE, or run `make weights` for untrained development weights",
                directory.display(),
                SHIPPED_WEIGHTS.join(", ")
            )
        })
}

/// Checks every output before any work starts: never an input, never an
/// existing file unless `--force`, never two results to one path.
fn plan_jobs(args: &DenoiseArgs) -> Result<Vec<Job>> {
    let jobs: Vec<Job> = match (&args.output, &args.out_dir) {
        (Some(output), None) => {
            if args.inputs.len() != 1 {
                bail!("-o/--output takes one input; for {} inputs use --out-dir DIR", args.inputs.len());
            }
            vec![Job { input: args.inputs[0].clone(), output: output.clone() }]
        }
        (None, Some(directory)) => {
            if !directory.is_dir() {
                bail!("output directory {} does not exist", directory.display());
            }
            args.inputs
                .iter()
                .map(|input| {
                    let name = input.file_name().with_context(|| format!("{} is not a file", input.display()))?;
                    Ok(Job { input: input.clone(), output: directory.join(name) })
                })
                .collect::<Result<_>>()?
        }
        _ => bail!("give either -o OUT or --out-dir DIR"),
    };
    let inputs: HashSet<PathBuf> = jobs.iter().map(|job| identity(&job.input)).collect();
    let mut outputs = HashSet::new();
    for job in &jobs {
        if !job.input.is_file() {
            bail!("input {} does not exist or is not a file", job.input.display());
        }
        check_input(&job.input)?;
        output_format(&job.output)?;
        let target = identity(&job.output);
        if inputs.contains(&target) {
            bail!("refusing to overwrite the input {} with its result: choose another output", job.output.display());
        }
        if !outputs.insert(target) {
            bail!("two inputs would both be written to {}", job.output.display());
        }
        if job.output.exists() && !args.force {
            bail!("{} already exists; pass --force to overwrite it", job.output.display());
        }
    }
    Ok(jobs)
}

fn process<B: Backend>(
    device: &B::Device,
    max_buffer_bytes: Option<usize>,
    bytes: &[u8],
    weights_path: &Path,
    jobs: &[Job],
    args: &DenoiseArgs,
) -> Result<()> {
    let denoiser = Denoiser::<B>::from_bytes(bytes, device)
        .with_context(|| format!("cannot load weights {}", weights_path.display()))?;
    if !denoiser.header().training.trained {
        eprintln!();
        eprintln!("WARNING: {} holds UNTRAINED, randomly initialised weights.", weights_path.display());
        eprintln!("WARNING: the output will NOT be denoised; it is for development and tests only.");
        eprintln!();
    }
    let defaults = denoiser.default_options();
    let options = DenoiseOptions {
        steps: args.steps.unwrap_or(defaults.steps),
        sampler: args.sampler.unwrap_or(defaults.sampler),
        ensemble: args.ensemble,
        strength: args.strength,
        tile_size: args.tile,
        memory_budget: args.memory_mib.checked_mul(1 << 20).unwrap_or(DEFAULT_MEMORY_BUDGET),
        max_buffer_bytes,
        ..defaults
    };
    for job in jobs {
        let image = load(&job.input)?;
        let bar = if args.quiet { ProgressBar::hidden() } else { ProgressBar::new(1000) };
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {percent:>3}% {msg} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(job.input.display().to_string());
        let started = Instant::now();
        let mut observer = Callback(|progress: realdenoise::Progress| {
            bar.set_position((progress.fraction * 1000.0) as u64);
            bar.set_message(format!("tile {}/{} step {}/{}", progress.tile, progress.tiles, progress.step, progress.steps));
            Ok(())
        });
        let result = block_on(denoiser.denoise(&image.pixels, &options, &mut observer))
            .with_context(|| format!("cannot denoise {}", job.input.display()))?;
        bar.finish_and_clear();
        save(&job.output, result, image.has_alpha, args.jpeg_quality)?;
        if !args.quiet {
            let (width, height) = image.pixels.dimensions();
            eprintln!(
                "{} -> {} ({width}x{height}, {} steps, {} sampler, {} ensemble, tile {} px, {:.2} s)",
                job.input.display(),
                job.output.display(),
                options.steps,
                options.sampler,
                options.ensemble,
                denoiser.tile_size(&options),
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
