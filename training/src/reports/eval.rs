//! `eval`: PSNR and SSIM on the validation photos with seeded synthetic
//! camera noise at three levels, for the noisy input, our model under every
//! sampler / step count / strength asked for, and the classic baselines
//! (BM3D, FFDNet; run by training/baselines/run.py). Writes a markdown table,
//! JSON, and a figure of crops side by side.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use burn::backend::NdArray;
use image::{Rgb32FImage, RgbImage, RgbaImage};
use plotters::prelude::*;
use realdenoise::denoiser::{block_on, Unobserved};
use realdenoise::{DenoiseOptions, Denoiser, Ensemble, SamplerKind};
use serde::Serialize;

use crate::train::batch::centre_crop;
use crate::data::{self, Split};
use crate::noise::degradations::{Degradation, FixedLevel, NoiseVariant};
use crate::reports::metrics::{psnr, ssim};
use crate::noise::{BayerPattern, NoiseLevel};

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Weights to evaluate.
    #[arg(long, default_value = "weights/realdenoise.rdnz")]
    pub weights: PathBuf,
    /// Data directory made by fetch-data (its val/ photos are used).
    #[arg(long, default_value_os_t = data::default_out_dir())]
    pub data: PathBuf,
    /// Output directory (table, JSON, figure, the noisy/denoised images).
    #[arg(long, default_value = "docs/eval")]
    pub out: PathBuf,
    /// Centre crop side per photo (0 = whole photos).
    #[arg(long, default_value_t = 192)]
    pub crop: u32,
    /// Use at most this many validation photos.
    #[arg(long)]
    pub photos: Option<usize>,
    /// Step counts to score.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    pub steps: Vec<usize>,
    /// Strengths to score.
    #[arg(long, value_delimiter = ',', default_value = "1.0,0.8")]
    pub strengths: Vec<f32>,
    /// Geometric self-ensembles to score as well (off, flips, dihedral),
    /// with the improved sampler at full strength.
    #[arg(long, value_delimiter = ',', default_value = "dihedral")]
    pub ensembles: Vec<Ensemble>,
    /// Step counts to score the ensembles at.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub ensemble_steps: Vec<usize>,
    /// Also run the BM3D, FFDNet and MAXIM-3S baselines (training/baselines/).
    #[arg(long)]
    pub baselines: bool,
    /// Seed of the synthetic noise.
    #[arg(long, default_value_t = 2024)]
    pub seed: u64,
    /// The simulated camera: training (the image processor the model
    /// learns from) or unseen (bilinear demosaic, sRGB curve, JPEG 80-100;
    /// never in training).
    #[arg(long, value_enum, default_value_t = NoiseVariant::Training)]
    pub variant: NoiseVariant,
}

/// One scored output.
#[derive(Debug, Clone, Serialize)]
pub struct Score {
    pub photo: String,
    pub level: &'static str,
    pub method: String,
    pub psnr: f64,
    pub ssim: f64,
}

/// A validation crop and its noisy versions per level.
struct Case {
    name: String,
    clean: Rgb32FImage,
    noisy: Vec<(NoiseLevel, Rgb32FImage)>,
}

fn to_rgba(image: &Rgb32FImage) -> RgbaImage {
    let rgb = image::DynamicImage::ImageRgb32F(image.clone()).to_rgb8();
    image::DynamicImage::ImageRgb8(rgb).to_rgba8()
}

fn from_rgba(image: &RgbaImage) -> Rgb32FImage {
    image::DynamicImage::ImageRgba8(image.clone()).to_rgb32f()
}

fn noise_seed(seed: u64, photo: usize, level: NoiseLevel) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(photo as u64 * 16 + level as u64)
}

fn save(image: &Rgb32FImage, path: &Path) -> Result<()> {
    image::DynamicImage::ImageRgb32F(image.clone()).to_rgb8().save(path).with_context(|| format!("cannot write {}", path.display()))
}

/// One setting of our model that the table scores.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Setting {
    sampler: SamplerKind,
    steps: usize,
    strength: f32,
    ensemble: Ensemble,
}

impl Setting {
    fn plain(sampler: SamplerKind, steps: usize, strength: f32) -> Self {
        Self { sampler, steps, strength, ensemble: Ensemble::Off }
    }

    fn full_strength(self) -> bool {
        (self.strength - 1.0).abs() < 1e-6
    }

