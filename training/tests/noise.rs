//! Tests of the camera-noise synthesis (`realdenoise_training::noise`).
//! Every test asserts numbers; the printed values are the measurements the
//! bounds were set from.

use image::Rgb32FImage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use realdenoise_training::reports::metrics::psnr;
use realdenoise_training::noise::*;
use std::path::PathBuf;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn sample_photo() -> Rgb32FImage {
    image::open(repo_root().join("assets/sample-clean.png"))
        .expect("assets/sample-clean.png")
        .to_rgb32f()
}

fn excerpt_bytes() -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/noiseprofiles-excerpt.json"),
    )
    .expect("fixture")
}

/// Smooth test image: three different gradients, kept inside (0.02, 0.98).
fn gradients(w: u32, h: u32) -> Rgb32FImage {
    Rgb32FImage::from_fn(w, h, |x, y| {
        let u = x as f32 / (w - 1) as f32;
        let v = y as f32 / (h - 1) as f32;
        image::Rgb([0.02 + 0.96 * u, 0.02 + 0.96 * v, 0.1 + 0.4 * (u + v)])
    })
}

fn max_abs(a: &Rgb32FImage, b: &Rgb32FImage) -> f32 {
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f32::max)
}

fn mean_abs(a: &Rgb32FImage, b: &Rgb32FImage) -> f64 {
    let n = a.as_raw().len() as f64;
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(p, q)| f64::from((p - q).abs()))
        .sum::<f64>()
        / n
}

/// Mean signed difference per channel: a colour cast shows up here.
fn mean_diff_per_channel(a: &Rgb32FImage, b: &Rgb32FImage) -> [f64; 3] {
    let mut s = [0.0f64; 3];
    for (pa, pb) in a.pixels().zip(b.pixels()) {
        for c in 0..3 {
            s[c] += f64::from(pa[c] - pb[c]);
        }
    }
    let n = (a.width() * a.height()) as f64;
    s.map(|v| v / n)
}

#[test]
fn tone_curves_invert_each_other() {
    let mut worst = 0.0f32;
    for i in 0..=1000 {
        let x = i as f32 / 1000.0;
        worst = worst.max((linear_to_brooks_curve(brooks_curve_to_linear(x)) - x).abs());
    }
    println!("tone curve round trip max error {worst:e}");
    assert!(worst < 2e-4, "{worst}");
    assert!(brooks_curve_to_linear(0.5) < 0.5 && brooks_curve_to_linear(0.5) > 0.1);
}

#[test]
fn flat_patch_variance_matches_a_x_plus_b() {
    let shot = [0.012f32, 0.004, 0.008];
    let read = [2e-4f32, 3e-5, 1e-4];
    let (w, h) = (256u32, 256u32);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for &x in &[0.05f32, 0.2, 0.5] {
        let mut bayer = Bayer {
            width: w,
            height: h,
            data: vec![x; (w * h) as usize],
        };
        add_noise_bayer(&mut bayer, shot, read, &mut rng);
        let mut sum = [0.0f64; 3];
        let mut sq = [0.0f64; 3];
        let mut n = [0usize; 3];
        for y in 0..h {
            for xx in 0..w {
                let c = Bayer::channel(xx, y);
                let v = f64::from(bayer.data[(y * w + xx) as usize]);
                sum[c] += v;
                sq[c] += v * v;
                n[c] += 1;
            }
        }
        for c in 0..3 {
            let mean = sum[c] / n[c] as f64;
            let var = sq[c] / n[c] as f64 - mean * mean;
            let want = f64::from(shot[c] * x + read[c]);
            let rel = (var / want - 1.0).abs();
            println!("x={x} channel {c}: variance {var:.4e} expected {want:.4e} (rel err {rel:.4}), mean {mean:.5}");
            assert!(rel < 0.05, "x={x} c={c}: variance {var} vs {want}");
            // The noise has zero mean: 5 standard errors.
            let se = (want / n[c] as f64).sqrt();
            assert!((mean - f64::from(x)).abs() < 5.0 * se, "mean {mean} vs {x}");
        }
    }
}

