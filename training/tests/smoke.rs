//! The training loop on the CPU with a tiny network and tiny patches: the
//! loss falls, and a run cut in two and resumed from its checkpoint ends
//! with exactly the weights of an uninterrupted run.

use burn::backend::{Autodiff, NdArray};
use image::RgbImage;
use realdenoise::UNetConfig;
use realdenoise_training::train::checkpoint;
use realdenoise_training::noise::degradations::{CameraNoise, FixedLevel};
use realdenoise_training::noise::{NoiseLevel, NoiseModel};
use realdenoise_training::train::{train, StopAfter, TrainConfig, ValidationSet, CONFIG_FILE};

type Backend = Autodiff<NdArray>;

/// burn's ndarray backend seeds one process-wide generator for parameter
/// initialisation; tests running in parallel would interleave their draws,
/// so these tests take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Smooth synthetic "photos": gradients and soft blobs, different per seed.
fn photos() -> Vec<RgbImage> {
    (0..3u32)
        .map(|k| {
            RgbImage::from_fn(48, 40, |x, y| {
                let (fx, fy) = (x as f32 / 48.0, y as f32 / 40.0);
                let blob = (-((fx - 0.3 - 0.2 * k as f32).powi(2) + (fy - 0.5).powi(2)) * 12.0).exp();
                let r = 40.0 + 150.0 * fx + 60.0 * blob;
                let g = 60.0 + 120.0 * fy * (1.0 + k as f32 * 0.2);
                let b = 200.0 - 120.0 * fx * fy + 40.0 * blob;
                image::Rgb([r.min(255.0) as u8, g.min(255.0) as u8, b.min(255.0) as u8])
            })
        })
        .collect()
}

fn tiny_config(iterations: u64) -> TrainConfig {
    TrainConfig {
        model: UNetConfig::new().with_base_channels(8).with_channel_multipliers(vec![1, 2]).with_blocks_per_level(1),
        iterations,
        batch_size: 4,
        patch_size: 16,
        learning_rate: 3e-3,
        final_learning_rate: 1e-4,
        warmup_iterations: 3,
        ema_decay: 0.9,
        validate_every: 1000,
        checkpoint_every: 1000,
        validation_patch: 16,
        validation_photos: 2,
        validation_steps: 2,
        ..TrainConfig::default()
    }
}

fn noise() -> CameraNoise {
    CameraNoise(NoiseModel { jpeg_probability: 0.0, ..NoiseModel::default() })
}

#[test]
fn the_loss_falls_in_a_few_steps() {
    let _turn = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let photos = photos();
    let validation = ValidationSet::new(&photos, 16, 2, &FixedLevel::new(NoiseLevel::Mid), 3);
    let config = tiny_config(60);
    let summary = train::<Backend>(dir.path(), &config, &photos, &validation, &noise(), "cpu", &Default::default(), StopAfter::default())
        .expect("training runs");
    assert_eq!(summary.last_step, 60);
    let loss = summary.mean_loss.expect("60 steps ran");
    println!("mean loss {:.4} -> {:.4}", loss.first, loss.last);
    assert!(loss.last < 0.7 * loss.first, "loss did not fall: {} -> {}", loss.first, loss.last);
    assert!(dir.path().join("log.csv").is_file());
    assert!(dir.path().join("loss.png").is_file(), "the loss curve is drawn");
    assert!(dir.path().join("validation.png").is_file(), "the validation curve is drawn");
}

/// Every float parameter of the EMA average in the newest checkpoint.
fn average_weights(run: &std::path::Path, config: &TrainConfig) -> Vec<f32> {
    let device = Default::default();
    let fresh = config.model.init::<NdArray>(&device).expect("model");
    let (average, _) = checkpoint::load_average::<NdArray>(run, fresh, &device).expect("checkpoint");
    let bytes = realdenoise::weights::to_bytes(&average, &config.model, &realdenoise::TrainingMetadata::untrained());
    bytes.iter().map(|&b| b as f32).collect()
}

