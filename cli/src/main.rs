//! `realdenoise`: denoise photos from the command line with the realdenoise
//! library on the CPU, a native GPU through wgpu, or CUDA.

mod backend;
mod bench;
mod denoise;
mod files;
mod info;
mod init_weights;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use realdenoise::{Ensemble, SamplerKind};

use crate::backend::BackendChoice;

#[derive(Parser, Debug)]
#[command(name = "realdenoise", version, about = "Remove real-world camera noise from photos, on your own machine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Denoise PNG, JPEG or WebP photos.
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
    /// Input images (PNG, JPEG or WebP; 8-bit RGB or RGBA).
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
    /// Memory budget for one tile's activations, in MiB.
    #[arg(long, default_value_t = 1024)]
    memory_mib: usize,
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
    /// Memory budget for one tile's activations, in MiB.
    #[arg(long, default_value_t = 1024)]
    memory_mib: usize,
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
}

fn main() -> ExitCode {
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
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