#[test]
fn noiseless_round_trip_on_gradients_is_exact_up_to_rounding() {
    let clean = gradients(256, 192);
    // Identity pipeline and a few random colour pipelines.
    let mut params = vec![NoiseParams::identity()];
    for seed in 0..4 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        params.push(NoiseParams::for_level(NoiseLevel::High, &mut rng).without_noise());
    }
    let mut worst = 0.0f32;
    for (i, p) in params.iter().enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let out = synthesize(&clean, p, &mut rng);
        let err = max_abs(&out, &clean);
        let mut errs: Vec<f32> = out
            .as_raw()
            .iter()
            .zip(clean.as_raw())
            .map(|(a, b)| (a - b).abs())
            .collect();
        errs.sort_by(f32::total_cmp);
        let p999 = errs[errs.len() * 999 / 1000];
        let cast = mean_diff_per_channel(&out, &clean);
        println!(
            "params {i}: max abs error {:.2}/255, 99.9th percentile {:.2}/255, mean signed error per channel {cast:?}",
            err * 255.0,
            p999 * 255.0
        );
        worst = worst.max(err);
        // 8-bit rounding alone gives up to 0.5/255; the gradients are curved
        // in raw space (gamma), which the demosaic does not reproduce exactly,
        // and the gamma curve magnifies that in dark colours.
        assert!(
            p999 <= 1.0 / 255.0 + 1e-4,
            "params {i}: 99.9th percentile {p999}"
        );
        for c in cast {
            assert!(c.abs() < 5e-4, "colour cast {cast:?}");
        }
    }
    // Measured 1.46/255 at most (dark corner of the identity pipeline).
    assert!(worst <= 1.0 / 255.0 + 0.7 / 255.0, "max abs error {worst}");
}

#[test]
fn noiseless_round_trip_on_photo_is_close_and_colour_neutral() {
    let clean = sample_photo();
    let mut worst = 0.0f64;
    for seed in 0..4 {
        let mut rng = ChaCha8Rng::seed_from_u64(100 + seed);
        let p = NoiseParams::for_level(NoiseLevel::Low, &mut rng).without_noise();
        let out = synthesize(&clean, &p, &mut rng);
        assert_eq!(out.dimensions(), clean.dimensions());
        let mae = mean_abs(&out, &clean);
        let cast = mean_diff_per_channel(&out, &clean);
        println!(
            "seed {seed}: mean abs error {mae:.5}, PSNR {:.2} dB, mean signed error {cast:?}, ccm {:?}",
            psnr(&out, &clean),
            p.ccm
        );
        worst = worst.max(mae);
        for c in cast {
            // A cast would shift a whole channel; demosaic errors on edges
            // roughly cancel.
            assert!(c.abs() < 2e-3, "colour cast {cast:?}");
        }
    }
    // Measured 0.0084-0.0087 (demosaicing the fine fur texture; 36 dB);
    // 0.011 leaves a ~25% margin for other pipeline draws.
    assert!(worst < 0.011, "mean abs error {worst}");
}

#[test]
fn same_seed_same_output_different_seed_different_output() {
    let clean = sample_photo();
    let model = NoiseModel {
        profiles: Some(NoiseProfiles::from_darktable_json(&excerpt_bytes()).unwrap()),
        jpeg_probability: 0.5,
        ..NoiseModel::default()
    };
    let run = |seed: u64| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let p = NoiseParams::sample(&mut rng, &model);
        (p.clone(), synthesize(&clean, &p, &mut rng))
    };
    let (p1, a) = run(42);
    let (p2, b) = run(42);
    let (_, c) = run(43);
    assert_eq!(p1, p2);
    assert_eq!(a.as_raw(), b.as_raw(), "same seed must be bit-identical");
    assert_ne!(a.as_raw(), c.as_raw(), "different seeds must differ");
}

