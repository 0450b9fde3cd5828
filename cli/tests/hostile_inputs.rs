//! `realdenoise denoise` against hostile and unusual inputs: truncated and
//! oversized files, outputs that cannot be written, metadata and precision
//! that must not be lost silently. CPU backend, one step, tiny images.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use image::codecs::jpeg::{JpegDecoder, JpegEncoder};
use image::codecs::png::{PngDecoder, PngEncoder};
use image::metadata::Orientation;
use image::{
    ColorType, DynamicImage, ImageBuffer, ImageDecoder, ImageEncoder, ImageFormat, Luma, LumaA, Rgb, Rgba, RgbaImage,
};

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_realdenoise"))
}

fn run(args: &[&str]) -> Output {
    binary().args(args).output().expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Untrained weights made once for all tests.
fn weights() -> &'static Path {
    static WEIGHTS: OnceLock<PathBuf> = OnceLock::new();
    WEIGHTS.get_or_init(|| {
        let directory = std::env::temp_dir().join(format!("realdenoise-hostile-tests-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("untrained.rdnz");
        let output = run(&["init-weights", path.to_str().unwrap(), "--seed", "3"]);
        assert!(output.status.success(), "{}", stderr(&output));
        path
    })
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn test_image(width: u32, height: u32) -> RgbaImage {
    RgbaImage::from_fn(width, height, |x, y| {
        Rgba([(x * 5 % 256) as u8, (y * 3 % 256) as u8, ((x * y + 7 * x) % 256) as u8, 255])
    })
}

fn denoise_args<'a>(input: &'a Path, output: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "denoise",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--weights",
        weights().to_str().unwrap(),
        "--backend",
        "cpu",
        "--steps",
        "1",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    args
}

fn denoise(input: &Path, output: &Path, extra: &[&str]) -> Output {
    run(&denoise_args(input, output, extra))
}

fn write_jpeg(path: &Path, image: &DynamicImage, icc: Option<&[u8]>, exif: Option<&[u8]>) {
    let mut encoder = JpegEncoder::new_with_quality(File::create(path).unwrap(), 90);
    if let Some(icc) = icc {
        encoder.set_icc_profile(icc.to_vec()).unwrap();
    }
    if let Some(exif) = exif {
        encoder.set_exif_metadata(exif.to_vec()).unwrap();
    }
    image.write_with_encoder(encoder).unwrap();
}

/// A minimal ICC header for RGB data: what the CLI checks before copying.
fn rgb_icc_profile() -> Vec<u8> {
    let mut profile = vec![0u8; 132];
    profile[0..4].copy_from_slice(&132u32.to_be_bytes());
    profile[12..16].copy_from_slice(b"mntr");
    profile[16..20].copy_from_slice(b"RGB ");
    profile[20..24].copy_from_slice(b"XYZ ");
    profile[36..40].copy_from_slice(b"acsp");
    profile[128..132].copy_from_slice(&0u32.to_be_bytes());
    profile
}

/// A little-endian TIFF/EXIF block with an orientation tag and an artist tag.
fn exif_block(orientation: u16) -> Vec<u8> {
    let mut exif = b"II*\0".to_vec();
    exif.extend_from_slice(&8u32.to_le_bytes());
    exif.extend_from_slice(&2u16.to_le_bytes());
    // 0x0112 Orientation, SHORT, 1 value.
    exif.extend_from_slice(&0x0112u16.to_le_bytes());
    exif.extend_from_slice(&3u16.to_le_bytes());
    exif.extend_from_slice(&1u32.to_le_bytes());
    exif.extend_from_slice(&orientation.to_le_bytes());
    exif.extend_from_slice(&[0, 0]);
    // 0x013B Artist, ASCII, 4 bytes inline: "rdn\0".
    exif.extend_from_slice(&0x013Bu16.to_le_bytes());
    exif.extend_from_slice(&2u16.to_le_bytes());
    exif.extend_from_slice(&4u32.to_le_bytes());
    exif.extend_from_slice(b"rdn\0");
    exif.extend_from_slice(&0u32.to_le_bytes());
    exif
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(kind);
    chunk.extend_from_slice(data);
    let mut covered = kind.to_vec();
    covered.extend_from_slice(data);
    chunk.extend_from_slice(&crc32(&covered).to_be_bytes());
    chunk
}

/// A valid PNG header claiming `width` x `height` RGB pixels, with a tiny IDAT.
fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = width.to_be_bytes().to_vec();
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    png.extend(png_chunk(b"IHDR", &header));
    // zlib: a stored empty block, far short of the claimed rows.
    png.extend(png_chunk(b"IDAT", &[0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01]));
    png.extend(png_chunk(b"IEND", &[]));
    png
}

fn leftovers(directory: &Path) -> Vec<String> {
    std::fs::read_dir(directory)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("partial") || name.starts_with(".realdenoise"))
        .collect()
}

