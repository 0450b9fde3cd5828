//! `realdenoise`: denoise photos from the command line with the realdenoise
//! library on the CPU, a native GPU through wgpu, or CUDA.

mod bench;
mod denoise;
mod files;
mod info;
mod init_weights;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use realdenoise::{Ensemble, SamplerKind};

use realdenoise::device::BackendChoice;

#[derive(Parser, Debug)]
#[command(name = "realdenoise", version, about = "Remove real-world camera noise from photos, on your own machine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Denoise PNG, JPEG or WebP photos.
    #[command(after_help = INPUT_LIMITS)]
    Denoise(DenoiseArgs),
    /// Print the header of a weights file.
    Info {
        /// A `.rdnz` weights file.
        file: PathBuf,
    },
    /// Measure speed and memory per backend, image size and step count.
    Bench(BenchArgs),
    /// Write randomly initialised (untrained) weights, for development and tests.
    InitWeights {
        /// Where to write the `.rdnz` file.
        output: PathBuf,
        /// Seed of the random initialisation.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
}

#[derive(clap::Args, Debug)]
pub struct DenoiseArgs {
    /// Input images (PNG, JPEG or WebP; grey, RGB, with or without alpha, 8 or 16 bits;
    /// at most 65535 pixels per side and 200 megapixels).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output file (one input only); its extension picks the format.
    #[arg(short, long, conflicts_with = "out_dir", required_unless_present = "out_dir")]
    output: Option<PathBuf>,
    /// Output directory; each result keeps its input's file name.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Network evaluations per tile [default: from the weights].
    #[arg(long)]
    steps: Option<usize>,
    /// Sampler [default: from the weights].
    #[arg(long)]
    sampler: Option<SamplerKind>,
    /// Average each step's prediction over flipped (flips: 4 evaluations)
    /// or flipped and transposed (dihedral: 8) copies: slower, cleaner.
    #[arg(long, default_value_t = Ensemble::Off)]
    ensemble: Ensemble,
    /// Denoising strength, 0 (none) to 1 (full).
    #[arg(long, default_value_t = 1.0)]
    strength: f32,
    /// Weights file [default: the shipped weights in weights/].
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    backend: BackendChoice,
    /// Tile side in pixels [default: from the memory budget].
    #[arg(long)]
    tile: Option<usize>,
    /// Memory budget for one tile's activations, in MiB (1 to 1048576).
    #[arg(long, default_value_t = 1024, value_parser = memory_mib_parser())]
    memory_mib: u64,
    /// JPEG quality for .jpg outputs.
    #[arg(long, default_value_t = 95, value_parser = clap::value_parser!(u8).range(1..=100))]
    jpeg_quality: u8,
    /// Overwrite existing output files (inputs are never overwritten).
    #[arg(long)]
    force: bool,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Backends to measure, repeatable or comma-separated [default: every backend that works here].
    #[arg(long, value_enum, value_delimiter = ',')]
    backend: Vec<bench::BenchBackend>,
    /// Image sizes WIDTHxHEIGHT, comma-separated [default: 256x256,1024x1024,2048x2048].
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<bench::Size>,
    /// Step counts, comma-separated [default: 1 and the weights' default].
    #[arg(long, value_delimiter = ',')]
    steps: Vec<usize>,
    /// Floating-point types, comma-separated (f16/bf16 on GPU backends) [default: f32].
    #[arg(long, value_enum, value_delimiter = ',')]
    precision: Vec<bench::Precision>,
    /// Timed runs per configuration [default: 5 on a GPU; on the CPU 3 up to 256x256, 1 above; 1 on a software wgpu adapter].
    #[arg(long)]
    repeats: Option<usize>,
    /// Untimed warm-up runs per configuration [default: 1 on a GPU and up to 256x256, else 0].
    #[arg(long)]
    warmup: Option<usize>,
    /// Weights file [default: the shipped weights in weights/].
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Tile side in pixels [default: from the memory budget].
    #[arg(long)]
    tile: Option<usize>,
    /// Memory budget for one tile's activations, in MiB (1 to 1048576).
    #[arg(long, default_value_t = 1024, value_parser = memory_mib_parser())]
    memory_mib: u64,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the report as a markdown table here.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Run configurations that a software GPU adapter would take very long for.
    #[arg(long)]
    allow_slow: bool,
    /// Write burn's reference input and outputs (.npy) for the PyTorch port into DIR, then stop.
    #[arg(long, value_name = "DIR")]
    reference_dump: Option<PathBuf>,
    /// Measure one configuration in this process and print it as one JSON line (used by the parent run).
    #[arg(long, hide = true)]
    single: bool,
    /// Time single network evaluations on the CPU, driven over stdin/stdout (bench/onnx/native.py).
    #[arg(long, hide = true)]
    network_worker: bool,
}