#[test]
fn batch_is_independent_of_thread_count() {
    let photo = sample_photo();
    let crops: Vec<Rgb32FImage> = (0..8)
        .map(|i| image::imageops::crop_imm(&photo, i * 40, (i * 17) % 150, 97, 64).to_image())
        .collect();
    let model = NoiseModel {
        profiles: Some(NoiseProfiles::from_darktable_json(&excerpt_bytes()).unwrap()),
        ..NoiseModel::default()
    };
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let three = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    let a = one.install(|| synthesize_batch(&crops, &model, 9));
    let b = synthesize_batch(&crops, &model, 9);
    let c = three.install(|| synthesize_batch(&crops, &model, 9));
    assert_eq!(a.len(), crops.len());
    for i in 0..crops.len() {
        assert_eq!(a[i].dimensions(), crops[i].dimensions());
        assert_eq!(
            a[i].as_raw(),
            b[i].as_raw(),
            "item {i}: 1 thread vs default pool"
        );
        assert_eq!(a[i].as_raw(), c[i].as_raw(), "item {i}: 1 vs 3 threads");
    }
    // Items of a batch get different noise.
    assert_ne!(
        a[0].as_raw(),
        synthesize_batch(&crops[..1], &model, 10)[0].as_raw()
    );
    // Item i depends on (seed, i) only: a shorter batch gives the same prefix.
    let prefix = synthesize_batch(&crops[..3], &model, 9);
    assert_eq!(prefix[2].as_raw(), a[2].as_raw());
}

#[test]
fn noise_levels_are_ordered_and_saved_for_inspection() {
    let clean = sample_photo();
    let mut psnrs = Vec::new();
    let mut images = Vec::new();
    for level in NoiseLevel::ALL {
        // Average over a few colour pipelines so the numbers are stable.
        let mut acc = 0.0;
        for seed in 0..4u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(1000 + seed);
            let p = NoiseParams::for_level(level, &mut rng);
            let noisy = synthesize(&clean, &p, &mut rng);
            acc += psnr(&noisy, &clean);
            if seed == 0 {
                images.push(noisy);
            }
        }
        let v = acc / 4.0;
        println!(
            "level {:?} (a = {}, b = {:.3e}): mean PSNR {v:.2} dB",
            level,
            level.shot(),
            level.read()
        );
        psnrs.push(v);
    }
    assert!(
        psnrs[0] > psnrs[1] + 2.0 && psnrs[1] > psnrs[2] + 2.0,
        "{psnrs:?}"
    );
    // Low is visible but mild, High is heavy (bounds around the measured values).
    assert!(psnrs[0] > 32.0 && psnrs[0] < 37.0, "{psnrs:?}");
    assert!(psnrs[2] > 19.0 && psnrs[2] < 25.0, "{psnrs:?}");

    // Side-by-side crop: clean | low | mid | high.
    let (cw, ch) = (200u32.min(clean.width()), 200u32.min(clean.height()));
    let (x0, y0) = ((clean.width() - cw) / 2, (clean.height() - ch) / 2);
    let mut sheet = image::RgbImage::new(cw * 4, ch);
    for (k, img) in std::iter::once(&clean).chain(images.iter()).enumerate() {
        let crop = image::imageops::crop_imm(img, x0, y0, cw, ch).to_image();
        let crop8 = image::DynamicImage::ImageRgb32F(crop).to_rgb8();
        image::imageops::replace(&mut sheet, &crop8, (k as u32 * cw) as i64, 0);
    }
    let path = std::env::temp_dir().join("noise-check.png");
    sheet.save(&path).unwrap();
    println!("saved {}", path.display());
}

#[test]
fn shadows_are_noisier_than_highlights_in_srgb() {
    // Flat grey patches: shot noise plus the gamma curve make dark regions
    // noisier in sRGB, as in real photos.
    let std_of = |v: f32| {
        let clean = Rgb32FImage::from_pixel(128, 128, image::Rgb([v, v, v]));
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let p = NoiseParams::for_level(NoiseLevel::Mid, &mut rng);
        let out = synthesize(&clean, &p, &mut rng);
        let g: Vec<f64> = out.pixels().map(|p| f64::from(p[1])).collect();
        let m = g.iter().sum::<f64>() / g.len() as f64;
        (g.iter().map(|x| (x - m).powi(2)).sum::<f64>() / g.len() as f64).sqrt()
    };
    let (dark, mid, bright) = (std_of(0.15), std_of(0.5), std_of(0.85));
    println!("sRGB green std: dark {dark:.4}, mid {mid:.4}, bright {bright:.4}");
    // The smoothstep tone curve flattens both ends, so the absolute noise
    // peaks in the mid-tones; relative to the signal, shadows are far
    // noisier (measured 0.144 vs 0.022 at a = 1e-3).
    assert!(dark > bright, "{dark} vs {bright}");
    assert!(dark / 0.15 > 3.0 * bright / 0.85, "{dark} vs {bright}");
    assert!(mid > 0.005);
}

