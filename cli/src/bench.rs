//! `realdenoise bench`: wall time, time per step and megapixel, achieved
//! FLOP/s and peak memory of the denoising pipeline, per backend, image size
//! and step count; JSON for machines and a markdown table for people.
//!
//! Every configuration runs in a child process of this same binary (the
//! hidden `bench --single` mode), so the peak resident set size it reports
//! (`VmHWM` of `/proc/self/status`, which only ever grows within a process)
//! belongs to that configuration alone. GPU memory comes from cubecl's memory
//! statistics for the device (bytes reserved by its memory pools, which only
//! grow during a run, so the value read at the end is the run's high-water mark).
//!
//! `bench --reference-dump DIR` writes a fixed, seeded input and burn's
//! CPU (f32) outputs as `.npy` files for the PyTorch reference
//! (`bench/pytorch/verify.py`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::tensor::backend::Backend;
use burn::tensor::{Element, Tensor, TensorData};
use image::{Rgba, RgbaImage};
use realdenoise::denoiser::{block_on, denoise_in_place, Unobserved};
use realdenoise::diffusion::Predictor;
use realdenoise::tiling::{PlanarImage, TileGrid};
use realdenoise::{DenoiseOptions, Denoiser, SamplerKind};
use serde::{Deserialize, Serialize};

use realdenoise::device::{max_buffer_bytes, pool_bytes, resolve_here, wgpu_adapter_name, BackendChoice};
use crate::BenchArgs;

/// A backend the benchmark can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchBackend {
    /// CPU (burn ndarray).
    Cpu,
    /// wgpu (Vulkan, Metal, DX12; burn fusion on).
    Wgpu,
    /// CUDA (needs the `cuda` cargo feature; burn fusion on).
    Cuda,
}

impl BenchBackend {
    fn name(self) -> &'static str {
        match self {
            BenchBackend::Cpu => "cpu",
            BenchBackend::Wgpu => "wgpu",
            BenchBackend::Cuda => "cuda",
        }
    }
}

/// Floating-point type of weights and activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    F16,
    Bf16,
}

impl Precision {
    fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
        }
    }
}

/// One measured configuration (the output of `bench --single`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measurement {
    pub backend: String,
    pub precision: String,
    /// The adapter or device, in words.
    pub device: String,
    pub width: usize,
    pub height: usize,
    pub steps: usize,
    pub sampler: String,
    pub tile_size: usize,
    pub tiles: usize,
    pub warmup: usize,
    /// Wall time of every timed run, seconds (whole pipeline: tiling,
    /// upload, sampler loop, read-back, blending).
    pub times_s: Vec<f64>,
    pub median_s: f64,
    pub min_s: f64,
    pub max_s: f64,
    /// (max - min) / median, in percent.
    pub spread_pct: f64,
    /// Median time / steps / megapixels of the image.
    pub s_per_step_per_mp: f64,
    /// FLOPs of one image as run: every tile, padded to the size multiple,
    /// overlaps included, times steps.
    pub executed_flops: f64,
    /// FLOPs the image alone needs: width * height * flops_per_pixel * steps.
    pub useful_flops: f64,
    /// executed_flops / median_s, in GFLOP/s.
    pub achieved_gflops: f64,
    /// Peak resident set size of the measuring process (VmHWM), MiB.
    pub peak_rss_mib: Option<f64>,
    /// GPU memory reserved by burn's memory pools at the end of the runs, MiB.
    pub gpu_reserved_mib: Option<f64>,
    /// GPU memory held by live tensors at the end of the runs, MiB.
    pub gpu_in_use_mib: Option<f64>,
}

/// A configuration that was not run, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Skipped {
    pub backend: String,
    pub precision: String,
    pub width: usize,
    pub height: usize,
    pub steps: usize,
    pub reason: String,
}

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub tool: String,
    pub version: String,
    pub machine: Machine,
    pub weights: String,
    pub trained_weights: bool,
    pub parameters: usize,
    pub flops_per_pixel: f64,
    pub default_steps: usize,
    pub results: Vec<Measurement>,
    pub skipped: Vec<Skipped>,
}