// 1. Truncated files.

#[test]
fn a_truncated_jpeg_is_refused_naming_the_file() {
    let directory = tempfile::tempdir().unwrap();
    let whole = directory.path().join("whole.jpg");
    write_jpeg(&whole, &DynamicImage::ImageRgba8(test_image(64, 64)).into_rgb8().into(), None, None);
    let bytes = std::fs::read(&whole).unwrap();
    let input = directory.path().join("cut.jpg");
    std::fs::write(&input, &bytes[..bytes.len() / 2]).unwrap();
    let output = directory.path().join("out.png");

    let result = denoise(&input, &output, &[]);
    assert!(!result.status.success(), "a truncated JPEG was accepted");
    let message = stderr(&result);
    assert!(message.contains("cut.jpg") && message.contains("truncated"), "{message}");
    assert!(!output.exists());
    // The whole file still works.
    let result = denoise(&whole, &output, &[]);
    assert!(result.status.success(), "{}", stderr(&result));
}

#[test]
fn truncated_png_and_webp_are_refused_naming_the_file() {
    let directory = tempfile::tempdir().unwrap();
    let image = DynamicImage::ImageRgba8(test_image(64, 64));
    for (name, format) in [("cut.png", ImageFormat::Png), ("cut.webp", ImageFormat::WebP)] {
        let mut bytes = Vec::new();
        image.write_to(&mut std::io::Cursor::new(&mut bytes), format).unwrap();
        let input = directory.path().join(name);
        std::fs::write(&input, &bytes[..bytes.len() * 6 / 10]).unwrap();
        let output = directory.path().join("out.png");
        let result = denoise(&input, &output, &[]);
        assert!(!result.status.success(), "a truncated {name} was accepted");
        assert!(stderr(&result).contains(name), "{name}: {}", stderr(&result));
        assert!(!output.exists(), "{name}");
    }
}

// 2. The temporary file of the atomic writer.

#[test]
fn an_input_named_like_a_temporary_file_is_left_intact() {
    let directory = tempfile::tempdir().unwrap();
    let input = directory.path().join(".victim.png.realdenoise-partial");
    let mut bytes = Vec::new();
    DynamicImage::ImageRgba8(test_image(20, 16))
        .write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Png)
        .unwrap();
    std::fs::write(&input, &bytes).unwrap();
    let output = directory.path().join("victim.png");

    let result = denoise(&input, &output, &[]);
    assert!(result.status.success(), "{}", stderr(&result));
    assert_eq!(std::fs::read(&input).expect("the input still exists"), bytes);
    assert_eq!(image::open(&output).unwrap().dimensions_of(), (20, 16));
    let names: Vec<String> =
        std::fs::read_dir(directory.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    assert_eq!(names.len(), 2, "unexpected files: {names:?}");
}

trait Dimensions {
    fn dimensions_of(&self) -> (u32, u32);
}

impl Dimensions for DynamicImage {
    fn dimensions_of(&self) -> (u32, u32) {
        (self.width(), self.height())
    }
}

// 3. Output locations are checked before any work.