#[test]
fn demosaic_spreads_noise_across_neighbours() {
    // Independent per-sample noise becomes spatially correlated after
    // demosaicing: neighbouring green values correlate positively.
    let (w, h) = (128u32, 128u32);
    let mut bayer = Bayer {
        width: w,
        height: h,
        data: vec![0.3; (w * h) as usize],
    };
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    add_noise_bayer(&mut bayer, [0.01; 3], [1e-4; 3], &mut rng);
    let rgb = demosaic(&bayer);
    let g = |x: u32, y: u32| f64::from(rgb.get_pixel(x, y)[1]) - 0.3;
    let (mut cov, mut var) = (0.0, 0.0);
    for y in 2..h - 2 {
        for x in 2..w - 3 {
            cov += g(x, y) * g(x + 1, y);
            var += g(x, y) * g(x, y);
        }
    }
    let corr = cov / var;
    println!("horizontal green correlation after demosaic: {corr:.3}");
    assert!(corr > 0.1, "{corr}");
}

#[test]
fn odd_and_tiny_sizes_keep_their_size() {
    let photo = sample_photo();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let p = NoiseParams::for_level(NoiseLevel::Mid, &mut rng);
    for (w, h) in [(37u32, 23u32), (1, 5), (6, 1), (1, 1), (2, 2), (3, 3)] {
        let clean = image::imageops::crop_imm(&photo, 100, 100, w, h).to_image();
        let out = synthesize(&clean, &p, &mut rng);
        assert_eq!(out.dimensions(), (w, h));
        assert!(out
            .as_raw()
            .iter()
            .all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
        // Without noise the odd-size round trip stays close.
        let quiet = synthesize(&clean, &p.without_noise(), &mut rng);
        if w >= 3 && h >= 3 {
            let mae = mean_abs(&quiet, &clean);
            assert!(mae < 0.02, "{w}x{h}: {mae}");
        }
    }
}

#[test]
fn jpeg_option_compresses() {
    let clean = sample_photo();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut p = NoiseParams::for_level(NoiseLevel::Low, &mut rng);
    let plain = synthesize(&clean, &p, &mut ChaCha8Rng::seed_from_u64(3));
    p.jpeg_quality = Some(60);
    let jpeg = synthesize(&clean, &p, &mut ChaCha8Rng::seed_from_u64(3));
    assert_eq!(jpeg.dimensions(), clean.dimensions());
    let d = mean_abs(&plain, &jpeg);
    println!(
        "JPEG q60 vs no JPEG: mean abs diff {d:.4}; PSNR vs clean {:.2} / {:.2}",
        psnr(&jpeg, &clean),
        psnr(&plain, &clean)
    );
    assert!(d > 1e-3 && d < 0.05, "{d}");
}

#[test]
fn darktable_excerpt_parses_and_clamps() {
    let profiles = NoiseProfiles::from_darktable_json(&excerpt_bytes()).unwrap();
    // 14 profiles in the excerpt, 2 marked "skip" (the EOS-1D Mark II's).
    assert_eq!(profiles.len(), 12);
    assert_eq!(profiles.camera_count(), 4);
    assert!(!profiles
        .profiles()
        .iter()
        .any(|p| p.model == "EOS-1D Mark II"));
    for p in profiles.profiles() {
        for c in 0..3 {
            assert!(p.a[c] > 0.0 && p.b[c] >= DARKTABLE_B_FLOOR, "{p:?}");
        }
    }
    // The RX100 VII's negative b is clamped, its a kept as is.
    let sony = profiles
        .profiles()
        .iter()
        .find(|p| p.model == "DSC-RX100M7" && p.iso == 8000.0)
        .unwrap();
    assert_eq!(sony.b, [DARKTABLE_B_FLOOR; 3]);
    assert!((sony.a[1] - 2.8e-4).abs() < 0.1e-4, "{:?}", sony.a);
    let canon = profiles
        .profiles()
        .iter()
        .find(|p| p.model == "EOS-1Ds" && p.iso == 100.0)
        .unwrap();
    assert!((canon.a[0] - 5.0625064e-6).abs() < 1e-10);

    // Compact form round trip.
    let compact = profiles.to_compact_json();
    let back = NoiseProfiles::from_compact_json(compact.as_bytes()).unwrap();
    assert_eq!(back, profiles);

    // Sampling uses every camera.
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        seen.insert(profiles.sample(&mut rng).model.clone());
    }
    assert_eq!(seen.len(), 4);
}