/// What the numbers were measured on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cpu: String,
    pub logical_cores: usize,
    pub memory_gib: Option<f64>,
    /// 1-minute load average before and after the benchmark (Linux).
    pub load_before: Option<f64>,
    pub load_after: Option<f64>,
}

/// A `WIDTHxHEIGHT` image size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub width: usize,
    pub height: usize,
}

impl std::str::FromStr for Size {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (width, height) = text
            .split_once(['x', 'X'])
            .ok_or_else(|| format!("size '{text}' is not WIDTHxHEIGHT"))?;
        let parse = |part: &str| {
            part.trim()
                .parse::<usize>()
                .ok()
                .filter(|&value| value > 0)
                .ok_or_else(|| format!("size '{text}': '{part}' is not a positive integer"))
        };
        Ok(Size { width: parse(width)?, height: parse(height)? })
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

impl Size {
    fn pixels(self) -> usize {
        self.width * self.height
    }
}

/// Images up to this many pixels are "small": warm-up and three runs by default.
const SMALL_IMAGE: usize = 256 * 256;

pub fn run(args: BenchArgs) -> Result<()> {
    if let Some(directory) = &args.reference_dump {
        return reference_dump(&args, directory);
    }
    if args.single {
        return single(&args);
    }
    if args.network_worker {
        return network_worker(&args);
    }
    parent(&args)
}

fn weights_path(args: &BenchArgs) -> Result<PathBuf> {
    match &args.weights {
        Some(path) => Ok(path.clone()),
        None => crate::denoise::default_weights(),
    }
}

/// Runs every configuration in a child process and reports.
fn parent(args: &BenchArgs) -> Result<()> {
    let weights = weights_path(args)?;
    let bytes = realdenoise::weights::read_file(&weights)?;
    let (header, _) = realdenoise::weights::read_header(&bytes)?;
    let default_steps = header.training.default_steps;
    let steps_list: Vec<usize> = if args.steps.is_empty() {
        let mut list = vec![1, default_steps];
        list.dedup();
        list
    } else {
        args.steps.clone()
    };
    if steps_list.contains(&0) {
        bail!("--steps must be at least 1");
    }
    let sizes: Vec<Size> = if args.sizes.is_empty() {
        vec![
            Size { width: 256, height: 256 },
            Size { width: 1024, height: 1024 },
            Size { width: 2048, height: 2048 },
        ]
    } else {
        args.sizes.clone()
    };
    let backends = if args.backend.is_empty() { available_backends() } else { args.backend.clone() };
    let precisions = if args.precision.is_empty() { vec![Precision::F32] } else { args.precision.clone() };

    let machine_before = load_average();
    let mut results = Vec::new();
    let mut skipped = Vec::new();
    let exe = std::env::current_exe().context("cannot find this executable to run the measurements")?;
    for &backend in &backends {
        let software = backend == BenchBackend::Wgpu && wgpu_is_software();
        for &precision in &precisions {
            for &size in &sizes {
                for &steps in &steps_list {
                    let skip = |reason: String| Skipped {
                        backend: backend.name().into(),
                        precision: precision.name().into(),
                        width: size.width,
                        height: size.height,
                        steps,
                        reason,
                    };
                    if let Some(reason) = unsupported(backend, precision) {
                        skipped.push(skip(reason));
                        continue;
                    }
                    if software && !args.allow_slow && (size.pixels() > SMALL_IMAGE || steps > 1) {
                        skipped.push(skip(
                            "wgpu runs on a software adapter here (e.g. lavapipe, ~0.1 GFLOP/s): only 256x256 with 1 step is run; pass --allow-slow to run it anyway".into(),
                        ));
                        continue;
                    }
                    let small = size.pixels() <= SMALL_IMAGE;
                    let gpu = backend == BenchBackend::Cuda || (backend == BenchBackend::Wgpu && !software);
                    // A software adapter needs minutes per 256x256 run: one warm-up
                    // (shader compilation, autotune) and one timed run.
                    let warmup = args.warmup.unwrap_or(if small || gpu || software { 1 } else { 0 });
                    let repeats = args.repeats.unwrap_or(if gpu { 5 } else if small && !software { 3 } else { 1 });
                    eprintln!(
                        "bench: {} {} {size} steps {steps}: {warmup} warm-up + {repeats} timed run(s)",
                        backend.name(),
                        precision.name()
                    );
                    let mut command = Command::new(&exe);
                    command
                        .arg("bench")
                        .arg("--single")
                        .args(["--backend", backend.name()])
                        .args(["--precision", precision.name()])
                        .args(["--sizes", &size.to_string()])
                        .args(["--steps", &steps.to_string()])
                        .args(["--repeats", &repeats.to_string()])
                        .args(["--warmup", &warmup.to_string()])
                        .arg("--weights")
                        .arg(&weights)
                        .args(["--memory-mib", &args.memory_mib.to_string()]);
                    if let Some(tile) = args.tile {
                        command.args(["--tile", &tile.to_string()]);
                    }
                    let output = command.output().context("cannot start a measuring child process")?;
                    if !output.status.success() {
                        let reason = child_failure(&String::from_utf8_lossy(&output.stderr));
                        eprintln!("bench:   failed: {reason}");
                        skipped.push(skip(format!("failed: {reason}")));
                        continue;
                    }
                    let stdout = String::from_utf8_lossy(&output.stdout);
                    let line = stdout.lines().rev().find(|line| line.starts_with('{')).context("the measuring process printed no result")?;
                    let measurement: Measurement = serde_json::from_str(line).context("cannot parse a measurement")?;
                    eprintln!(
                        "bench:   median {:.3} s, {:.2} GFLOP/s, peak RSS {}",
                        measurement.median_s,
                        measurement.achieved_gflops,
                        measurement.peak_rss_mib.map_or("n/a".into(), |mib| format!("{mib:.0} MiB"))
                    );
                    results.push(measurement);
                }
            }
        }
    }
    let report = Report {
        tool: "realdenoise bench".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        machine: Machine {
            cpu: cpu_model(),
            logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib: memory_gib(),
            load_before: machine_before,
            load_after: load_average(),
        },
        weights: weights.display().to_string(),
        trained_weights: header.training.trained,
        parameters: header.parameter_count(),
        flops_per_pixel: header.model.flops_per_pixel(),
        default_steps,
        results,
        skipped,
    };
    let json = serde_json::to_string_pretty(&report).expect("the report serialises");
    let markdown = markdown(&report);
    if let Some(path) = &args.json {
        std::fs::write(path, format!("{json}\n")).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.markdown {
        std::fs::write(path, &markdown).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json.is_none() && args.markdown.is_none() {
        println!("{json}");
    }
    eprintln!("{markdown}");
    Ok(())
}

/// A markdown table of the report.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Weights: `{}` ({}; {} parameters, {:.1} GFLOP per megapixel per step). CPU: {} ({} logical cores{}). Load average before/after: {}/{}.\n\n",
        report.weights,
        if report.trained_weights { "trained" } else { "untrained" },
        report.parameters,
        report.flops_per_pixel * 1e6 / 1e9,
        report.machine.cpu,
        report.machine.logical_cores,
        report.machine.memory_gib.map_or(String::new(), |gib| format!(", {gib:.0} GiB")),
        report.machine.load_before.map_or("n/a".into(), |l| format!("{l:.2}")),
        report.machine.load_after.map_or("n/a".into(), |l| format!("{l:.2}")),
    ));
    out.push_str("| backend | precision | image | steps | tiles (side) | runs | median s/image | spread (min–max) | s/step/MP | GFLOP/s | peak RSS MiB | GPU MiB |\n");
    out.push_str("| --- | --- | --- | ---: | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |\n");
    for m in &report.results {
        out.push_str(&format!(
            "| {} | {} | {}x{} | {} | {} ({}) | {}+{} | {:.3} | {:.3}–{:.3} ({:.1}%) | {:.3} | {:.2} | {} | {} |\n",
            m.backend,
            m.precision,
            m.width,
            m.height,
            m.steps,
            m.tiles,
            m.tile_size,
            m.warmup,
            m.times_s.len(),
            m.median_s,
            m.min_s,
            m.max_s,
            m.spread_pct,
            m.s_per_step_per_mp,
            m.achieved_gflops,
            m.peak_rss_mib.map_or("n/a".into(), |v| format!("{v:.0}")),
            m.gpu_reserved_mib.map_or("n/a".into(), |v| format!("{v:.0}")),
        ));
    }
    if !report.skipped.is_empty() {
        out.push_str("\nNot run:\n\n");
        for s in &report.skipped {
            out.push_str(&format!("- {} {} {}x{} steps {}: {}\n", s.backend, s.precision, s.width, s.height, s.steps, s.reason));
        }
    }
    out
}