    /// The method's name in the table: "ours improved 4 steps" etc.
    fn name(self) -> String {
        let Setting { sampler, steps, strength, ensemble } = self;
        let mut name = format!("ours {sampler} {steps} step{}", if steps == 1 { "" } else { "s" });
        if !self.full_strength() {
            name += &format!(", strength {strength}");
        }
        if ensemble != Ensemble::Off {
            name += &format!(", {ensemble} ensemble (x{})", ensemble.evaluations());
        }
        name
    }
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let bytes = realdenoise::weights::read_file(&args.weights).with_context(|| format!("cannot load {}", args.weights.display()))?;
    let device = Default::default();
    let denoiser = Denoiser::<NdArray>::from_bytes(&bytes, &device)?;
    let header = denoiser.header().clone();
    if !header.training.trained {
        eprintln!("warning: {} holds UNTRAINED weights", args.weights.display());
    }
    let pairs_dir = args.out.join("pairs");
    let ours_dir = args.out.join("ours");
    for dir in [&pairs_dir, &ours_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let cases = load_cases(args)?;
    for case in &cases {
        save(&case.clean, &pairs_dir.join(format!("{}.clean.png", case.name)))?;
        for (level, noisy) in &case.noisy {
            save(noisy, &pairs_dir.join(format!("{}.{}.noisy.png", case.name, level.name())))?;
        }
    }
    let default_setting = Setting::plain(header.training.default_sampler, header.training.default_steps, 1.0);
    let mut scores = Vec::new();
    let mut outputs: Outputs = BTreeMap::new();
    score_model(&denoiser, &cases, &settings_grid(args), default_setting, &ours_dir, &mut scores, &mut outputs)?;
    if args.baselines {
        score_baselines(&cases, &pairs_dir, &args.out.join("baselines"), &mut scores, &mut outputs)?;
    }
    let summary = summary_text(args, cases.len(), header.training.iterations, &default_setting.name(), &scores);
    std::fs::write(args.out.join("results.md"), &summary).context("cannot write results.md")?;
    std::fs::write(args.out.join("results.json"), serde_json::to_string_pretty(&scores)?).context("cannot write results.json")?;
    figure(&cases, &outputs, &args.out.join("figure.png"))?;
    println!("{summary}");
    println!("wrote {}/results.md, results.json, figure.png", args.out.display());
    Ok(())
}

/// The images the figure shows, by photo, level and method.
type Outputs = BTreeMap<(String, &'static str, String), Rgb32FImage>;

/// Centre crops of the validation photos, each with seeded noise at every
/// level.
fn load_cases(args: &EvalArgs) -> Result<Vec<Case>> {
    let mut photos = data::load_split(&args.data, Split::Val)?;
    if let Some(n) = args.photos {
        photos.truncate(n);
    }
    if photos.is_empty() {
        bail!("no validation photos in {}", args.data.display());
    }
    Ok(photos
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let clean = image::DynamicImage::ImageRgb8(centre_crop(&p.image, args.crop)).to_rgb32f();
            let noisy = NoiseLevel::ALL
                .iter()
                .map(|&level| {
                    // The four Bayer patterns in turn over photos and levels:
                    // each level sees each pattern twice on eight photos.
                    let pattern = BayerPattern::ALL[(i + level as usize) % BayerPattern::ALL.len()];
                    let out = FixedLevel::with_pattern(level, pattern).through(args.variant).degrade(std::slice::from_ref(&clean), noise_seed(args.seed, i, level));
                    (level, out.into_iter().next().unwrap_or_else(|| clean.clone()))
                })
                .collect();
            Case { name: p.name.clone(), clean, noisy }
        })
        .collect())
}

/// Our model's settings to score. One step is the same prediction for both
/// samplers, so it is run once.
fn settings_grid(args: &EvalArgs) -> Vec<Setting> {
    let mut settings: Vec<Setting> = Vec::new();
    for &strength in &args.strengths {
        for &steps in &args.steps {
            for sampler in [SamplerKind::Improved, SamplerKind::Origin] {
                if steps == 1 && sampler == SamplerKind::Origin {
                    continue;
                }
                settings.push(Setting::plain(sampler, steps, strength));
            }
        }
    }
    for &ensemble in args.ensembles.iter().filter(|&&e| e != Ensemble::Off) {
        for &steps in &args.ensemble_steps {
            settings.push(Setting { ensemble, ..Setting::plain(SamplerKind::Improved, steps, 1.0) });
        }
    }
    settings
}