#[test]
fn bad_profile_data_is_an_error_not_a_panic() {
    assert!(matches!(
        NoiseProfiles::from_darktable_json(b"not json"),
        Err(NoiseError::Json(_))
    ));
    assert!(matches!(
        NoiseProfiles::from_darktable_json(b"{\"version\":0}"),
        Err(NoiseError::Json(_))
    ));
    assert!(matches!(
        NoiseProfiles::from_darktable_json(b"{\"version\":0,\"noiseprofiles\":[]}"),
        Err(NoiseError::NoProfiles)
    ));
    let neg = br#"{"profiles":[{"maker":"X","model":"Y","iso":100,"a":[1e-5,-1,1e-5],"b":[1e-8,1e-8,1e-8]}]}"#;
    assert!(matches!(
        NoiseProfiles::from_compact_json(neg),
        Err(NoiseError::BadProfile { index: 0, .. })
    ));
    let short =
        br#"{"profiles":[{"maker":"X","model":"Y","iso":100,"a":[1e-5],"b":[1e-8,1e-8,1e-8]}]}"#;
    assert!(NoiseProfiles::from_compact_json(short).is_err());
    assert!(NoiseModel {
        darktable_fraction: 1.5,
        ..NoiseModel::default()
    }
    .validate()
    .is_err());
    assert!(NoiseModel::default().validate().is_ok());
}

