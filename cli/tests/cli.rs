//! The `realdenoise` binary end to end, on the CPU backend.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use image::{Rgba, RgbaImage};

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_realdenoise"))
}

fn run(args: &[&str]) -> Output {
    binary().args(args).output().expect("the binary runs")
}

/// Untrained weights made once for all tests.
fn weights() -> &'static Path {
    static WEIGHTS: OnceLock<PathBuf> = OnceLock::new();
    WEIGHTS.get_or_init(|| {
        let directory = std::env::temp_dir().join(format!("realdenoise-cli-tests-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("untrained.rdnz");
        let output = run(&["init-weights", path.to_str().unwrap(), "--seed", "3"]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        path
    })
}

fn test_image(width: u32, height: u32) -> RgbaImage {
    RgbaImage::from_fn(width, height, |x, y| {
        Rgba([(x * 5 % 256) as u8, (y * 3 % 256) as u8, ((x + y) % 256) as u8, (x * 7 + y) as u8])
    })
}

fn denoise(input: &Path, output: &Path, extra: &[&str]) -> Output {
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
    run(&args)
}

#[test]
fn a_png_round_trips_with_its_alpha_untouched() {
    let directory = tempfile::tempdir().unwrap();
    let input = directory.path().join("in.png");
    let output = directory.path().join("out.png");
    let original = test_image(70, 45);
    original.save(&input).unwrap();

    let result = denoise(&input, &output, &[]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("UNTRAINED"), "no untrained warning: {stderr}");

    let denoised = image::open(&output).unwrap().into_rgba8();
    assert_eq!(denoised.dimensions(), (70, 45));
    let alpha_same = original.pixels().zip(denoised.pixels()).all(|(a, b)| a[3] == b[3]);
    assert!(alpha_same, "alpha was modified");
    let rgb_changed = original.pixels().zip(denoised.pixels()).filter(|(a, b)| a[0] != b[0]).count();
    assert!(rgb_changed > 100, "the network did not touch the colours ({rgb_changed} pixels changed)");
}

#[test]
fn strength_zero_writes_the_input_pixels() {
    let directory = tempfile::tempdir().unwrap();
    let input = directory.path().join("in.png");
    let output = directory.path().join("out.webp");
    let original = test_image(33, 20);
    original.save(&input).unwrap();
    let result = denoise(&input, &output, &["--strength", "0"]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    assert_eq!(image::open(&output).unwrap().into_rgba8(), original);
}

#[test]
fn the_input_is_never_overwritten() {
    let directory = tempfile::tempdir().unwrap();
    let input = directory.path().join("photo.png");
    test_image(20, 20).save(&input).unwrap();
    let before = std::fs::read(&input).unwrap();

    let same = denoise(&input, &input, &["--force"]);
    assert!(!same.status.success());
    assert!(String::from_utf8_lossy(&same.stderr).contains("refusing to overwrite the input"));

    let via_dir = run(&[
        "denoise",
        input.to_str().unwrap(),
        "--out-dir",
        directory.path().to_str().unwrap(),
        "--weights",
        weights().to_str().unwrap(),
        "--backend",
        "cpu",
        "--force",
    ]);
    assert!(!via_dir.status.success());
    assert_eq!(std::fs::read(&input).unwrap(), before);
}

#[test]
fn existing_outputs_need_force() {
    let directory = tempfile::tempdir().unwrap();
    let input = directory.path().join("in.png");
    let output = directory.path().join("out.png");
    test_image(20, 20).save(&input).unwrap();
    std::fs::write(&output, b"keep me").unwrap();
    let refused = denoise(&input, &output, &[]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    assert_eq!(std::fs::read(&output).unwrap(), b"keep me");
    let forced = denoise(&input, &output, &["--force"]);
    assert!(forced.status.success(), "{}", String::from_utf8_lossy(&forced.stderr));
    assert_eq!(image::open(&output).unwrap().into_rgba8().dimensions(), (20, 20));
}

#[test]
fn unreadable_and_unsupported_inputs_get_clear_errors() {
    let directory = tempfile::tempdir().unwrap();
    let output = directory.path().join("out.png");

    let text = directory.path().join("notes.png");
    std::fs::write(&text, b"this is not an image").unwrap();
    let result = denoise(&text, &output, &[]);
    assert!(!result.status.success());
    assert!(String::from_utf8_lossy(&result.stderr).contains("not a PNG, JPEG or WebP"), "{}", String::from_utf8_lossy(&result.stderr));

    let missing = directory.path().join("missing.png");
    let result = denoise(&missing, &output, &[]);
    assert!(String::from_utf8_lossy(&result.stderr).contains("does not exist"));

    let input = directory.path().join("in.png");
    test_image(8, 8).save(&input).unwrap();
    let result = denoise(&input, &directory.path().join("out.tiff"), &[]);
    assert!(String::from_utf8_lossy(&result.stderr).contains("cannot write .tiff"));
    assert!(!output.exists());
}

#[test]
fn bad_weights_are_named_in_the_error() {
    let directory = tempfile::tempdir().unwrap();
    let input = directory.path().join("in.png");
    test_image(8, 8).save(&input).unwrap();
    let broken = directory.path().join("broken.rdnz");
    let bytes = std::fs::read(weights()).unwrap();
    std::fs::write(&broken, &bytes[..bytes.len() / 3]).unwrap();
    let result = run(&[
        "denoise", input.to_str().unwrap(), "-o", directory.path().join("o.png").to_str().unwrap(),
        "--weights", broken.to_str().unwrap(), "--backend", "cpu",
    ]);
    assert!(!result.status.success());
    assert!(String::from_utf8_lossy(&result.stderr).contains("truncated"));
}

#[test]
fn info_prints_the_header() {
    let result = run(&["info", weights().to_str().unwrap()]);
    assert!(result.status.success());
    let text = String::from_utf8_lossy(&result.stdout);
    assert!(text.contains("parameters:     889187"), "{text}");
    assert!(text.contains("T (timesteps):  100"));
    assert!(text.contains("NO (random initialisation)"));
}

#[test]
fn the_wgpu_backend_matches_the_cpu_backend() {
    // Needs a Vulkan driver; `make setup` installs lavapipe for machines without a GPU.
    let directory = tempfile::tempdir().unwrap();
    let input = directory.path().join("in.png");
    test_image(130, 70).save(&input).unwrap();
    let mut results = Vec::new();
    for backend in ["cpu", "wgpu"] {
        let output = directory.path().join(format!("{backend}.png"));
        let result = run(&[
            "denoise", input.to_str().unwrap(), "-o", output.to_str().unwrap(),
            "--weights", weights().to_str().unwrap(), "--backend", backend, "--steps", "2", "--quiet",
        ]);
        assert!(result.status.success(), "{backend}: {}", String::from_utf8_lossy(&result.stderr));
        results.push(image::open(&output).unwrap().into_rgba8());
    }
    let worst = results[0]
        .as_raw()
        .iter()
        .zip(results[1].as_raw())
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert!(worst <= 2, "wgpu and cpu outputs differ by {worst}/255");
}
