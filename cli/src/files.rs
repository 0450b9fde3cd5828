//! Reading and writing images without ever losing a file: inputs are never
//! written to, outputs are written to a fresh temporary file in the target
//! directory and renamed over the target only when complete.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use image::codecs::jpeg::{JpegDecoder, JpegEncoder};
use image::codecs::png::{PngDecoder, PngEncoder};
use image::codecs::webp::{WebPDecoder, WebPEncoder};
use image::metadata::Orientation;
use image::{
    ColorType, DynamicImage, ImageBuffer, ImageDecoder, ImageEncoder, ImageFormat, Limits, Rgba, RgbaImage,
};
use realdenoise::tiling::{Tile, TiledImage};

/// Largest accepted image side in pixels: JPEG's own limit.
pub const MAX_SIDE: u32 = 65_535;
/// Largest accepted image, in pixels (200 megapixels).
pub const MAX_PIXELS: u64 = 200_000_000;
/// Largest side the WebP format stores.
pub const WEBP_MAX_SIDE: u32 = 16_383;
/// Bytes a decoder may allocate: the largest accepted image as 16-bit RGBA.
const MAX_DECODER_ALLOC: u64 = MAX_PIXELS * 8;

/// 16-bit RGBA pixels.
pub type Rgba16Image = ImageBuffer<Rgba<u16>, Vec<u16>>;

/// Decoded pixels, at the input's precision.
pub enum Pixels {
    Eight(RgbaImage),
    Sixteen(Rgba16Image),
}

impl Pixels {
    pub fn dimensions(&self) -> (u32, u32) {
        match self {
            Pixels::Eight(image) => image.dimensions(),
            Pixels::Sixteen(image) => image.dimensions(),
        }
    }
}

/// What travels from an input to its output besides the pixels.
#[derive(Debug, Default, Clone)]
pub struct Metadata {
    /// An ICC profile for RGB data.
    pub icc_profile: Option<Vec<u8>>,
    /// The raw EXIF block, its orientation already applied to the pixels
    /// and reset to "no transform".
    pub exif: Option<Vec<u8>>,
}

/// A decoded input, upright, with whether alpha carries information and
/// what the user should know about the conversion.
pub struct LoadedImage {
    pub pixels: Pixels,
    pub has_alpha: bool,
    pub metadata: Metadata,
    pub warnings: Vec<String>,
}

/// What an input is, read from its header only.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

/// Why a JPEG's marker structure is not complete.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JpegStructureError {
    #[error("it does not start with a JPEG start-of-image marker")]
    NoStart,
    #[error("it is truncated: the data ends at byte {0} before the JPEG end-of-image marker")]
    Truncated(usize),
    #[error("it has a malformed segment length at byte {0}")]
    BadLength(usize),
    #[error("it ends without any image data (no start-of-scan segment)")]
    NoScan,
}