/// Why a measuring child failed, from its standard error: a panic's location
/// and message when it panicked (Rust's backtrace hint comes after them and
/// says nothing), else the last non-empty line.
fn child_failure(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|line| !line.is_empty()).collect();
    if let Some(at) = lines.iter().position(|line| line.contains("panicked at")) {
        let message = lines.get(at + 1).filter(|line| !line.starts_with("note:") && !line.starts_with("stack backtrace"));
        return match message {
            Some(message) => format!("{} {message}", lines[at]),
            None => lines[at].to_string(),
        };
    }
    lines.last().map_or_else(|| "failed without a message".to_string(), |line| line.to_string())
}

/// Why `precision` cannot run on `backend`, if it cannot.
fn unsupported(backend: BenchBackend, precision: Precision) -> Option<String> {
    match (backend, precision) {
        (_, Precision::F32) => None,
        (BenchBackend::Cpu, _) => Some("the ndarray CPU backend computes in f32 (or f64) only".into()),
        (BenchBackend::Wgpu, Precision::Bf16) => Some("WGSL has no bf16".into()),
        (BenchBackend::Wgpu, Precision::F16) => None,
        (BenchBackend::Cuda, _) => None,
    }
}

/// Every backend that works on this machine, in this build.
fn available_backends() -> Vec<BenchBackend> {
    let mut backends = vec![BenchBackend::Cpu];
    if resolve_here(BackendChoice::Wgpu, false).is_ok() {
        backends.push(BenchBackend::Wgpu);
    }
    if resolve_here(BackendChoice::Cuda, cfg!(feature = "cuda")).is_ok() {
        backends.push(BenchBackend::Cuda);
    }
    backends
}