#[test]
fn sampled_params_follow_the_model() {
    let profiles = NoiseProfiles::from_darktable_json(&excerpt_bytes()).unwrap();
    let model = NoiseModel::with_profiles(profiles);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (mut jpeg, mut per_channel, n) = (0, 0, 2000);
    let mut log_shots = Vec::new();
    for _ in 0..n {
        let p = NoiseParams::sample(&mut rng, &model);
        assert!((1.9..2.4).contains(&p.red_gain) && (1.5..1.9).contains(&p.blue_gain));
        assert!((1.0..=2.0).contains(&p.brightness));
        for row in p.ccm {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
        assert!(p
            .shot
            .iter()
            .chain(p.read.iter())
            .all(|v| *v > 0.0 && v.is_finite()));
        if let Some(q) = p.jpeg_quality {
            assert!((60..=100).contains(&q));
            jpeg += 1;
        }
        if p.shot[0] != p.shot[1] {
            per_channel += 1; // darktable profiles differ per channel
        }
        log_shots.push(p.shot[1].ln());
    }
    let jf = jpeg as f64 / n as f64;
    let df = per_channel as f64 / n as f64;
    println!("JPEG fraction {jf:.3}, darktable fraction {df:.3}");
    assert!((jf - 0.3).abs() < 0.04, "{jf}");
    assert!((df - 0.5).abs() < 0.04, "{df}");
    log_shots.sort_by(f32::total_cmp);
    println!(
        "green shot a: 5% {:.2e}, median {:.2e}, 95% {:.2e}",
        log_shots[n / 20].exp(),
        log_shots[n / 2].exp(),
        log_shots[n * 19 / 20].exp()
    );
}

#[test]
fn the_bayer_pattern_decides_where_the_sensor_sampled_red() {
    // Noise on the red samples only, on a flat grey: after demosaicing, red
    // varies most at the pixels where it was sampled (elsewhere it is
    // interpolated from 2 or 4 of them). Those pixels must be where the
    // pattern puts red: (x + dx, y + dy) both even.
    let clean = Rgb32FImage::from_pixel(64, 64, image::Rgb([0.5, 0.5, 0.5]));
    for pattern in BayerPattern::ALL {
        let params = NoiseParams { shot: [0.02, 0.0, 0.0], read: [1e-3, 0.0, 0.0], pattern, ..NoiseParams::identity() };
        let noisy = synthesize(&clean, &params, &mut ChaCha8Rng::seed_from_u64(5));
        assert_eq!(noisy.dimensions(), (64, 64));
        let mut sum = [[0.0f64; 2]; 2];
        let mut sq = [[0.0f64; 2]; 2];
        let mut n = [[0.0f64; 2]; 2];
        for y in 2..62 {
            for x in 2..62 {
                let v = f64::from(noisy.get_pixel(x, y)[0]);
                let (i, j) = ((y % 2) as usize, (x % 2) as usize);
                sum[i][j] += v;
                sq[i][j] += v * v;
                n[i][j] += 1.0;
            }
        }
        let var = |i: usize, j: usize| sq[i][j] / n[i][j] - (sum[i][j] / n[i][j]).powi(2);
        let (dx, dy) = pattern.offset();
        let red = var(dy as usize, dx as usize);
        let others: Vec<f64> = (0..4).filter(|&k| (k / 2, k % 2) != (dy as usize, dx as usize)).map(|k| var(k / 2, k % 2)).collect();
        let largest_other = others.iter().cloned().fold(0.0, f64::max);
        println!("{}: red variance {red:.3e} at the red sites, at most {largest_other:.3e} elsewhere", pattern.name());
        assert!(red > 1.5 * largest_other, "{}: {red} vs {others:?}", pattern.name());
    }
}

#[test]
fn training_noise_draws_all_four_bayer_patterns() {
    let model = NoiseModel::default();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut counts = [0usize; 4];
    for _ in 0..800 {
        let p = NoiseParams::sample(&mut rng, &model);
        counts[BayerPattern::ALL.iter().position(|&q| q == p.pattern).expect("a known pattern")] += 1;
    }
    println!("patterns drawn: {counts:?}");
    assert!(counts.iter().all(|&c| (150..=250).contains(&c)), "{counts:?}");
}

#[test]
fn the_srgb_curve_is_the_iec_transfer_function_and_inverts() {
    // IEC 61966-2-1: 0.5 encodes 0.2140 linear; 0.04045 is the knee.
    assert!((ToneCurve::Srgb.to_linear(0.5) - 0.2140).abs() < 1e-3, "{}", ToneCurve::Srgb.to_linear(0.5));
    assert!((ToneCurve::Srgb.to_linear(0.04045) - 0.04045 / 12.92).abs() < 1e-6);
    let mut worst = 0.0f32;
    for i in 0..=1000 {
        let x = i as f32 / 1000.0;
        worst = worst.max((ToneCurve::Srgb.from_linear(ToneCurve::Srgb.to_linear(x)) - x).abs());
        assert_eq!(ToneCurve::Brooks.to_linear(x), brooks_curve_to_linear(x), "Brooks' curve is the training one");
    }
    println!("sRGB curve round trip max error {worst:e}");
    assert!(worst < 1e-4, "{worst}");
    // The two curves differ where it matters for noise: in the shadows.
    let shadow = (ToneCurve::Srgb.to_linear(0.1) / ToneCurve::Brooks.to_linear(0.1)).ln().abs();
    assert!(shadow > 0.2, "the curves barely differ at 0.1: log ratio {shadow}");
}

#[test]
fn bilinear_demosaic_reproduces_flat_and_linear_images() {
    let (w, h) = (32u32, 24u32);
    let flat = Bayer { width: w, height: h, data: vec![0.3; (w * h) as usize] };
    let out = demosaic_with(&flat, Demosaic::Bilinear);
    assert!(out.as_raw().iter().all(|v| (v - 0.3).abs() < 1e-6));
    // A ramp along x, the same in every channel: bilinear interpolation is
    // exact on it away from the border.
    let ramp = Bayer { width: w, height: h, data: (0..w * h).map(|i| 0.01 * (i % w) as f32).collect() };
    let out = demosaic_with(&ramp, Demosaic::Bilinear);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            for c in 0..3 {
                let v = out.get_pixel(x, y)[c];
                assert!((v - 0.01 * x as f32).abs() < 1e-5, "({x}, {y}) channel {c}: {v}");
            }
        }
    }
    // It is another filter than the training one: on noise the two differ.
    let mut noisy = flat.clone();
    add_noise_bayer(&mut noisy, [0.01; 3], [1e-4; 3], &mut ChaCha8Rng::seed_from_u64(5));
    let difference = mean_abs(&demosaic_with(&noisy, Demosaic::Bilinear), &demosaic(&noisy));
    println!("mean |bilinear - Malvar| on noise: {difference:.4}");
    assert!(difference > 0.005, "{difference}");
}