/// Walks a JPEG's marker segments and requires its end-of-image marker:
/// `image` (zune-jpeg) decodes a truncated file without complaint and
/// fills the missing part with grey. Segment payloads (APPn can hold a
/// thumbnail with its own EOI) are skipped by their length; in entropy-coded
/// scan data, `FF00` stuffing and `FFD0`-`FFD7` restart markers are data.
pub fn check_jpeg_structure(bytes: &[u8]) -> Result<(), JpegStructureError> {
    if bytes.len() < 2 || bytes[0] != 0xFF || bytes[1] != 0xD8 {
        return Err(JpegStructureError::NoStart);
    }
    let mut position = 2;
    let mut scans = 0usize;
    loop {
        // Find the next marker; bytes between segments are tolerated (as
        // libjpeg does), fill bytes (FF FF ...) are skipped.
        while position < bytes.len() && bytes[position] != 0xFF {
            position += 1;
        }
        while position + 1 < bytes.len() && bytes[position + 1] == 0xFF {
            position += 1;
        }
        if position + 1 >= bytes.len() {
            return Err(JpegStructureError::Truncated(bytes.len()));
        }
        let marker = bytes[position + 1];
        position += 2;
        match marker {
            0xD9 => return if scans > 0 { Ok(()) } else { Err(JpegStructureError::NoScan) },
            // Markers without a payload: TEM, RSTn, and a stray 00.
            0x00 | 0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        if position + 2 > bytes.len() {
            return Err(JpegStructureError::Truncated(bytes.len()));
        }
        let length = usize::from(u16::from_be_bytes([bytes[position], bytes[position + 1]]));
        if length < 2 {
            return Err(JpegStructureError::BadLength(position));
        }
        if position + length > bytes.len() {
            return Err(JpegStructureError::Truncated(bytes.len()));
        }
        position += length;
        if marker == 0xDA {
            scans += 1;
            // Entropy-coded data runs to the next marker that is not
            // stuffing or a restart marker.
            loop {
                while position < bytes.len() && bytes[position] != 0xFF {
                    position += 1;
                }
                if position + 1 >= bytes.len() {
                    return Err(JpegStructureError::Truncated(bytes.len()));
                }
                match bytes[position + 1] {
                    0x00 | 0xD0..=0xD7 => position += 2,
                    0xFF => position += 1,
                    _ => break,
                }
            }
        }
    }
}

/// Checks from its first bytes that `path` holds a PNG, JPEG or WebP image,
/// so bad inputs are refused before any work starts.
pub fn check_input(path: &Path) -> Result<ImageFormat> {
    let mut start = Vec::with_capacity(64);
    File::open(path)
        .and_then(|file| file.take(64).read_to_end(&mut start))
        .with_context(|| format!("cannot read {}", path.display()))?;
    match image::guess_format(&start) {
        Ok(format @ (ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP)) => Ok(format),
        Ok(other) => bail!("{} is a {other:?} image; supported inputs are PNG, JPEG and WebP", path.display()),
        Err(_) => bail!("{} is not a PNG, JPEG or WebP image (unrecognised contents)", path.display()),
    }
}

/// A decoder for `path`, and whether the file is animated.
fn open_decoder(path: &Path, format: ImageFormat, limits: Limits) -> Result<(Box<dyn ImageDecoder>, bool)> {
    let reader = BufReader::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?);
    let context = || format!("cannot read the {format:?} header of {}", path.display());
    Ok(match format {
        ImageFormat::Png => {
            let decoder = PngDecoder::with_limits(reader, limits).with_context(context)?;
            let animated = decoder.is_apng().with_context(context)?;
            (Box::new(decoder), animated)
        }
        ImageFormat::Jpeg => {
            let mut decoder = JpegDecoder::new(reader).with_context(context)?;
            decoder.set_limits(limits).with_context(context)?;
            (Box::new(decoder), false)
        }
        ImageFormat::WebP => {
            let mut decoder = WebPDecoder::new(reader).with_context(context)?;
            let animated = decoder.has_animation();
            decoder.set_limits(limits).with_context(context)?;
            (Box::new(decoder), animated)
        }
        other => bail!("{} is a {other:?} image; supported inputs are PNG, JPEG and WebP", path.display()),
    })
}

/// Limits for reading headers: allocations only, so that oversized images
/// get [`check_dimensions`]'s message rather than the decoder's.
fn header_limits() -> Limits {
    let mut limits = Limits::no_limits();
    limits.max_alloc = Some(MAX_DECODER_ALLOC);
    limits
}

fn decode_limits() -> Limits {
    let mut limits = header_limits();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits
}

/// Refuses images larger than the pipeline accepts, before decoding.
fn check_dimensions(path: &Path, width: u32, height: u32) -> Result<()> {
    let pixels = u64::from(width) * u64::from(height);
    if width == 0 || height == 0 {
        bail!("{} is empty ({width}x{height} pixels)", path.display());
    }
    if width > MAX_SIDE || height > MAX_SIDE || pixels > MAX_PIXELS {
        bail!(
            "{} is {width}x{height} pixels ({:.1} megapixels); realdenoise accepts at most {MAX_SIDE} pixels per side \
             and {} megapixels",
            path.display(),
            pixels as f64 / 1e6,
            MAX_PIXELS / 1_000_000
        );
    }
    Ok(())
}

/// Checks an input from its header (and, for JPEG, its marker structure)
/// without decoding its pixels.
pub fn probe(path: &Path) -> Result<Probe> {
    let format = check_input(path)?;
    if format == ImageFormat::Jpeg {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        check_jpeg_structure(&bytes).map_err(|error| anyhow!("{} is not a complete JPEG: {error}", path.display()))?;
    }
    let (decoder, _) = open_decoder(path, format, header_limits())?;
    let (width, height) = decoder.dimensions();
    check_dimensions(path, width, height)?;
    Ok(Probe { format, width, height })
}

fn is_sixteen_bit(color: ColorType) -> bool {
    matches!(color, ColorType::L16 | ColorType::La16 | ColorType::Rgb16 | ColorType::Rgba16)
}