/// Whether the adapter wgpu would use is a software rasteriser.
fn wgpu_is_software() -> bool {
    resolve_here(BackendChoice::Wgpu, false).is_ok_and(|resolution| resolution.warning.is_some())
}

/// The hidden `bench --single` mode: one configuration, one JSON line on stdout.
fn single(args: &BenchArgs) -> Result<()> {
    let [backend] = args.backend[..] else { bail!("--single takes exactly one --backend") };
    let [size] = args.sizes[..] else { bail!("--single takes exactly one --sizes") };
    let [steps] = args.steps[..] else { bail!("--single takes exactly one --steps") };
    let precision = match args.precision[..] {
        [] => Precision::F32,
        [precision] => precision,
        _ => bail!("--single takes at most one --precision"),
    };
    if let Some(reason) = unsupported(backend, precision) {
        bail!("{reason}");
    }
    let config = SingleConfig {
        size,
        steps,
        warmup: args.warmup.unwrap_or(1),
        repeats: args.repeats.unwrap_or(3).max(1),
        tile: args.tile,
        memory_mib: args.memory_mib,
        weights: weights_path(args)?,
        precision,
    };
    let measurement = match (backend, precision) {
        (BenchBackend::Cpu, _) => measure::<burn::backend::NdArray>(&config, &Default::default(), "cpu", cpu_model(), |_| None, |_| None)?,
        (BenchBackend::Wgpu, Precision::F16) => {
            measure::<burn::backend::Wgpu<half::f16>>(&config, &Default::default(), "wgpu", wgpu_adapter_name(), pool_bytes::<cubecl::wgpu::WgpuRuntime>, |device| Some(max_buffer_bytes::<cubecl::wgpu::WgpuRuntime>(device)))?
        }
        (BenchBackend::Wgpu, _) => {
            measure::<burn::backend::Wgpu>(&config, &Default::default(), "wgpu", wgpu_adapter_name(), pool_bytes::<cubecl::wgpu::WgpuRuntime>, |device| Some(max_buffer_bytes::<cubecl::wgpu::WgpuRuntime>(device)))?
        }
        #[cfg(feature = "cuda")]
        (BenchBackend::Cuda, Precision::F32) => {
            measure::<burn::backend::Cuda>(&config, &Default::default(), "cuda", "CUDA device 0".into(), pool_bytes::<cubecl::cuda::CudaRuntime>, |device| Some(max_buffer_bytes::<cubecl::cuda::CudaRuntime>(device)))?
        }
        #[cfg(feature = "cuda")]
        (BenchBackend::Cuda, Precision::F16) => {
            measure::<burn::backend::Cuda<half::f16>>(&config, &Default::default(), "cuda", "CUDA device 0".into(), pool_bytes::<cubecl::cuda::CudaRuntime>, |device| Some(max_buffer_bytes::<cubecl::cuda::CudaRuntime>(device)))?
        }
        #[cfg(feature = "cuda")]
        (BenchBackend::Cuda, Precision::Bf16) => {
            measure::<burn::backend::Cuda<half::bf16>>(&config, &Default::default(), "cuda", "CUDA device 0".into(), pool_bytes::<cubecl::cuda::CudaRuntime>, |device| Some(max_buffer_bytes::<cubecl::cuda::CudaRuntime>(device)))?
        }
        #[cfg(not(feature = "cuda"))]
        (BenchBackend::Cuda, _) => {
            bail!("this build has no CUDA support: rebuild with `cargo build --release -p realdenoise-cli --features cuda`")
        }
    };
    println!("{}", serde_json::to_string(&measurement).expect("a measurement serialises"));
    Ok(())
}