#[test]
fn a_resumed_run_ends_where_an_uninterrupted_one_does() {
    let _turn = serial();
    let photos = photos();
    let validation = ValidationSet::new(&photos, 16, 1, &FixedLevel::new(NoiseLevel::Low), 3);
    let config = tiny_config(6);
    let device = Default::default();

    let straight = tempfile::tempdir().expect("tempdir");
    train::<Backend>(straight.path(), &config, &photos, &validation, &noise(), "cpu", &device, StopAfter::default()).expect("straight run");

    let split = tempfile::tempdir().expect("tempdir");
    let first = train::<Backend>(split.path(), &config, &photos, &validation, &noise(), "cpu", &device, StopAfter { steps: Some(3), ..StopAfter::default() })
        .expect("first half");
    assert_eq!(first.last_step, 3);
    let state = checkpoint::read_state(split.path()).expect("state").expect("a checkpoint exists");
    assert_eq!(state.step, 3);
    let second = train::<Backend>(split.path(), &config, &photos, &validation, &noise(), "cpu", &device, StopAfter::default()).expect("second half");
    assert_eq!((second.first_step, second.last_step), (3, 6));
    let finished = train::<Backend>(split.path(), &config, &photos, &validation, &noise(), "cpu", &device, StopAfter::default()).expect("a finished run");
    assert_eq!((finished.first_step, finished.last_step), (6, 6));
    assert!(finished.mean_loss.is_none(), "no step ran, so there is no mean loss: {:?}", finished.mean_loss);
    // Each call that checkpointed is recorded with what it ran on; the one
    // that took no step is not.
    let calls = checkpoint::read_state(split.path()).expect("state").expect("a checkpoint exists").calls;
    assert_eq!(calls.iter().map(|c| (c.first_step, c.backend.as_str(), c.device.as_str())).collect::<Vec<_>>(), vec![(0, "cpu", "Cpu"), (3, "cpu", "Cpu")]);
    assert!(calls.iter().all(|c| c.cpu.ends_with("threads)") && c.gpus.is_none()), "{calls:?}");

    let a = average_weights(straight.path(), &config);
    let b = average_weights(split.path(), &config);
    assert_eq!(a.len(), b.len());
    let differing = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    assert_eq!(differing, 0, "{differing} bytes of the exported weights differ after resuming");
    let log = std::fs::read_to_string(split.path().join("log.csv")).expect("log");
    assert_eq!(log.lines().count(), 1 + 6, "one header and one row per step, none repeated");
}

/// The EMA average of a run's newest checkpoint applied to a fixed input.
fn average_output(run: &std::path::Path, config: &TrainConfig) -> Vec<f32> {
    use burn::tensor::{Tensor, TensorData};
    let device = Default::default();
    let fresh = config.model.init::<NdArray>(&device).expect("model");
    let (average, _) = checkpoint::load_average::<NdArray>(run, fresh, &device).expect("checkpoint");
    // A fixed pattern, not a random draw: every call must see the same input.
    let pattern: Vec<f32> = (0..3 * 16 * 16).map(|i| ((i * 37) % 101) as f32 / 100.0).collect();
    let input = Tensor::<NdArray, 4>::from_data(TensorData::new(pattern, [1, 3, 16, 16]), &device);
    let t = Tensor::<NdArray, 1>::from_floats([40.0], &device);
    average.forward(input, t).into_data().to_vec::<f32>().expect("f32 output")
}