/// The inputs `denoise` accepts, for its `--help` (the values of
/// [`files::MAX_SIDE`] and [`files::MAX_PIXELS`]; a test checks they agree).
const INPUT_LIMITS: &str = "Inputs: PNG, JPEG (baseline, progressive, CMYK) or WebP; grey, grey+alpha, palette, RGB or RGBA, \
8 or 16 bits per channel (16-bit PNGs stay 16-bit in PNG outputs). At most 65535 pixels per side and 200 megapixels; \
WebP outputs at most 16383 pixels per side. EXIF orientation is applied to the pixels; ICC profiles and EXIF data are \
copied to the output. Animated images: only the first frame is used.";

/// The largest `--memory-mib`: 1 TiB.
pub const MAX_MEMORY_MIB: u64 = 1 << 20;

fn memory_mib_parser() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(1..=MAX_MEMORY_MIB)
}

/// `--memory-mib` in bytes.
pub fn memory_budget_bytes(mib: u64) -> anyhow::Result<usize> {
    mib.checked_mul(1 << 20)
        .and_then(|bytes| usize::try_from(bytes).ok())
        .ok_or_else(|| anyhow::anyhow!("--memory-mib {mib} does not fit this machine's address space"))
}

/// An error and its causes, each once: a cause whose text its parent
/// already quotes (a typed error that prints its io::Error) is not repeated.
fn describe(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

/// Mesa's implicit Vulkan layer `VK_LAYER_MESA_device_select` connects to
/// Wayland to find the GPU of the desktop session, and libwayland prints
/// `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` to
/// stderr each time a Vulkan instance starts on a machine without one
/// (measured: twice for the backend probe, twice more for burn's device).
/// Without a runtime directory or an X display there is no session to
/// select for, so the layer is switched off through its documented
/// `NODEVICE_SELECT` variable, unless the user chose a device with it or
/// with `MESA_VK_DEVICE_SELECT`. The GPU burn uses does not change: it asks
/// wgpu for the high-performance adapter, whatever the layer's order.
fn quiet_headless_vulkan() {
    let has_runtime_dir = std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|dir| std::path::Path::new(&dir).is_dir());
    let user_chose = ["NODEVICE_SELECT", "MESA_VK_DEVICE_SELECT"].iter().any(|name| std::env::var_os(name).is_some());
    if !has_runtime_dir && std::env::var_os("DISPLAY").is_none() && !user_chose {
        // Called first thing in main, before any thread exists.
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

fn main() -> ExitCode {
    quiet_headless_vulkan();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Denoise(args) => denoise::run(args),
        Command::Info { file } => info::run(&file),
        Command::Bench(args) => bench::run(args),
        Command::InitWeights { output, seed, force } => init_weights::run(&output, seed, force),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", describe(&error));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_states_the_limits_the_code_enforces() {
        assert!(INPUT_LIMITS.contains(&format!("{} pixels per side and {} megapixels", files::MAX_SIDE, files::MAX_PIXELS / 1_000_000)));
        assert!(INPUT_LIMITS.contains(&format!("WebP outputs at most {} pixels per side.", files::WEBP_MAX_SIDE)));
    }

    #[test]
    fn a_repeated_cause_is_printed_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let text = io.to_string();
        let error = anyhow::Error::new(io).context(format!("cannot read x: {text}")).context("cannot load");
        assert_eq!(describe(&error), format!("cannot load: cannot read x: {text}"));
    }

    #[test]
    fn memory_budgets_convert_exactly() {
        assert_eq!(memory_budget_bytes(1024).unwrap(), 1 << 30);
        assert_eq!(memory_budget_bytes(MAX_MEMORY_MIB).unwrap(), 1 << 40);
    }
}