#[test]
fn unwritable_output_locations_fail_before_any_work() {
    let directory = tempfile::tempdir().unwrap();
    let input = directory.path().join("in.png");
    test_image(8, 8).save(&input).unwrap();
    let regular = directory.path().join("file.txt");
    std::fs::write(&regular, b"not a directory").unwrap();

    let cases = [
        (directory.path().join("missing/out.png"), "does not exist"),
        (regular.join("out.png"), "is not a directory"),
    ];
    for (output, expected) in &cases {
        let result = denoise(&input, output, &[]);
        let message = stderr(&result);
        assert!(!result.status.success());
        assert!(message.contains(expected), "{}: {message}", output.display());
        // The weights are loaded (and warn that they are untrained) only after the checks.
        assert!(!message.contains("UNTRAINED"), "work started before the check: {message}");
    }

    // A directory that exists but takes no files, even for root: /proc.
    if Path::new("/proc/self").is_dir() {
        let result = run(&[
            "denoise", input.to_str().unwrap(), "--out-dir", "/proc", "--weights", weights().to_str().unwrap(),
            "--backend", "cpu", "--steps", "1", "--quiet",
        ]);
        let message = stderr(&result);
        assert!(!result.status.success());
        assert!(message.contains("cannot write into the output directory /proc"), "{message}");
        assert!(!message.contains("UNTRAINED"), "work started before the check: {message}");
    }

    // A read-only directory; root ignores permission bits, so this part only
    // runs for other users (checked by trying to write there first).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let read_only = directory.path().join("read-only");
        std::fs::create_dir(&read_only).unwrap();
        std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o555)).unwrap();
        if std::fs::write(read_only.join("probe"), b"").is_err() {
            let result = denoise(&input, &read_only.join("out.png"), &[]);
            assert!(!result.status.success());
            assert!(stderr(&result).contains("cannot write into the output directory"), "{}", stderr(&result));
            assert_eq!(std::fs::read_dir(&read_only).unwrap().count(), 0);
        }
        std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    assert!(leftovers(directory.path()).is_empty());
}

// 4. Nothing is lost silently.

#[test]
fn icc_profiles_and_exif_are_copied_to_the_output() {
    let directory = tempfile::tempdir().unwrap();
    let icc = rgb_icc_profile();
    let exif = exif_block(1);
    let image = DynamicImage::ImageRgba8(test_image(24, 16)).into_rgb8();

    let png_input = directory.path().join("in.png");
    let mut encoder = PngEncoder::new(File::create(&png_input).unwrap());
    encoder.set_icc_profile(icc.clone()).unwrap();
    encoder.set_exif_metadata(exif.clone()).unwrap();
    DynamicImage::ImageRgb8(image.clone()).write_with_encoder(encoder).unwrap();
    let jpeg_input = directory.path().join("in.jpg");
    write_jpeg(&jpeg_input, &DynamicImage::ImageRgb8(image), Some(&icc), Some(&exif));

    for (input, output) in [(&png_input, "out.png"), (&jpeg_input, "out.jpg"), (&png_input, "out.webp")] {
        let output = directory.path().join(output);
        let result = denoise(input, &output, &[]);
        assert!(result.status.success(), "{}", stderr(&result));
        let reader = image::ImageReader::open(&output).unwrap().with_guessed_format().unwrap();
        let mut decoder = reader.into_decoder().unwrap();
        assert_eq!(decoder.icc_profile().unwrap().as_deref(), Some(&icc[..]), "{}: ICC profile", output.display());
        assert_eq!(decoder.exif_metadata().unwrap().as_deref(), Some(&exif[..]), "{}: EXIF", output.display());
    }
}