struct SingleConfig {
    size: Size,
    steps: usize,
    warmup: usize,
    repeats: usize,
    tile: Option<usize>,
    memory_mib: u64,
    weights: PathBuf,
    precision: Precision,
}

/// A photo-like 8-bit test image: gradients, edges and seeded noise.
fn synthetic_photo(width: usize, height: usize, seed: u64) -> RgbaImage {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    };
    RgbaImage::from_fn(width as u32, height as u32, |x, y| {
        let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
        let edge = if (x / 37 + y / 29) % 2 == 0 { 40.0 } else { 0.0 };
        let mut pixel = [0u8; 4];
        for (channel, value) in pixel.iter_mut().take(3).enumerate() {
            let base = 60.0 + 120.0 * ((fx + 0.3 * channel as f32 + 0.5 * fy) % 1.0) + edge;
            *value = (base + 40.0 * noise()).clamp(0.0, 255.0) as u8;
        }
        pixel[3] = 255;
        Rgba(pixel)
    })
}

fn measure<B: Backend>(
    config: &SingleConfig,
    device: &B::Device,
    backend: &str,
    device_name: String,
    gpu_memory: impl Fn(&B::Device) -> Option<(u64, u64)>,
    max_buffer_bytes: impl Fn(&B::Device) -> Option<usize>,
) -> Result<Measurement> {
    let bytes = realdenoise::weights::read_file(&config.weights)?;
    let denoiser = Denoiser::<B>::from_bytes(&bytes, device)
        .with_context(|| format!("cannot load weights {}", config.weights.display()))?;
    if config.precision != Precision::F32 && !B::supports_dtype(device, B::FloatElem::dtype()) {
        bail!("{} does not support {}", device_name, config.precision.name());
    }
    let defaults = denoiser.default_options();
    let options = DenoiseOptions {
        steps: config.steps,
        tile_size: config.tile,
        memory_budget: crate::memory_budget_bytes(config.memory_mib)?,
        max_buffer_bytes: max_buffer_bytes(device),
        ..defaults
    };
    let Size { width, height } = config.size;
    let image = synthetic_photo(width, height, 7);
    let model_config = denoiser.config().clone();
    let tile_size = denoiser.tile_size(&options);
    let grid = TileGrid::new(width, height, tile_size, options.overlap, model_config.size_multiple())?;
    let multiple = model_config.size_multiple();
    let executed_pixels: usize = grid
        .tiles()
        .map(|tile| tile.x.len().div_ceil(multiple) * multiple * tile.y.len().div_ceil(multiple) * multiple)
        .sum();
    let schedule = realdenoise::Schedule::new(model_config.timesteps, options.steps, options.strength)?;
    let evaluations = schedule.len();
    let flops_per_pixel = model_config.flops_per_pixel();

    let run_once = || -> Result<f64> {
        let started = Instant::now();
        let result = block_on(denoiser.denoise(&image, &options, &mut Unobserved))?;
        let elapsed = started.elapsed().as_secs_f64();
        std::hint::black_box(result);
        Ok(elapsed)
    };
    for _ in 0..config.warmup {
        run_once()?;
    }
    let mut times = Vec::with_capacity(config.repeats);
    for _ in 0..config.repeats {
        times.push(run_once()?);
    }
    let memory = gpu_memory(device);
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = if sorted.len() % 2 == 1 {
        sorted[sorted.len() / 2]
    } else {
        (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2.0
    };
    let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
    let megapixels = (width * height) as f64 / 1e6;
    let executed_flops = executed_pixels as f64 * flops_per_pixel * evaluations as f64;
    let mib = |bytes: u64| bytes as f64 / (1u64 << 20) as f64;
    Ok(Measurement {
        backend: backend.into(),
        precision: config.precision.name().into(),
        device: device_name,
        width,
        height,
        steps: evaluations,
        sampler: options.sampler.to_string(),
        tile_size,
        tiles: grid.len(),
        warmup: config.warmup,
        median_s: median,
        min_s: min,
        max_s: max,
        spread_pct: if median > 0.0 { 100.0 * (max - min) / median } else { 0.0 },
        s_per_step_per_mp: median / evaluations as f64 / megapixels,
        executed_flops,
        useful_flops: (width * height) as f64 * flops_per_pixel * evaluations as f64,
        achieved_gflops: executed_flops / median / 1e9,
        peak_rss_mib: peak_rss_kib().map(|kib| kib as f64 / 1024.0),
        gpu_reserved_mib: memory.map(|(reserved, _)| mib(reserved)),
        gpu_in_use_mib: memory.map(|(_, in_use)| mib(in_use)),
        times_s: times,
    })
}

/// `VmHWM` (peak resident set size) of this process, KiB (Linux only).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

fn cpu_model() -> String {
    realdenoise::host::cpu_model().unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

fn memory_gib() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: f64 = info
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / (1024.0 * 1024.0))
}

fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

// ---------------------------------------------------------------------------
// Reference dump for the PyTorch port.

/// Shape of the reference input.
const DUMP_HEIGHT: usize = 64;
const DUMP_WIDTH: usize = 96;
/// Sampling steps of the reference sampler output.
const DUMP_STEPS: usize = 4;

#[derive(Serialize)]
struct DumpMeta<'a> {
    weights: String,
    shape: [usize; 4],
    t: usize,
    timesteps: usize,
    steps: usize,
    sampler: &'a str,
    strength: f32,
    schedule: Vec<(usize, usize)>,
    files: [&'a str; 4],
}

/// Writes `x_t.npy` (also the noisy input `y` of the sampler run), `t.npy`,
/// `network.npy` = S(x_t, t) and `sample4.npy` = the pipeline's 4-step
/// improved-sampler output (clamped to 0..1), all f32, computed on the CPU
/// backend, plus `meta.json`.
fn reference_dump(args: &BenchArgs, directory: &Path) -> Result<()> {
    type Cpu = burn::backend::NdArray<f32>;
    let weights = weights_path(args)?;
    let bytes = realdenoise::weights::read_file(&weights)?;
    let device = Default::default();
    let denoiser = Denoiser::<Cpu>::from_bytes(&bytes, &device)
        .with_context(|| format!("cannot load weights {}", weights.display()))?;
    std::fs::create_dir_all(directory).with_context(|| format!("cannot create {}", directory.display()))?;
    let config = denoiser.config().clone();
    let shape = [1, 3, DUMP_HEIGHT, DUMP_WIDTH];
    let count = shape.iter().product();
    let mut state: u64 = 0x5EED_1234_ABCD_0001;
    let x_t: Vec<f32> = (0..count)
        .map(|index| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state >> 40) as f32 / (1u64 << 24) as f32;
            let position = (index % (DUMP_HEIGHT * DUMP_WIDTH)) as f32 / (DUMP_HEIGHT * DUMP_WIDTH) as f32;
            (0.5 * position + 0.5 * noise).clamp(0.0, 1.0)
        })
        .collect();
    let t = config.timesteps / 2;
    let input = Tensor::<Cpu, 4>::from_data(TensorData::new(x_t.clone(), shape), &device);
    let network: Vec<f32> = denoiser.model().predict(input, t).into_data().convert::<f32>().into_vec().map_err(|e| anyhow::anyhow!("{e:?}"))?;

    let options = DenoiseOptions { steps: DUMP_STEPS, sampler: SamplerKind::Improved, strength: 1.0, ..denoiser.default_options() };
    let mut image = PlanarImage::new(DUMP_WIDTH, DUMP_HEIGHT, x_t.clone());
    block_on(denoise_in_place(denoiser.model(), &config, &device, &mut image, &options, &mut Unobserved))?;
    let schedule = realdenoise::Schedule::new(config.timesteps, DUMP_STEPS, 1.0)?;

    write_npy(&directory.join("x_t.npy"), &shape, &x_t)?;
    write_npy(&directory.join("t.npy"), &[1], &[t as f32])?;
    write_npy(&directory.join("network.npy"), &shape, &network)?;
    write_npy(&directory.join("sample4.npy"), &shape, &image.data)?;
    let meta = DumpMeta {
        weights: weights.display().to_string(),
        shape,
        t,
        timesteps: config.timesteps,
        steps: DUMP_STEPS,
        sampler: "improved",
        strength: 1.0,
        schedule: schedule.transitions().collect(),
        files: ["x_t.npy", "t.npy", "network.npy", "sample4.npy"],
    };
    std::fs::write(directory.join("meta.json"), serde_json::to_string_pretty(&meta).expect("serialises"))?;
    println!("wrote the reference (input {DUMP_WIDTH}x{DUMP_HEIGHT}, t = {t}, {DUMP_STEPS}-step improved sampler) to {}", directory.display());
    Ok(())
}

