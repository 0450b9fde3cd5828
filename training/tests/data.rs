//! Tests of the data-preparation module (no network).
//!
//! The full fetch is an ignored test: `REALDENOISE_FETCH=1 cargo test --release
//! -p realdenoise-training --test data -- --ignored --nocapture full_fetch`.

use std::io::Cursor;
use std::path::PathBuf;

use image::{Rgb, RgbImage};
use realdenoise_training::data::{
    box_downscale, crop_to_multiple, find_jpeg_streams, jpeg_stream_len, linear_to_srgb_code, load_split, srgb_code_to_linear,
    DataError, FetchOptions, PhotoList, Split,
};

fn srgb_mean(values: &[u8]) -> u8 {
    // Independent reference: the sRGB formulas written out again.
    let lin = |v: u8| {
        let c = v as f64 / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let m = values.iter().map(|&v| lin(v)).sum::<f64>() / values.len() as f64;
    let s = if m <= 0.0031308 { 12.92 * m } else { 1.055 * m.powf(1.0 / 2.4) - 0.055 };
    (s * 255.0).round() as u8
}

#[test]
fn srgb_round_trip_is_exact_for_all_codes() {
    for v in 0..=255u8 {
        assert_eq!(linear_to_srgb_code(srgb_code_to_linear(v)), v, "code {v}");
    }
}

#[test]
fn box_filter_4x4_to_2x2_exact_numbers() {
    // Grey levels; each 2x2 block is one output pixel.
    #[rustfmt::skip]
    let grey: [u8; 16] = [
        0,   255,   100, 100,
        255, 0,     100, 100,
        0,   0,     10,  20,
        0,   255,   30,  40,
    ];
    let img = RgbImage::from_fn(4, 4, |x, y| {
        let v = grey[(y * 4 + x) as usize];
        Rgb([v, v / 2, 255 - v])
    });
    let out = box_downscale(&img, 2);
    assert_eq!(out.dimensions(), (2, 2));
    // Linear-light means, worked out by hand:
    // {0,255,255,0}: linear mean 0.5 -> sRGB 0.7354 -> 188 (an sRGB-space mean would give 128).
    // {100 x4} -> 100.  {0,0,0,255}: linear 0.25 -> 0.5371 -> 137.
    // {10,20,30,40}: linear (0.003035+0.006995+0.012983+0.021219)/4 = 0.011058 -> 0.1062 -> 27.
    assert_eq!(out.get_pixel(0, 0)[0], 188);
    assert_eq!(out.get_pixel(1, 0)[0], 100);
    assert_eq!(out.get_pixel(0, 1)[0], 137);
    assert_eq!(out.get_pixel(1, 1)[0], 27);
    // Every channel matches the independent reference.
    for (ox, oy) in [(0u32, 0u32), (1, 0), (0, 1), (1, 1)] {
        for c in 0..3 {
            let block: Vec<u8> = (0..2)
                .flat_map(|dy| (0..2).map(move |dx| (dx, dy)))
                .map(|(dx, dy)| img.get_pixel(ox * 2 + dx, oy * 2 + dy)[c])
                .collect();
            assert_eq!(out.get_pixel(ox, oy)[c], srgb_mean(&block), "pixel ({ox},{oy}) channel {c}");
        }
    }
}

#[test]
fn box_filter_keeps_constant_images_constant() {
    for factor in [2u32, 3, 4, 5] {
        for v in [0u8, 1, 17, 128, 200, 254, 255] {
            let img = RgbImage::from_pixel(23, 17, Rgb([v, 255 - v, v / 3]));
            let out = box_downscale(&img, factor);
            assert_eq!(out.dimensions(), (23 / factor, 17 / factor));
            assert!(out.pixels().all(|p| p.0 == [v, 255 - v, v / 3]), "factor {factor} value {v}");
        }
    }
}

#[test]
fn box_filter_flattens_checkerboard_at_its_period() {
    for factor in [2u32, 4] {
        // Cells of one pixel: every factor x factor block holds as many black as white.
        let img = RgbImage::from_fn(8 * factor + 1, 6 * factor + 1, |x, y| {
            if (x + y) % 2 == 0 {
                Rgb([0, 0, 0])
            } else {
                Rgb([255, 255, 255])
            }
        });
        let out = box_downscale(&img, factor);
        assert_eq!(out.dimensions(), (8, 6));
        // Linear mean 0.5 -> sRGB 188, the same everywhere.
        assert!(out.pixels().all(|p| p.0 == [188, 188, 188]), "factor {factor}: {:?}", out.get_pixel(0, 0));
    }
}

#[test]
fn crop_is_centred_and_factor_one_is_identity() {
    let img = RgbImage::from_fn(7, 5, |x, y| Rgb([x as u8, y as u8, 0]));
    let c = crop_to_multiple(&img, 2);
    assert_eq!(c.dimensions(), (6, 4));
    assert_eq!(c.get_pixel(0, 0).0, [0, 0, 0]);
    let c = crop_to_multiple(&img, 3);
    assert_eq!(c.dimensions(), (6, 3));
    assert_eq!(c.get_pixel(0, 0).0, [0, 1, 0]);
    assert_eq!(box_downscale(&img, 1), img);
    // Downscale crops the same way: a 7x5 image by 3 reads rows 1..4, columns 0..6.
    let out = box_downscale(&img, 3);
    assert_eq!(out.dimensions(), (2, 1));
    assert_eq!(out.get_pixel(0, 0)[1], srgb_mean(&[1, 1, 1, 2, 2, 2, 3, 3, 3]));
}

fn tiny_jpeg(seed: u8, w: u32, h: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, y| Rgb([(x * 9) as u8 ^ seed, (y * 13) as u8, seed]));
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Jpeg).expect("encode jpeg");
    buf.into_inner()
}