#[test]
fn a_sixteen_bit_png_stays_sixteen_bit_or_the_loss_is_announced() {
    let directory = tempfile::tempdir().unwrap();
    let input = directory.path().join("deep.png");
    // Values that are not multiples of 257, so an 8-bit round trip changes them.
    let original: ImageBuffer<Rgb<u16>, Vec<u16>> =
        ImageBuffer::from_fn(12, 10, |x, y| Rgb([(x * 4001 + y * 13 + 1) as u16, (y * 5003 + 7) as u16, 30_001]));
    DynamicImage::ImageRgb16(original.clone()).save(&input).unwrap();

    let output = directory.path().join("out.png");
    let result = denoise(&input, &output, &["--strength", "0"]);
    assert!(result.status.success(), "{}", stderr(&result));
    let written = image::open(&output).unwrap();
    assert_eq!(written.color(), ColorType::Rgb16);
    assert_eq!(written.into_rgb16(), original, "16-bit values changed at strength 0");

    // Denoised (strength 1), the output is still 16-bit, with values off the 8-bit grid.
    let result = denoise(&input, &output, &["--force"]);
    assert!(result.status.success(), "{}", stderr(&result));
    let written = image::open(&output).unwrap();
    assert_eq!(written.color(), ColorType::Rgb16);
    let off_grid = written.into_rgb16().into_raw().iter().filter(|&&v| v % 257 != 0).count();
    assert!(off_grid > 100, "only {off_grid} values use the 16-bit precision");

    let output = directory.path().join("out.jpg");
    let result = denoise(&input, &output, &[]);
    assert!(result.status.success(), "{}", stderr(&result));
    assert!(stderr(&result).contains("reduced to 8 bits"), "{}", stderr(&result));
}

#[test]
fn animated_inputs_warn_that_only_the_first_frame_is_used() {
    let directory = tempfile::tempdir().unwrap();
    for name in ["animated.png", "animated.webp"] {
        let output = directory.path().join(format!("{name}.png"));
        let result = denoise(&fixture(name), &output, &["--strength", "0"]);
        assert!(result.status.success(), "{name}: {}", stderr(&result));
        assert!(stderr(&result).contains("is animated; only its first frame"), "{name}: {}", stderr(&result));
        // The first frame is (200, 50, 50).
        let first = image::open(&output).unwrap().into_rgb8();
        assert_eq!(first.dimensions(), (8, 8));
        assert_eq!(first.get_pixel(4, 4).0, [200, 50, 50], "{name}");
    }
}

#[test]
fn steps_beyond_the_schedule_are_capped_with_a_warning() {
    let directory = tempfile::tempdir().unwrap();
    let input = directory.path().join("in.png");
    test_image(8, 8).save(&input).unwrap();
    let output = directory.path().join("out.png");
    let mut args = denoise_args(&input, &output, &["--strength", "0.03"]);
    args.retain(|a| *a != "--quiet");
    let position = args.iter().position(|a| *a == "--steps").unwrap();
    args[position + 1] = "50";
    let result = run(&args);
    assert!(result.status.success(), "{}", stderr(&result));
    let message = stderr(&result);
    assert!(message.contains("50 steps requested, but strength 0.03 starts at timestep 3"), "{message}");
    assert!(message.contains("capped at 3 steps"), "{message}");
    assert!(message.contains("(8x8, 3 steps"), "the summary does not say what ran: {message}");

    // Above the model's T = 100 at full strength.
    args[position + 1] = "101";
    args.retain(|a| *a != "0.03" && *a != "--strength");
    args.push("--force");
    let result = run(&args);
    assert!(result.status.success(), "{}", stderr(&result));
    assert!(stderr(&result).contains("101 steps requested, but the model has T = 100 timesteps: capped at 100 steps"));

    // Within the schedule: no warning.
    let result = denoise(&input, &output, &["--force"]);
    assert!(result.status.success());
    assert!(!stderr(&result).contains("capped"), "{}", stderr(&result));
}

// 5. What the CLI prints.

#[test]
fn a_missing_file_names_its_io_error_once() {
    let directory = tempfile::tempdir().unwrap();
    let input = directory.path().join("in.png");
    test_image(8, 8).save(&input).unwrap();
    let result = run(&[
        "denoise", input.to_str().unwrap(), "-o", directory.path().join("o.png").to_str().unwrap(),
        "--weights", directory.path().join("missing.rdnz").to_str().unwrap(), "--backend", "cpu",
    ]);
    assert!(!result.status.success());
    let message = stderr(&result);
    assert!(message.contains("missing.rdnz"), "{message}");
    assert_eq!(message.matches("os error 2").count(), 1, "{message}");
}