// ---------------------------------------------------------------------------
// Single network evaluations for the side-by-side with ONNX Runtime.

/// The hidden `bench --network-worker` mode that `bench/onnx/native.py`
/// drives, so that burn, ONNX Runtime and PyTorch take turns on one network
/// evaluation each: it loads the weights on the CPU backend (burn ndarray,
/// f32) and answers one command per line of stdin with one line on stdout.
///
/// - `eval WIDTH HEIGHT T INPUT [OUTPUT]`: evaluates `S(x_t, T)` once, with
///   `x_t` read from INPUT (raw little-endian f32, `[1, 3, HEIGHT, WIDTH]`;
///   read once per path and kept), and answers `ms MILLISECONDS`: the upload,
///   the forward pass and the read-back into host memory. With OUTPUT, the
///   result is then written there as raw little-endian f32.
/// - `quit` (or the end of stdin) stops.
///
/// It starts by printing `ready T` (the model's number of timesteps).
fn network_worker(args: &BenchArgs) -> Result<()> {
    use std::io::BufRead;
    type Cpu = burn::backend::NdArray<f32>;
    let weights = weights_path(args)?;
    let bytes = realdenoise::weights::read_file(&weights)?;
    let device = Default::default();
    let denoiser = Denoiser::<Cpu>::from_bytes(&bytes, &device)
        .with_context(|| format!("cannot load weights {}", weights.display()))?;
    let mut inputs: std::collections::HashMap<String, Vec<f32>> = Default::default();
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ready {}", denoiser.config().timesteps)?;
    stdout.flush()?;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] | ["quit"] => break,
            ["eval", width, height, t, input, output @ ..] if output.len() <= 1 => {
                let parse = |word: &str| word.parse::<usize>().with_context(|| format!("'{word}' in '{line}' is not a number"));
                let (width, height, t) = (parse(width)?, parse(height)?, parse(t)?);
                if !inputs.contains_key(*input) {
                    let raw = std::fs::read(input).with_context(|| format!("cannot read {input}"))?;
                    let values: Vec<f32> = raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                    inputs.insert(input.to_string(), values);
                }
                let x_t = inputs[*input].clone();
                if x_t.len() != 3 * width * height || t > denoiser.config().timesteps {
                    bail!("'{line}': {input} holds {} values, [1, 3, {height}, {width}] needs {}; T = {}", x_t.len(), 3 * width * height, denoiser.config().timesteps);
                }
                let started = Instant::now();
                let tensor = Tensor::<Cpu, 4>::from_data(TensorData::new(x_t, [1, 3, height, width]), &device);
                let result = denoiser.model().predict(tensor, t).into_data();
                let milliseconds = started.elapsed().as_secs_f64() * 1e3;
                if let [output] = output {
                    let values = result.convert::<f32>().into_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"))?;
                    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                    std::fs::write(output, raw).with_context(|| format!("cannot write {output}"))?;
                } else {
                    std::hint::black_box(result);
                }
                writeln!(stdout, "ms {milliseconds}")?;
                stdout.flush()?;
            }
            _ => bail!("unknown command '{line}' (expected 'eval WIDTH HEIGHT T INPUT [OUTPUT]' or 'quit')"),
        }
    }
    Ok(())
}

