//! Reading and writing images without ever losing a file: inputs are never
//! written to, outputs are written to a temporary file and renamed.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageFormat, ImageReader, RgbaImage};

/// A decoded input: RGBA pixels, and whether alpha carries information.
pub struct LoadedImage {
    pub pixels: RgbaImage,
    pub has_alpha: bool,
}

/// Checks from its first bytes that `path` holds a PNG, JPEG or WebP image,
/// so bad inputs are refused before any work starts.
pub fn check_input(path: &Path) -> Result<()> {
    use std::io::Read;
    let mut start = Vec::with_capacity(64);
    File::open(path)
        .and_then(|file| file.take(64).read_to_end(&mut start))
        .with_context(|| format!("cannot read {}", path.display()))?;
    match image::guess_format(&start) {
        Ok(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP) => Ok(()),
        Ok(other) => bail!("{} is a {other:?} image; supported inputs are PNG, JPEG and WebP", path.display()),
        Err(_) => bail!("{} is not a PNG, JPEG or WebP image (unrecognised contents)", path.display()),
    }
}

pub fn load(path: &Path) -> Result<LoadedImage> {
    let reader = ImageReader::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read {}", path.display()))?;
    check_input(path)?;
    let format = reader.format().ok_or_else(|| anyhow!("{} has an unknown format", path.display()))?;
    let image = reader
        .decode()
        .with_context(|| format!("cannot decode {} as {format:?}", path.display()))?;
    let has_alpha = image.color().has_alpha();
    Ok(LoadedImage { pixels: image.into_rgba8(), has_alpha })
}

/// The format an output path asks for, from its extension.
pub fn output_format(path: &Path) -> Result<ImageFormat> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| anyhow!("{} has no file extension: use .png, .jpg or .webp", path.display()))?;
    match extension.as_str() {
        "png" => Ok(ImageFormat::Png),
        "jpg" | "jpeg" => Ok(ImageFormat::Jpeg),
        "webp" => Ok(ImageFormat::WebP),
        other => bail!("cannot write .{other} files ({}): use .png, .jpg or .webp", path.display()),
    }
}

/// An absolute, normalised form of `path` that also works for files that do
/// not exist yet, so an output can be compared with the inputs.
pub fn identity(path: &Path) -> PathBuf {
    if let Ok(canonical) = path.canonicalize() {
        return canonical;
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match (parent.canonicalize(), path.file_name()) {
        (Ok(directory), Some(name)) => directory.join(name),
        _ => path.to_path_buf(),
    }
}

/// Writes `pixels` to `path` in the format its extension names. Alpha is kept
/// where the input had it and the format can store it.
pub fn save(path: &Path, pixels: RgbaImage, keep_alpha: bool, jpeg_quality: u8) -> Result<()> {
    let format = output_format(path)?;
    let image = if keep_alpha && format != ImageFormat::Jpeg {
        DynamicImage::ImageRgba8(pixels)
    } else {
        DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(pixels).into_rgb8())
    };
    let directory = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("output");
    let temporary = directory.join(format!(".{name}.realdenoise-partial"));
    let written = (|| -> Result<()> {
        let mut writer = BufWriter::new(File::create(&temporary)?);
        match format {
            ImageFormat::Jpeg => image.write_with_encoder(JpegEncoder::new_with_quality(&mut writer, jpeg_quality))?,
            other => image.write_to(&mut writer, other)?,
        }
        writer.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&temporary, path)?;
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written.with_context(|| format!("cannot write {}", path.display()))
}