#[test]
fn a_software_wgpu_adapter_is_named_before_any_work() {
    let directory = tempfile::tempdir().unwrap();
    let input = directory.path().join("in.png");
    test_image(8, 8).save(&input).unwrap();
    // Weights that fail to load: the run stops right after choosing the backend.
    let broken = directory.path().join("broken.rdnz");
    let bytes = std::fs::read(weights()).unwrap();
    std::fs::write(&broken, &bytes[..bytes.len() / 3]).unwrap();
    let result = run(&[
        "denoise", input.to_str().unwrap(), "-o", directory.path().join("o.png").to_str().unwrap(),
        "--weights", broken.to_str().unwrap(), "--backend", "wgpu",
    ]);
    assert!(!result.status.success());
    let message = stderr(&result);
    let no_gpu = !Path::new("/dev/dri").exists() && !Path::new("/dev/nvidia0").exists();
    if message.contains("found no GPU adapter") {
        return; // No Vulkan driver at all (lavapipe missing): nothing to warn about.
    }
    assert!(message.contains("truncated"), "{message}");
    if no_gpu {
        assert!(message.contains("a software renderer"), "no software-adapter warning: {message}");
        assert!(message.contains("use --backend cpu"), "{message}");
        let warning = message.find("software renderer").unwrap();
        assert!(warning < message.find("truncated").unwrap(), "the warning comes after the work: {message}");
    }
}

#[test]
fn no_windowing_noise_on_stderr_without_a_desktop_session() {
    let directory = tempfile::tempdir().unwrap();
    let input = directory.path().join("in.png");
    test_image(8, 8).save(&input).unwrap();
    let output = directory.path().join("out.png");
    let mut args = denoise_args(&input, &output, &[]);
    let position = args.iter().position(|a| *a == "cpu").unwrap();
    args[position] = "auto";
    // libwayland complains when XDG_RUNTIME_DIR is unset (a nonexistent one fails silently).
    let result = binary()
        .args(&args)
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DISPLAY")
        .env_remove("NODEVICE_SELECT")
        .output()
        .unwrap();
    assert!(result.status.success(), "{}", stderr(&result));
    assert!(!stderr(&result).contains("XDG_RUNTIME_DIR"), "{}", stderr(&result));

    // --backend wgpu also starts burn's own Vulkan instance; weights that fail
    // to load stop the run right after it.
    let broken = directory.path().join("broken.rdnz");
    let bytes = std::fs::read(weights()).unwrap();
    std::fs::write(&broken, &bytes[..bytes.len() / 3]).unwrap();
    let result = binary()
        .args(["denoise", input.to_str().unwrap(), "-o", output.to_str().unwrap(), "--force"])
        .args(["--weights", broken.to_str().unwrap(), "--backend", "wgpu"])
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DISPLAY")
        .env_remove("NODEVICE_SELECT")
        .output()
        .unwrap();
    assert!(!stderr(&result).contains("XDG_RUNTIME_DIR"), "{}", stderr(&result));
}

// 6. Memory budgets.

#[test]
fn out_of_range_memory_budgets_are_refused_at_parsing() {
    let directory = tempfile::tempdir().unwrap();
    let input = directory.path().join("in.png");
    test_image(8, 8).save(&input).unwrap();
    let output = directory.path().join("out.png");
    // 2^44 MiB is 2^64 bytes: `<< 20` wrapped it to 0; `checked_mul` fell back to 1 GiB without a word.
    for value in ["0", "17592186044416", "1048577", "18446744073709551615"] {
        let result = denoise(&input, &output, &["--memory-mib", value]);
        assert_eq!(result.status.code(), Some(2), "denoise --memory-mib {value}: {}", stderr(&result));
        assert!(stderr(&result).contains("--memory-mib"), "{}", stderr(&result));
        let result = run(&["bench", "--backend", "cpu", "--sizes", "8x8", "--steps", "1", "--memory-mib", value]);
        assert_eq!(result.status.code(), Some(2), "bench --memory-mib {value}: {}", stderr(&result));
        assert!(stderr(&result).contains("--memory-mib"), "{}", stderr(&result));
    }
    assert!(!output.exists());
    let result = denoise(&input, &output, &["--memory-mib", "1048576"]);
    assert!(result.status.success(), "{}", stderr(&result));
}