/// Scores the noisy input and our model at every setting; keeps the
/// default setting's outputs (saved) and the one-step ones for the figure.
fn score_model(
    denoiser: &Denoiser<NdArray>,
    cases: &[Case],
    settings: &[Setting],
    default_setting: Setting,
    ours_dir: &Path,
    scores: &mut Vec<Score>,
    outputs: &mut Outputs,
) -> Result<()> {
    let started = std::time::Instant::now();
    for case in cases {
        for (level, noisy) in &case.noisy {
            scores.push(Score { photo: case.name.clone(), level: level.name(), method: "noisy input".into(), psnr: psnr(noisy, &case.clean), ssim: ssim(noisy, &case.clean) });
            let input = to_rgba(noisy);
            for &setting in settings {
                let Setting { sampler, steps, strength, ensemble } = setting;
                let options = DenoiseOptions { steps, sampler, strength, ensemble, ..DenoiseOptions::default() };
                let out = from_rgba(&block_on(denoiser.denoise(&input, &options, &mut Unobserved))?);
                let method = setting.name();
                scores.push(Score { photo: case.name.clone(), level: level.name(), method: method.clone(), psnr: psnr(&out, &case.clean), ssim: ssim(&out, &case.clean) });
                if setting == default_setting {
                    save(&out, &ours_dir.join(format!("{}.{}.ours.png", case.name, level.name())))?;
                    outputs.insert((case.name.clone(), level.name(), "ours".into()), out);
                } else if setting == Setting::plain(SamplerKind::Improved, 1, 1.0) {
                    outputs.insert((case.name.clone(), level.name(), "ours 1 step".into()), out);
                }
            }
        }
        eprintln!("{}: done ({:.0} s so far)", case.name, started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// Runs BM3D and FFDNet on the saved pairs and scores their outputs.
fn score_baselines(cases: &[Case], pairs_dir: &Path, baseline_dir: &Path, scores: &mut Vec<Score>, outputs: &mut Outputs) -> Result<()> {
    run_baselines(pairs_dir, baseline_dir)?;
    for case in cases {
        for (level, _) in &case.noisy {
            for (method, label) in [("bm3d", "BM3D (blind sigma)"), ("ffdnet", "FFDNet (oracle sigma)"), ("maxim", "MAXIM-3S (SIDD, blind)")] {
                let path = baseline_dir.join(format!("{}.{}.{method}.png", case.name, level.name()));
                let out = image::open(&path).with_context(|| format!("baseline output {} is missing", path.display()))?.to_rgb32f();
                scores.push(Score { photo: case.name.clone(), level: level.name(), method: label.into(), psnr: psnr(&out, &case.clean), ssim: ssim(&out, &case.clean) });
                outputs.insert((case.name.clone(), level.name(), method.into()), out);
            }
        }
    }
    Ok(())
}

/// `results.md`: what was measured, then the table.
fn summary_text(args: &EvalArgs, photos: usize, iterations: u64, default_method: &str, scores: &[Score]) -> String {
    let table = markdown_table(scores, default_method);
    format!(
        "{} validation photos (centre crops of at most {} px), synthetic camera noise at three levels through the {} camera ({}), the four Bayer patterns in turn (seed {}); \
weights {} ({} iterations). Mean PSNR (dB) / SSIM; the default ({default_method}) in bold.\n\n{table}",
        photos,
        args.crop,
        args.variant.name(),
        match args.variant {
            NoiseVariant::Training => "Malvar-He-Cutler demosaic, Brooks' tone curve, no JPEG",
            NoiseVariant::Unseen => "bilinear demosaic, sRGB curve, JPEG quality 80-100; never seen in training",
        },
        args.seed,
        args.weights.display(),
        iterations
    )
}

fn run_baselines(pairs: &Path, out: &Path) -> Result<()> {
    let root = realdenoise::checkout::repository_path("training/baselines");
    let setup = root.join("setup.sh");
    if !setup.is_file() {
        bail!("the baselines' scripts are not at {}: run eval from the repository root", setup.display());
    }
    let status = Command::new("bash").arg(&setup).status().with_context(|| format!("cannot run {}", setup.display()))?;
    if !status.success() {
        bail!("{} failed ({status})", setup.display());
    }
    let python = root.join(".venv/bin/python");
    let status = Command::new(&python)
        .arg(root.join("run.py"))
        .arg("--pairs")
        .arg(pairs)
        .arg("--out")
        .arg(out)
        .arg("--methods")
        .arg("bm3d,ffdnet,maxim")
        .status()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !status.success() {
        bail!("the baselines failed ({status})");
    }
    Ok(())
}

/// Mean PSNR / SSIM per method (rows) and level (columns), in first-seen order.
fn markdown_table(scores: &[Score], highlight: &str) -> String {
    let mut methods: Vec<String> = Vec::new();
    for s in scores {
        if !methods.contains(&s.method) {
            methods.push(s.method.clone());
        }
    }
    let levels = NoiseLevel::ALL.map(|l| l.name());
    let mut out = String::from("| method | low | mid | high | mean |\n|---|---|---|---|---|\n");
    for method in &methods {
        let mut cells = Vec::new();
        let (mut all_p, mut all_s, mut all_n) = (0.0, 0.0, 0usize);
        for level in levels {
            let hits: Vec<&Score> = scores.iter().filter(|s| &s.method == method && s.level == level).collect();
            let n = hits.len().max(1) as f64;
            let p = hits.iter().map(|s| s.psnr).sum::<f64>() / n;
            let q = hits.iter().map(|s| s.ssim).sum::<f64>() / n;
            all_p += hits.iter().map(|s| s.psnr).sum::<f64>();
            all_s += hits.iter().map(|s| s.ssim).sum::<f64>();
            all_n += hits.len();
            cells.push(format!("{p:.2} / {q:.3}"));
        }
        let n = all_n.max(1) as f64;
        cells.push(format!("{:.2} / {:.3}", all_p / n, all_s / n));
        let name = if method == highlight { format!("**{method}**") } else { method.clone() };
        out.push_str(&format!("| {name} | {} |\n", cells.join(" | ")));
    }
    out
}

/// Crops side by side: noisy, BM3D, FFDNet, ours (1 step), ours (default),
/// clean; up to three photos at the mid and high levels, 2x nearest zoom.
fn figure(cases: &[Case], outputs: &BTreeMap<(String, &'static str, String), Rgb32FImage>, path: &Path) -> Result<()> {
    const SIDE: u32 = 96;
    const ZOOM: u32 = 2;
    const LABEL: u32 = 28;
    let columns: Vec<(&str, &str)> = [("noisy", "noisy"), ("bm3d", "BM3D"), ("ffdnet", "FFDNet"), ("ours 1 step", "ours, 1 step"), ("ours", "ours, default"), ("clean", "clean")]
        .into_iter()
        .filter(|(key, _)| matches!(*key, "noisy" | "clean") || outputs.keys().any(|k| k.2 == *key))
        .collect();
    let rows: Vec<(&Case, NoiseLevel)> = cases.iter().take(3).flat_map(|c| [(c, NoiseLevel::Mid), (c, NoiseLevel::High)]).collect();
    crate::train::curves::register_font();
    let cell = SIDE * ZOOM;
    let (width, height) = (cell * columns.len() as u32, LABEL + cell * rows.len() as u32);
    let mut canvas = RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    for (r, (case, level)) in rows.iter().enumerate() {
        let (w, h) = case.clean.dimensions();
        let (x0, y0) = ((w.saturating_sub(SIDE)) / 2, (h.saturating_sub(SIDE)) / 2);
        for (c, (key, _)) in columns.iter().enumerate() {
            let source = match *key {
                "clean" => Some(&case.clean),
                "noisy" => case.noisy.iter().find(|(l, _)| l == level).map(|(_, i)| i),
                other => outputs.get(&(case.name.clone(), level.name(), other.to_string())),
            };
            let Some(source) = source else { continue };
            for y in 0..cell.min(h * ZOOM) {
                for x in 0..cell.min(w * ZOOM) {
                    let (sx, sy) = ((x0 + x / ZOOM).min(w - 1), (y0 + y / ZOOM).min(h - 1));
                    let p = source.get_pixel(sx, sy).0;
                    let px = image::Rgb(p.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8));
                    canvas.put_pixel(c as u32 * cell + x, LABEL + r as u32 * cell + y, px);
                }
            }
        }
    }
    {
        let mut buffer = canvas.into_raw();
        {
            let root = BitMapBackend::with_buffer(&mut buffer, (width, height)).into_drawing_area();
            for (c, (_, label)) in columns.iter().enumerate() {
                root.draw(&Text::new(label.to_string(), (c as i32 * cell as i32 + 8, 6), ("sans-serif", 18).into_font().color(&BLACK)))
                    .map_err(|e| anyhow::anyhow!("cannot label the figure: {e}"))?;
            }
            for (r, (case, level)) in rows.iter().enumerate() {
                let text = format!("{} ({})", case.name, level.name());
                let y = (LABEL + r as u32 * cell + 4) as i32;
                root.draw(&Text::new(text, (6, y), ("sans-serif", 14).into_font().color(&WHITE)))
                    .map_err(|e| anyhow::anyhow!("cannot label the figure: {e}"))?;
            }
            root.present().map_err(|e| anyhow::anyhow!("cannot draw the figure: {e}"))?;
        }
        let canvas = RgbImage::from_raw(width, height, buffer).context("figure buffer size")?;
        canvas.save(path).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