#[test]
fn finds_two_jpegs_among_junk() {
    let a = tiny_jpeg(3, 40, 24);
    let b = tiny_jpeg(200, 17, 33);
    let mut buf: Vec<u8> = b"EET header \xFF\xD8 not-a-jpeg \xFF\xD8\xFF\x00 broken".to_vec();
    buf.extend((0..500u32).map(|i| (i * 31 % 251) as u8));
    let off_a = buf.len();
    buf.extend_from_slice(&a);
    buf.extend_from_slice(b"\xFF\xD9\xFF\xD8junk between");
    let off_b = buf.len();
    buf.extend_from_slice(&b);
    buf.extend_from_slice(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00]); // truncated third candidate
    let streams = find_jpeg_streams(&buf);
    assert_eq!(streams.len(), 2, "{streams:?}");
    assert_eq!((streams[0].offset, streams[0].len), (off_a, a.len()));
    assert_eq!((streams[1].offset, streams[1].len), (off_b, b.len()));
    let da = image::load_from_memory(&buf[off_a..off_a + a.len()]).expect("decode a");
    let db = image::load_from_memory(&buf[off_b..off_b + b.len()]).expect("decode b");
    assert_eq!((da.width(), da.height()), (40, 24));
    assert_eq!((db.width(), db.height()), (17, 33));
    assert_eq!(jpeg_stream_len(&buf, 11), None);
}

#[test]
fn jpeg_with_eoi_inside_an_app_segment_is_not_cut_short() {
    let a = tiny_jpeg(9, 16, 16);
    // Insert an APP1 segment whose payload contains FFD9 (like an EXIF thumbnail).
    let payload = [0xFF, 0xD8, 0xFF, 0xD9, 1, 2, 3];
    let mut j = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, (payload.len() + 2) as u8];
    j.extend_from_slice(&payload);
    j.extend_from_slice(&a[2..]);
    let mut buf = b"junk".to_vec();
    buf.extend_from_slice(&j);
    buf.extend_from_slice(b"tail");
    let streams = find_jpeg_streams(&buf);
    assert_eq!(streams.len(), 1);
    assert_eq!((streams[0].offset, streams[0].len), (4, j.len()));
}

#[test]
fn photo_list_parses_and_keeps_validation_out_of_training() {
    let list = PhotoList::builtin().expect("photos.json parses and validates");
    assert!(list.train.len() >= 20, "{} training photos", list.train.len());
    assert!(list.validation.len() >= 5);
    let val_names: Vec<&str> = list.validation.iter().map(|p| p.name.as_str()).collect();
    let val_paths: Vec<&str> = list.validation.iter().map(|p| p.path.as_str()).collect();
    let train_packages = ["enlightenment-data", "mate-backgrounds", "plasma-workspace-wallpapers", "palapeli-data"];
    for p in &list.train {
        assert!(!val_names.contains(&p.name.as_str()), "{} in both", p.name);
        assert!(!val_paths.contains(&p.path.as_str()), "{} in both", p.path);
        // No validation image name sneaks into a training path either.
        for v in ["astronaut", "chelsea", "coffee", "motorcycle", "rocket", "china", "flower.jpg", "grace_hopper"] {
            assert!(!p.path.contains(v) || p.package != "scikit-image", "{}", p.path);
        }
        assert!(train_packages.contains(&p.package.as_str()), "training source {} not allowed", p.package);
        assert!(!p.licence.is_empty());
        assert!(p.factor >= 2, "{}: training targets are downscaled at least 2x", p.name);
    }
    for p in &list.validation {
        assert!(["scikit-image", "scikit-learn", "matplotlib"].contains(&p.package.as_str()));
    }
    // Each training package contributes.
    for pkg in train_packages {
        assert!(list.train.iter().any(|p| p.package == pkg), "no photo from {pkg}");
    }
}