// 7. Image sizes, kinds and orientation.

#[test]
fn oversized_images_are_refused_before_decoding() {
    let directory = tempfile::tempdir().unwrap();
    let output = directory.path().join("out.png");
    for (width, height, expected) in [
        (100_000, 100_000, "100000x100000 pixels"),
        (65_536, 1, "65536x1 pixels"),
        (20_000, 20_000, "400.0 megapixels"),
    ] {
        let input = directory.path().join(format!("bomb-{width}x{height}.png"));
        std::fs::write(&input, png_bomb(width, height)).unwrap();
        let result = denoise(&input, &output, &[]);
        let message = stderr(&result);
        assert!(!result.status.success());
        assert!(message.contains(&format!("bomb-{width}x{height}.png")), "{message}");
        assert!(message.contains(expected), "{message}");
        assert!(message.contains("at most 65535 pixels per side and 200 megapixels"), "{message}");
        assert!(!message.contains("UNTRAINED"), "work started: {message}");
    }
    // WebP cannot store a side over 16383: refused before work, not after.
    let input = directory.path().join("wide.png");
    let mut bytes = Vec::new();
    DynamicImage::ImageLuma8(ImageBuffer::from_pixel(16_384, 1, Luma([9u8])))
        .write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Png)
        .unwrap();
    std::fs::write(&input, bytes).unwrap();
    let result = denoise(&input, &directory.path().join("wide.webp"), &[]);
    assert!(!result.status.success());
    assert!(stderr(&result).contains("WebP stores at most 16383 pixels per side"), "{}", stderr(&result));

    let help = run(&["denoise", "--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("At most 65535 pixels per side and 200 megapixels"), "{text}");
}

#[test]
fn every_input_kind_is_denoised() {
    let directory = tempfile::tempdir().unwrap();
    let save = |name: &str, image: DynamicImage| {
        let path = directory.path().join(name);
        if name.ends_with(".jpg") {
            write_jpeg(&path, &image, None, None);
        } else {
            image.save(&path).unwrap();
        }
        path
    };
    let gradient = |x: u32, y: u32| (x * 20 + y * 9) as u16;
    let cases: Vec<(&str, PathBuf, (u32, u32))> = vec![
        ("grey 8-bit PNG", save("grey.png", DynamicImage::ImageLuma8(ImageBuffer::from_fn(14, 9, |x, y| Luma([gradient(x, y) as u8])))), (14, 9)),
        ("grey+alpha PNG", save("grey-alpha.png", DynamicImage::ImageLumaA8(ImageBuffer::from_fn(14, 9, |x, y| LumaA([gradient(x, y) as u8, 200])))), (14, 9)),
        ("grey 16-bit PNG", save("grey16.png", DynamicImage::ImageLuma16(ImageBuffer::from_fn(14, 9, |x, y| Luma([gradient(x, y) * 150])))), (14, 9)),
        ("RGBA 16-bit PNG", save("rgba16.png", DynamicImage::ImageRgba16(ImageBuffer::from_fn(14, 9, |x, y| Rgba([gradient(x, y) * 190, 9000, 3, 60_000])))), (14, 9)),
        ("grey JPEG", save("grey.jpg", DynamicImage::ImageLuma8(ImageBuffer::from_fn(14, 9, |x, y| Luma([gradient(x, y) as u8])))), (14, 9)),
        ("RGBA WebP", save("rgba.webp", DynamicImage::ImageRgba8(test_image(14, 9))), (14, 9)),
        ("palette PNG", fixture("palette.png"), (16, 12)),
        ("CMYK JPEG", fixture("cmyk.jpg"), (16, 12)),
        ("progressive JPEG", fixture("progressive.jpg"), (24, 16)),
    ];
    for (kind, input, dimensions) in cases {
        let output = directory.path().join("out.png");
        let result = denoise(&input, &output, &["--force"]);
        assert!(result.status.success(), "{kind}: {}", stderr(&result));
        assert_eq!(image::open(&output).unwrap().dimensions_of(), dimensions, "{kind}");
    }
    // The CMYK JPEG's colours survive conversion: its top-left is (0, 0, 128) in RGB.
    let output = directory.path().join("cmyk.png");
    let result = denoise(&fixture("cmyk.jpg"), &output, &["--strength", "0"]);
    assert!(result.status.success(), "{}", stderr(&result));
    let pixel = image::open(&output).unwrap().into_rgb8().get_pixel(0, 0).0;
    assert!(pixel[0] < 40 && pixel[1] < 40 && (100..160).contains(&pixel[2]), "CMYK converted to {pixel:?}");
}

#[test]
fn exif_orientation_is_applied_and_reset() {
    let directory = tempfile::tempdir().unwrap();
    // Stored 24 wide, 16 high, red 8x8 block at the stored top-left, the rest
    // blue; orientation 6 turns it 90 degrees clockwise for display.
    let input = fixture("orientation6.jpg");
    let output = directory.path().join("upright.png");
    let result = denoise(&input, &output, &["--strength", "0"]);
    assert!(result.status.success(), "{}", stderr(&result));
    let upright = image::open(&output).unwrap().into_rgb8();
    assert_eq!(upright.dimensions(), (16, 24));
    let red = |p: [u8; 3]| p[0] > 200 && p[2] < 60;
    let blue = |p: [u8; 3]| p[2] > 200 && p[0] < 60;
    assert!(red(upright.get_pixel(12, 3).0), "top right is {:?}", upright.get_pixel(12, 3).0);
    assert!(blue(upright.get_pixel(3, 3).0), "top left is {:?}", upright.get_pixel(3, 3).0);
    assert!(blue(upright.get_pixel(12, 20).0), "bottom right is {:?}", upright.get_pixel(12, 20).0);

    // A JPEG output keeps the EXIF data, with the orientation reset.
    let output = directory.path().join("upright.jpg");
    let result = denoise(&input, &output, &["--strength", "0"]);
    assert!(result.status.success(), "{}", stderr(&result));
    let mut decoder = JpegDecoder::new(BufReader::new(File::open(&output).unwrap())).unwrap();
    assert_eq!(decoder.dimensions(), (16, 24));
    assert!(decoder.exif_metadata().unwrap().is_some(), "the EXIF data was dropped");
    assert_eq!(decoder.orientation().unwrap(), Orientation::NoTransforms);
    // And a PNG output from a PNG with an orientation tag, likewise.
    let tagged = directory.path().join("tagged.png");
    let mut encoder = PngEncoder::new(File::create(&tagged).unwrap());
    encoder.set_exif_metadata(exif_block(6)).unwrap();
    DynamicImage::ImageRgba8(test_image(24, 16)).write_with_encoder(encoder).unwrap();
    let output = directory.path().join("tagged-out.png");
    let result = denoise(&tagged, &output, &[]);
    assert!(result.status.success(), "{}", stderr(&result));
    let mut decoder = PngDecoder::new(BufReader::new(File::open(&output).unwrap())).unwrap();
    assert_eq!(decoder.dimensions(), (16, 24));
    assert_eq!(decoder.orientation().unwrap(), Orientation::NoTransforms);
    assert_eq!(decoder.exif_metadata().unwrap().unwrap(), exif_block(1));
}

#[test]
fn two_inputs_with_one_name_never_share_an_output() {
    let directory = tempfile::tempdir().unwrap();
    let (a, b, out) = (directory.path().join("a"), directory.path().join("b"), directory.path().join("out"));
    for dir in [&a, &b, &out] {
        std::fs::create_dir(dir).unwrap();
    }
    test_image(8, 8).save(a.join("x.png")).unwrap();
    test_image(9, 9).save(b.join("x.png")).unwrap();
    let result = run(&[
        "denoise", a.join("x.png").to_str().unwrap(), b.join("x.png").to_str().unwrap(), "--out-dir",
        out.to_str().unwrap(), "--weights", weights().to_str().unwrap(), "--backend", "cpu", "--steps", "1",
    ]);
    assert!(!result.status.success());
    assert!(stderr(&result).contains("two inputs would both be written to"), "{}", stderr(&result));
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
}