/// Writes a little-endian f32 `.npy` file (format version 1.0).
pub fn write_npy(path: &Path, shape: &[usize], values: &[f32]) -> Result<()> {
    assert_eq!(shape.iter().product::<usize>(), values.len(), "shape and values agree");
    let dims = match shape {
        [one] => format!("({one},)"),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {dims}, }}");
    // Magic (6) + version (2) + length (2) + header + newline: a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?,
    );
    file.write_all(b"\x93NUMPY\x01\x00")?;
    file.write_all(&(header.len() as u16).to_le_bytes())?;
    file.write_all(header.as_bytes())?;
    for value in values {
        file.write_all(&value.to_le_bytes())?;
    }
    file.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::child_failure;

    #[test]
    fn a_child_panic_is_reported_by_its_message_not_the_backtrace_hint() {
        let stderr = "error: XDG_RUNTIME_DIR is invalid\n\nthread 'main' (12) panicked at src/x.rs:3:5:\nbuffer too large: 160 MB > 128 MB\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(child_failure(stderr), "thread 'main' (12) panicked at src/x.rs:3:5: buffer too large: 160 MB > 128 MB");
        assert_eq!(child_failure("warning\nerror: out of memory\n\n"), "error: out of memory");
        assert_eq!(child_failure(""), "failed without a message");
        assert_eq!(child_failure("thread 'main' panicked at a.rs:1:1:\nnote: Some details are omitted"), "thread 'main' panicked at a.rs:1:1:");
    }
}