fn max_abs_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn a_run_initialised_from_another_starts_from_its_average_and_records_it() {
    let _turn = serial();
    let photos = photos();
    let validation = ValidationSet::new(&photos, 16, 1, &FixedLevel::new(NoiseLevel::Low), 3);
    let device = Default::default();
    let parent = tempfile::tempdir().expect("tempdir");
    let parent_config = tiny_config(6);
    train::<Backend>(parent.path(), &parent_config, &photos, &validation, &noise(), "cpu", &device, StopAfter::default()).expect("parent run");
    // `realdenoise-train train` writes the configuration next to the checkpoints.
    std::fs::write(parent.path().join(CONFIG_FILE), serde_json::to_string(&parent_config).expect("json")).expect("config.json");

    // A learning rate of zero leaves the starting weights untouched, so the
    // child's average after one step is the parent's average.
    let child = tempfile::tempdir().expect("tempdir");
    let child_config = TrainConfig {
        init_from: Some(parent.path().to_path_buf()),
        learning_rate: 0.0,
        final_learning_rate: 0.0,
        batch_size: 2,
        ..tiny_config(3)
    };
    train::<Backend>(child.path(), &child_config, &photos, &validation, &noise(), "cpu", &device, StopAfter { steps: Some(1), ..StopAfter::default() })
        .expect("child run");
    let parent_output = average_output(parent.path(), &parent_config);
    let child_output = average_output(child.path(), &child_config);
    let drift = max_abs_difference(&parent_output, &child_output);
    assert!(drift < 1e-5, "the child did not start from the parent's weights: max difference {drift}");

    // A run started from scratch differs, so the comparison above can fail.
    let scratch = tempfile::tempdir().expect("tempdir");
    let scratch_config = TrainConfig { seed: 7, ..child_config.clone() };
    let scratch_config = TrainConfig { init_from: None, ..scratch_config };
    train::<Backend>(scratch.path(), &scratch_config, &photos, &validation, &noise(), "cpu", &device, StopAfter { steps: Some(1), ..StopAfter::default() })
        .expect("scratch run");
    let scratch_drift = max_abs_difference(&parent_output, &average_output(scratch.path(), &scratch_config));
    assert!(scratch_drift > 1e-3, "a fresh model matched the parent: {scratch_drift}");

    let state = checkpoint::read_state(child.path()).expect("state").expect("a checkpoint exists");
    assert_eq!(state.step, 1);
    let lineage = state.initialised_from.as_ref().expect("the parent is recorded");
    assert_eq!((lineage.state.step, lineage.batch_size, lineage.patch_size), (6, 4, 16));
    assert!((state.total_seconds() - state.elapsed_seconds - lineage.state.elapsed_seconds).abs() < 1e-9);
    assert!(state.trained_on("cpu") && !state.trained_on("cuda"));

    // A parent with another architecture is refused with a clear error.
    let mismatched = TrainConfig { model: UNetConfig::new().with_base_channels(4).with_channel_multipliers(vec![1, 2]).with_blocks_per_level(1), ..child_config };
    let other = tempfile::tempdir().expect("tempdir");
    let error = train::<Backend>(other.path(), &mismatched, &photos, &validation, &noise(), "cpu", &device, StopAfter { steps: Some(1), ..StopAfter::default() })
        .expect_err("an architecture mismatch must fail");
    assert!(error.to_string().contains("model configuration"), "{error}");
}

#[test]
fn the_best_validated_average_is_kept_across_a_resume() {
    let _turn = serial();
    let photos = photos();
    // The second half validates at high noise, where every score is lower
    // than at low noise: the best must stay in the first half, so keeping
    // the newest weights instead would fail this test.
    let low = ValidationSet::new(&photos, 16, 2, &FixedLevel::new(NoiseLevel::Low), 3);
    let high = ValidationSet::new(&photos, 16, 2, &FixedLevel::new(NoiseLevel::High), 3);
    let config = TrainConfig { validate_every: 1, ..tiny_config(8) };
    let device = Default::default();
    let run = tempfile::tempdir().expect("tempdir");
    train::<Backend>(run.path(), &config, &photos, &low, &noise(), "cpu", &device, StopAfter { steps: Some(4), ..StopAfter::default() }).expect("first half");
    let summary = train::<Backend>(run.path(), &config, &photos, &high, &noise(), "cpu", &device, StopAfter::default()).expect("second half");

    // Every step validated; the kept score is the highest in the log.
    let log = std::fs::read_to_string(run.path().join("log.csv")).expect("log");
    let scores: Vec<(u64, f64)> = log
        .lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            (fields[0].parse().expect("step"), fields[4].parse().expect("validation PSNR"))
        })
        .collect();
    assert_eq!(scores.len(), 8);
    let (best_step, best_psnr) = scores.iter().copied().fold((0, f64::MIN), |a, b| if b.1 > a.1 { b } else { a });
    let kept = checkpoint::read_best(run.path()).expect("readable").expect("a best average is kept");
    assert_eq!(summary.best, Some(kept));
    assert_eq!(kept.step, best_step, "log: {scores:?}");
    assert!(kept.step <= 4, "the best score is a low-noise one: {scores:?}");
    assert!((kept.validation_psnr - best_psnr).abs() < 1e-4, "kept {} dB, the log's best is {best_psnr} dB", kept.validation_psnr);

    // The kept weights are the ones that scored, with the state of their step.
    let fresh = config.model.init::<NdArray>(&device).expect("model");
    let (average, state, score) = checkpoint::load_best_average::<NdArray>(run.path(), fresh, &device).expect("best weights");
    assert_eq!(score, kept);
    assert_eq!(state.step, kept.step);
    assert_eq!(state.segments.last().map(|s| s.last_step), Some(kept.step));
    let rescored = low.score(&average, config.validation_steps, &device);
    assert!((rescored - kept.validation_psnr).abs() < 1e-3, "the kept weights score {rescored} dB, not {} dB", kept.validation_psnr);
}

