//! Seeded mutation fuzzing of the CLI's image reading (`src/files.rs`,
//! compiled into this test as it is): the header probe with its size limits
//! (65,535 px per side, 200 MP), the JPEG marker walk, and decoding with
//! EXIF orientation, ICC and EXIF extraction.
//!
//! Seeds: small PNG (8 and 16 bit, grey, palette, animated), JPEG
//! (baseline, progressive, CMYK, rotated by EXIF) and WebP files. Mutations:
//! bit flips, truncation, inserted and deleted bytes, and header edits that
//! claim other sizes (PNG IHDR with a valid CRC, JPEG SOF). Every case must
//! end in an image or an error, never a panic, a hang (over 5 s) or an
//! allocation beyond 3 copies of the 16-bit RGBA image its header declares
//! plus 4x the file.
//!
//! Long mode: `REALDENOISE_FUZZ_CASES=100000 cargo test --release --test fuzz_images -- --nocapture`.

#[allow(dead_code)]
#[path = "../src/files.rs"]
mod files;

#[path = "../../tests/support/fuzzing.rs"]
mod fuzzing;

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use fuzzing::{base_seed, case_seed, panic_message, peak_allocation, Rng, Tracking, INTERESTING};
use image::{DynamicImage, ImageFormat, Rgba, RgbaImage};

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

const QUICK_CASES: u64 = 2000;
const HANG: Duration = Duration::from_secs(5);
/// The decoders' own buffers, tables and the harness's bookkeeping.
const OVERHEAD: usize = 16 << 20;

fn encoded(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Vec::new();
    image.write_to(&mut Cursor::new(&mut bytes), format).expect("encodes");
    bytes
}

fn seeds() -> Vec<Vec<u8>> {
    let rgba = RgbaImage::from_fn(24, 16, |x, y| Rgba([(x * 10) as u8, (y * 15) as u8, 90, 200 + x as u8]));
    let image = DynamicImage::ImageRgba8(rgba);
    let mut seeds = vec![
        encoded(image.clone(), ImageFormat::Png),
        encoded(DynamicImage::ImageRgba16(image.to_rgba16()), ImageFormat::Png),
        encoded(DynamicImage::ImageLuma8(image.to_luma8()), ImageFormat::Png),
        encoded(DynamicImage::ImageRgb8(image.to_rgb8()), ImageFormat::Jpeg),
        encoded(image.clone(), ImageFormat::WebP),
    ];
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for name in ["palette.png", "animated.png", "progressive.jpg", "cmyk.jpg", "orientation6.jpg", "animated.webp"] {
        seeds.push(std::fs::read(fixtures.join(name)).expect("the fixture is in the repository"));
    }
    seeds
}

/// Sets a PNG's IHDR size and recomputes the chunk's CRC, so the decoder
/// believes it.
fn claim_png_size(bytes: &mut [u8], width: u32, height: u32) {
    if bytes.len() >= 33 && &bytes[12..16] == b"IHDR" {
        bytes[16..20].copy_from_slice(&width.to_be_bytes());
        bytes[20..24].copy_from_slice(&height.to_be_bytes());
        let crc = crc32fast::hash(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    }
}

/// Sets the size in a JPEG's first SOF segment (baseline, extended or progressive).
fn claim_jpeg_size(bytes: &mut [u8], width: u16, height: u16) {
    if let Some(at) = bytes.windows(2).position(|w| w[0] == 0xFF && matches!(w[1], 0xC0 | 0xC1 | 0xC2)) {
        if at + 9 <= bytes.len() {
            bytes[at + 5..at + 7].copy_from_slice(&height.to_be_bytes());
            bytes[at + 7..at + 9].copy_from_slice(&width.to_be_bytes());
        }
    }
}

fn mutate(rng: &mut Rng, original: &[u8]) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for _ in 0..1 + rng.below(3) {
        match rng.below(6) {
            0 if !bytes.is_empty() => {
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
            }
            1 => bytes.truncate(rng.below(bytes.len() + 1)),
            2 => {
                let at = rng.below(bytes.len() + 1);
                let extra: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.next() as u8).collect();
                bytes.splice(at..at, extra);
            }
            3 if bytes.len() > 1 => {
                let at = rng.below(bytes.len() - 1);
                let end = (at + 1 + rng.below(8)).min(bytes.len());
                bytes.drain(at..end);
            }
            _ => {
                let side = |rng: &mut Rng| INTERESTING[rng.below(INTERESTING.len())] as u32;
                let (width, height) = (side(rng), side(rng));
                claim_png_size(&mut bytes, width, height);
                claim_jpeg_size(&mut bytes, width as u16, height as u16);
            }
        }
    }
    bytes
}

#[test]
fn fuzz_image_reading() {
    let seeds = seeds();
    let directory = tempfile::tempdir().unwrap();
    let count = fuzzing::cases(QUICK_CASES);
    let (mut decoded, mut refused, mut slowest, mut most) = (0u64, 0u64, Duration::ZERO, 0usize);
    let started = Instant::now();
    for case in 0..count {
        let mut rng = Rng(case_seed(case));
        let original = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, original);
        // The extension does not matter: formats are told by content.
        let path = directory.path().join(format!("case-{}", case % 4));
        std::fs::write(&path, &input).unwrap();
        let reproduce = format!("image case {case} (REALDENOISE_FUZZ_SEED={}), {} bytes", base_seed(), input.len());
        let began = Instant::now();
        let ((result, declared), peak) = peak_allocation(|| {
            let declared = files::probe(&path).map(|p| p.width as usize * p.height as usize).unwrap_or(0);
            (catch_unwind(AssertUnwindSafe(|| files::load(&path).map(|image| image.pixels.dimensions()))), declared)
        });
        let took = began.elapsed();
        match result {
            Ok(Ok((width, height))) => {
                assert!(width as usize * height as usize <= declared.max(1), "{reproduce}: decoded {width}x{height}, more than the header said");
                decoded += 1;
            }
            Ok(Err(_)) => refused += 1,
            Err(panic) => panic!("{reproduce}: panicked: {}", panic_message(panic.as_ref())),
        }
        assert!(took < HANG, "{reproduce}: took {took:?} (a hang)");
        let allowed = 4 * input.len() + 3 * 8 * declared + OVERHEAD;
        assert!(peak <= allowed, "{reproduce}: allocated {peak} bytes for a header of {declared} pixels");
        slowest = slowest.max(took);
        most = most.max(peak.saturating_sub(4 * input.len() + 3 * 8 * declared));
        if count >= 10_000 && (case + 1) % 10_000 == 0 {
            eprintln!("fuzz images: {} cases, {:.0} s", case + 1, started.elapsed().as_secs_f64());
        }
    }
    println!(
        "fuzz images: {count} cases in {:.1} s, 0 panics, 0 hangs; decoded {decoded}, refused {refused}; slowest case {:.1} ms; \
         most allocated beyond the declared image: {:.1} MiB (allowed {} MiB)",
        started.elapsed().as_secs_f64(),
        slowest.as_secs_f64() * 1e3,
        most as f64 / (1 << 20) as f64,
        OVERHEAD >> 20
    );
    // Both outcomes must be common, or the mutations are too mild or too wild.
    assert!(decoded * 10 >= count && refused * 10 >= count, "decoded {decoded}, refused {refused} of {count}");
}