#[test]
fn photo_list_rejects_validation_photo_in_training() {
    let mut list = PhotoList::builtin().expect("photos.json");
    let mut leak = list.validation[0].clone();
    leak.name = "leak".into();
    leak.package = "mate-backgrounds".into();
    list.train.push(leak);
    let err = list.validate("test").expect_err("must reject");
    assert!(err.to_string().contains("also in the training list"), "{err}");
}

#[test]
fn load_split_errors_clearly_without_manifest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = load_split(dir.path(), Split::Train).expect_err("no manifest");
    match &err {
        DataError::MissingFile { path, .. } => assert!(path.ends_with("manifest.json"), "{path:?}"),
        other => panic!("expected MissingFile, got {other:?}"),
    }
    assert!(err.to_string().contains("fetch-data"), "{err}");
}

#[test]
fn load_split_detects_a_tampered_file() {
    // A tiny hand-made data set with a correct manifest, then one corrupted PNG.
    use realdenoise_training::data::{encode_png, sha256_hex, Manifest, ManifestEntry, ManifestFile};
    let dir = tempfile::tempdir().expect("tempdir");
    let img = RgbImage::from_fn(8, 6, |x, y| Rgb([x as u8 * 20, y as u8 * 30, 7]));
    let png = encode_png(&img).expect("png");
    std::fs::create_dir_all(dir.path().join("val")).expect("mkdir");
    std::fs::write(dir.path().join("val/a.png"), &png).expect("write");
    let entry = ManifestEntry {
        name: "a".into(),
        file: "val/a.png".into(),
        package: "p".into(),
        version: "1".into(),
        source_path: "x".into(),
        stream: None,
        licence: "l".into(),
        source_sha256: "0".repeat(64),
        source_size: [8, 6],
        factor: 1,
        size: [8, 6],
        sha256: sha256_hex(&png),
        bytes: png.len() as u64,
    };
    let m = Manifest {
        format: realdenoise_training::data::MANIFEST_FORMAT,
        downscale: String::new(),
        photo_list_sha256: String::new(),
        debian: Default::default(),
        wheels: Default::default(),
        noise_profiles: ManifestFile {
            file: "noiseprofiles.json".into(),
            package: "darktable".into(),
            version: "1".into(),
            source_path: "x".into(),
            licence: "l".into(),
            sha256: String::new(),
            bytes: 0,
        },
        train: vec![],
        val: vec![entry],
        train_pixels: 0,
        val_pixels: 48,
        total_bytes: png.len() as u64,
    };
    std::fs::write(dir.path().join("manifest.json"), serde_json::to_string(&m).expect("json")).expect("write");
    let loaded = load_split(dir.path(), Split::Val).expect("loads");
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].name, "a");
    assert_eq!(loaded[0].image, img);
    let mut bad = png.clone();
    let n = bad.len();
    bad[n / 2] ^= 0x55;
    std::fs::write(dir.path().join("val/a.png"), &bad).expect("write");
    let err = load_split(dir.path(), Split::Val).expect_err("tampered");
    assert!(matches!(err, DataError::HashMismatch { .. }), "{err:?}");
}

/// The real thing: downloads (apt-get, pip) and builds the set.
/// Set REALDENOISE_DATA_DIR to choose the output directory.
#[test]
#[ignore = "network + ~600 MB of downloads; run by hand"]
fn full_fetch() {
    let mut opts = FetchOptions::default();
    if let Some(d) = std::env::var_os("REALDENOISE_DATA_DIR") {
        opts.out_dir = PathBuf::from(d);
    }
    opts.force = std::env::var_os("REALDENOISE_FETCH_FORCE").is_some();
    let t = std::time::Instant::now();
    let m = realdenoise_training::data::fetch_data(&opts).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "fetch_data: {} train ({} px), {} val ({} px), {:.2} MiB, {:.1}s",
        m.train.len(),
        m.train_pixels,
        m.val.len(),
        m.val_pixels,
        m.total_bytes as f64 / 1048576.0,
        t.elapsed().as_secs_f64()
    );
    let train = load_split(&opts.out_dir, Split::Train).unwrap_or_else(|e| panic!("{e}"));
    let val = load_split(&opts.out_dir, Split::Val).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(train.len(), m.train.len());
    assert_eq!(val.len(), m.val.len());
    assert!(realdenoise_training::data::noise_profiles_path(&opts.out_dir).is_file());
}