/// The colour space an ICC profile describes (header bytes 16-19).
fn icc_color_space(profile: &[u8]) -> Option<&str> {
    profile.get(16..20).and_then(|bytes| std::str::from_utf8(bytes).ok()).map(str::trim)
}

/// Decodes `path`, upright (EXIF orientation applied), at 8 or 16 bits.
pub fn load(path: &Path) -> Result<LoadedImage> {
    let Probe { format, .. } = probe(path)?;
    let (mut decoder, animated) = open_decoder(path, format, decode_limits())?;
    let mut warnings = Vec::new();
    if animated {
        warnings.push(format!("{} is animated; only its first frame is denoised and written", path.display()));
    }
    let mut icc_profile = match decoder.icc_profile() {
        Ok(profile) => profile,
        Err(error) => {
            warnings.push(format!("cannot read the ICC profile of {} ({error}); it is not copied", path.display()));
            None
        }
    };
    if let Some(profile) = &icc_profile {
        if icc_color_space(profile) != Some("RGB") {
            warnings.push(format!(
                "{} has an ICC profile for {} data; the output is RGB, so the profile is not copied",
                path.display(),
                icc_color_space(profile).unwrap_or("unknown")
            ));
            icc_profile = None;
        }
    }
    let mut exif = match decoder.exif_metadata() {
        Ok(exif) => exif,
        Err(error) => {
            warnings.push(format!("cannot read the EXIF data of {} ({error}); it is not copied", path.display()));
            None
        }
    };
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let color = decoder.color_type();
    let mut image =
        DynamicImage::from_decoder(decoder).with_context(|| format!("cannot decode {} as {format:?}", path.display()))?;
    if orientation != Orientation::NoTransforms {
        image.apply_orientation(orientation);
        // The pixels are upright now; a viewer must not turn them again.
        if let Some(exif) = exif.as_mut() {
            let _ = Orientation::remove_from_exif_chunk(exif);
        }
    }
    let has_alpha = color.has_alpha();
    let pixels = if is_sixteen_bit(color) { Pixels::Sixteen(image.into_rgba16()) } else { Pixels::Eight(image.into_rgba8()) };
    Ok(LoadedImage { pixels, has_alpha, metadata: Metadata { icc_profile, exif }, warnings })
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

/// The directory an output path is written into.
pub fn output_directory(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// A new, uniquely named temporary file in `directory` (created with
/// O_EXCL, so it can never be an existing file).
fn temporary_in(directory: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new().prefix(".realdenoise-").suffix(".partial").tempfile_in(directory)
}

/// Checks that results can be written into `directory` by creating (and
/// removing) a temporary file there.
pub fn check_writable(directory: &Path) -> Result<()> {
    if !directory.exists() {
        bail!("output directory {} does not exist", directory.display());
    }
    if !directory.is_dir() {
        bail!("output directory {} is not a directory", directory.display());
    }
    temporary_in(directory)
        .map(drop)
        .with_context(|| format!("cannot write into the output directory {}", directory.display()))
}

/// How a result is written.
pub struct SaveOptions {
    pub keep_alpha: bool,
    pub jpeg_quality: u8,
    /// Replace an existing file at the output path.
    pub overwrite: bool,
}

fn encode<E: ImageEncoder>(mut encoder: E, image: &DynamicImage, metadata: &Metadata) -> Result<()> {
    if let Some(profile) = &metadata.icc_profile {
        encoder.set_icc_profile(profile.clone())?;
    }
    if let Some(exif) = &metadata.exif {
        encoder.set_exif_metadata(exif.clone())?;
    }
    image.write_with_encoder(encoder)?;
    Ok(())
}

/// Whether writing 16-bit pixels to `format` loses precision.
pub fn reduces_precision(pixels: &Pixels, format: ImageFormat) -> bool {
    matches!(pixels, Pixels::Sixteen(_)) && format != ImageFormat::Png
}

/// Writes `pixels` to `path` in the format its extension names, with the
/// input's ICC profile and EXIF data. Alpha is kept where the input had it
/// and the format can store it; 16-bit pixels stay 16-bit in PNG. The file
/// appears complete or not at all, and only the temporary file this call
/// created is ever removed.
pub fn save(path: &Path, pixels: Pixels, metadata: &Metadata, options: &SaveOptions) -> Result<()> {
    let format = output_format(path)?;
    let alpha = options.keep_alpha && format != ImageFormat::Jpeg;
    let image = match (pixels, format) {
        (Pixels::Sixteen(pixels), ImageFormat::Png) => {
            let image = DynamicImage::ImageRgba16(pixels);
            if alpha { image } else { DynamicImage::ImageRgb16(image.into_rgb16()) }
        }
        (Pixels::Sixteen(pixels), _) => {
            let image = DynamicImage::ImageRgba16(pixels);
            if alpha { DynamicImage::ImageRgba8(image.into_rgba8()) } else { DynamicImage::ImageRgb8(image.into_rgb8()) }
        }
        (Pixels::Eight(pixels), _) => {
            let image = DynamicImage::ImageRgba8(pixels);
            if alpha { image } else { DynamicImage::ImageRgb8(image.into_rgb8()) }
        }
    };
    let written = (|| -> Result<()> {
        let mut temporary = temporary_in(output_directory(path))?;
        {
            let mut writer = BufWriter::new(temporary.as_file_mut());
            match format {
                ImageFormat::Jpeg => encode(JpegEncoder::new_with_quality(&mut writer, options.jpeg_quality), &image, metadata)?,
                ImageFormat::Png => encode(PngEncoder::new(&mut writer), &image, metadata)?,
                ImageFormat::WebP => encode(WebPEncoder::new_lossless(&mut writer), &image, metadata)?,
                other => bail!("cannot write {other:?}"),
            }
            writer.flush()?;
        }
        temporary.as_file().sync_all()?;
        // On failure the temporary file is dropped, which removes it.
        if options.overwrite {
            temporary.persist(path).map_err(|error| error.error)?;
        } else {
            temporary
                .persist_noclobber(path)
                .map_err(|error| anyhow!("{} appeared while it was being written ({})", path.display(), error.error))?;
        }
        Ok(())
    })();
    written.with_context(|| format!("cannot write {}", path.display()))
}

/// 16-bit pixels as the tile pipeline reads and writes them.
pub struct Sixteen<'a>(pub &'a mut Rgba16Image);

impl TiledImage for Sixteen<'_> {
    fn width(&self) -> usize {
        self.0.width() as usize
    }

    fn height(&self) -> usize {
        self.0.height() as usize
    }

    fn read_tile(&self, tile: Tile) -> Vec<f32> {
        let (width, height) = (tile.x.len(), tile.y.len());
        let mut planes = vec![0.0; 3 * width * height];
        for (row, y) in (tile.y.start..tile.y.end).enumerate() {
            for (column, x) in (tile.x.start..tile.x.end).enumerate() {
                let pixel = self.0.get_pixel(x as u32, y as u32);
                for channel in 0..3 {
                    planes[(channel * height + row) * width + column] = f32::from(pixel[channel]) / 65535.0;
                }
            }
        }
        planes
    }

    fn write_pixel(&mut self, x: usize, y: usize, rgb: [f32; 3]) {
        let pixel = self.0.get_pixel_mut(x as u32, y as u32);
        for channel in 0..3 {
            pixel[channel] = (rgb[channel].clamp(0.0, 1.0) * 65535.0).round() as u16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let image = RgbaImage::from_fn(width, height, |x, y| Rgba([(x * 9) as u8, (y * 7) as u8, (x ^ y) as u8, 255]));
        let mut bytes = Vec::new();
        DynamicImage::ImageRgba8(image).into_rgb8().write_with_encoder(JpegEncoder::new_with_quality(&mut bytes, 90)).unwrap();
        bytes
    }

    #[test]
    fn a_complete_jpeg_passes_and_every_truncation_fails() {
        let bytes = jpeg(40, 30);
        assert_eq!(check_jpeg_structure(&bytes), Ok(()));
        for cut in [1, 2, 20, bytes.len() / 2, bytes.len() - 2, bytes.len() - 1] {
            assert!(check_jpeg_structure(&bytes[..cut]).is_err(), "a cut at {cut} of {} bytes passed", bytes.len());
        }
    }

    #[test]
    fn an_eoi_inside_an_app_segment_does_not_end_the_file() {
        let bytes = jpeg(16, 16);
        // An APP1 segment holding "FF D9" (as a thumbnail would), right after SOI.
        let payload = [0xFF, 0xD8, 0xFF, 0xD9];
        let mut with_app = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, (payload.len() + 2) as u8];
        with_app.extend_from_slice(&payload);
        with_app.extend_from_slice(&bytes[2..]);
        assert_eq!(check_jpeg_structure(&with_app), Ok(()));
        // Cut in the middle of the scan data: the APP1's EOI must not count.
        let cut = with_app.len() / 2;
        assert!(matches!(check_jpeg_structure(&with_app[..cut]), Err(JpegStructureError::Truncated(_))));
    }
}