#[test]
fn a_run_that_never_validated_has_no_best_weights_to_load() {
    let _turn = serial();
    let photos = photos();
    let validation = ValidationSet::new(&photos, 16, 1, &FixedLevel::new(NoiseLevel::Low), 3);
    let config = tiny_config(10);
    let device = Default::default();
    let run = tempfile::tempdir().expect("tempdir");
    train::<Backend>(run.path(), &config, &photos, &validation, &noise(), "cpu", &device, StopAfter { steps: Some(2), ..StopAfter::default() }).expect("two steps");
    assert_eq!(checkpoint::read_best(run.path()).expect("readable"), None);
    let fresh = config.model.init::<NdArray>(&device).expect("model");
    let Err(error) = checkpoint::load_best_average::<NdArray>(run.path(), fresh, &device) else {
        panic!("a run that never validated loaded best weights");
    };
    assert!(error.to_string().contains("no best weights"), "{error}");
}

#[test]
fn a_cpu_budget_stops_the_run_validated_and_checkpointed_and_the_unseen_variant_is_logged() {
    let _turn = serial();
    let photos = photos();
    // The run's own validation: two crops per photo through both cameras.
    let config = TrainConfig { validation_crops_per_photo: 2, ..tiny_config(100_000) };
    let validation = ValidationSet::for_config(&photos, &config, 3);
    assert_eq!(validation.clean.len(), 2 * 2, "two photos, two crops each");
    assert_eq!(validation.noisy.len(), 2, "the training and the unseen camera");
    let device = Default::default();
    let run = tempfile::tempdir().expect("tempdir");
    let budget_minutes = 0.005;
    let summary = train::<Backend>(run.path(), &config, &photos, &validation, &noise(), "cpu", &device, StopAfter { cpu_minutes: Some(budget_minutes), ..StopAfter::default() })
        .expect("a budgeted run");
    let used = summary.step_cpu_seconds.expect("CPU time is reported on Linux");
    println!("stopped at step {} after {used:.3} CPU seconds of steps (budget {:.3})", summary.last_step, budget_minutes * 60.0);
    assert!(used >= budget_minutes * 60.0, "stopped before the budget: {used}");
    assert!(summary.last_step > 0 && summary.last_step < 100_000);
    let state = checkpoint::read_state(run.path()).expect("state").expect("a checkpoint at the stop");
    assert_eq!(state.step, summary.last_step);
    let log = std::fs::read_to_string(run.path().join("log.csv")).expect("log");
    let last: Vec<&str> = log.lines().last().expect("rows").split(',').collect();
    assert_eq!(last.len(), 7, "{last:?}");
    let (fit, unseen): (f64, f64) = (last[4].parse().expect("validated at the stop"), last[6].parse().expect("the unseen camera is scored"));
    println!("validation at the stop: {fit:.2} dB training camera, {unseen:.2} dB unseen camera");
    assert!(fit.is_finite() && unseen.is_finite() && (fit - unseen).abs() > 1e-6);
}
