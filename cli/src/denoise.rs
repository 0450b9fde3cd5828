//! `realdenoise denoise`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::tensor::backend::Backend;
use indicatif::{ProgressBar, ProgressStyle};
use realdenoise::checkout::repository_path;
use image::ImageFormat;
use realdenoise::denoiser::{block_on, Callback};
use realdenoise::device::{self, max_buffer_bytes, resolve_here};
use realdenoise::{DenoiseOptions, Denoiser, Schedule};

use crate::files::{
    check_writable, identity, load, output_directory, output_format, probe, reduces_precision, save, LoadedImage,
    Pixels, SaveOptions, Sixteen, WEBP_MAX_SIDE,
};
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
    let resolution = resolve_here(args.backend, cfg!(feature = "cuda"))?;
    if let Some(warning) = &resolution.warning {
        eprintln!("warning: {warning}");
    }
    let backend = resolution.backend;
    if !args.quiet {
        eprintln!("weights: {}  backend: {}", weights_path.display(), backend.name());
    }
    match backend {
        device::Backend::Cpu => process::<burn::backend::NdArray>(&Default::default(), None, &bytes, &weights_path, &jobs, &args),
        device::Backend::Wgpu => {
            let device = Default::default();
            let limit = max_buffer_bytes::<cubecl::wgpu::WgpuRuntime>(&device);
            process::<burn::backend::Wgpu>(&device, Some(limit), &bytes, &weights_path, &jobs, &args)
        }
        #[cfg(feature = "cuda")]
        device::Backend::Cuda => {
            let device = Default::default();
            let limit = max_buffer_bytes::<cubecl::cuda::CudaRuntime>(&device);
            process::<burn::backend::Cuda>(&device, Some(limit), &bytes, &weights_path, &jobs, &args)
        }
        #[cfg(not(feature = "cuda"))]
        device::Backend::Cuda => unreachable!("resolve() refuses CUDA in builds without it"),
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

/// Checks every input and output before any work starts: inputs readable,
/// complete (JPEG) and within the size limits; outputs never an input,
/// never an existing file unless `--force`, never two results to one path,
/// and in a directory that exists and takes new files.
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
        let input = probe(&job.input)?;
        if output_format(&job.output)? == ImageFormat::WebP && input.width.max(input.height) > WEBP_MAX_SIDE {
            bail!(
                "{} is {}x{} pixels, but WebP stores at most {WEBP_MAX_SIDE} pixels per side: write {} as .png or .jpg",
                job.input.display(),
                input.width,
                input.height,
                job.output.display()
            );
        }
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
    let directories: HashSet<PathBuf> = jobs.iter().map(|job| output_directory(&job.output).to_path_buf()).collect();
    for directory in &directories {
        check_writable(directory)?;
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
        memory_budget: crate::memory_budget_bytes(args.memory_mib)?,
        max_buffer_bytes,
        ..defaults
    };
    let timesteps = denoiser.config().timesteps;
    let schedule = Schedule::new(timesteps, options.steps, options.strength).context("invalid --steps or --strength")?;
    if schedule.len() < options.steps && !schedule.is_empty() {
        let limit = if options.strength < 1.0 {
            format!("strength {} starts at timestep {} of the model's T = {timesteps}", options.strength, schedule.start())
        } else {
            format!("the model has T = {timesteps} timesteps")
        };
        eprintln!("warning: {} steps requested, but {limit}: capped at {} steps", options.steps, schedule.len());
    }
    for job in jobs {
        let LoadedImage { mut pixels, has_alpha, metadata, warnings } = load(&job.input)?;
        for warning in warnings {
            eprintln!("warning: {warning}");
        }
        let format = output_format(&job.output)?;
        if reduces_precision(&pixels, format) {
            eprintln!(
                "warning: {} has 16 bits per channel, but {:?} stores 8: {} is reduced to 8 bits (write .png to keep 16)",
                job.input.display(),
                format,
                job.output.display()
            );
        }
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
        let denoised = match &mut pixels {
            Pixels::Eight(image) => block_on(denoiser.denoise_in_place(image, &options, &mut observer)),
            Pixels::Sixteen(image) => block_on(denoiser.denoise_in_place(&mut Sixteen(image), &options, &mut observer)),
        };
        denoised.with_context(|| format!("cannot denoise {}", job.input.display()))?;
        bar.finish_and_clear();
        let (width, height) = pixels.dimensions();
        let save_options = SaveOptions { keep_alpha: has_alpha, jpeg_quality: args.jpeg_quality, overwrite: args.force };
        save(&job.output, pixels, &metadata, &save_options)?;
        if !args.quiet {
            eprintln!(
                "{} -> {} ({width}x{height}, {} steps, {} sampler, {} ensemble, tile {} px, {:.2} s)",
                job.input.display(),
                job.output.display(),
                schedule.len(),
                options.sampler,
                options.ensemble,
                denoiser.tile_size(&options),
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
