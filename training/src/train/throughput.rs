//! How fast the batch pipeline (crop, augment, synthesise camera noise)
//! produces training batches: `realdenoise-train bench-data`. The training
//! loop draws batches on a second thread while the model trains, so a step
//! that takes longer than one batch here never waits for data; one that is
//! faster does (the loop reports the time it waited).

use std::time::Instant;

use image::RgbImage;

use crate::noise::degradations::Degradation;
use crate::train::batch::{draw_batch, usable_photos};

/// The batch shape and how many batches to time.
#[derive(Debug, Clone, Copy)]
pub struct DataBench {
    pub batch_size: usize,
    pub patch_size: u32,
    pub batches: u64,
    pub seed: u64,
}

/// Measured batch throughput of one thread-pool size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DataThroughput {
    pub threads: usize,
    pub batches: u64,
    pub crops: u64,
    pub seconds: f64,
}

impl DataThroughput {
    pub fn ms_per_batch(&self) -> f64 {
        1000.0 * self.seconds / self.batches as f64
    }

    pub fn crops_per_second(&self) -> f64 {
        self.crops as f64 / self.seconds
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DataBenchError {
    #[error("no training photo is at least {0} x {0} pixels")]
    NoUsablePhotos(u32),
    #[error("batch size and batches must be positive")]
    Empty,
    #[error("cannot start {threads} threads: {reason}")]
    Threads { threads: usize, reason: String },
}

/// Draws `bench.batches` training batches exactly as the training loop does
/// (steps 0, 1, ...) on a pool of `threads` threads and times them. One
/// untimed batch first warms the pool and the caches.
pub fn measure(photos: &[RgbImage], degradation: &dyn Degradation, bench: DataBench, threads: usize) -> Result<DataThroughput, DataBenchError> {
    if bench.batch_size == 0 || bench.batches == 0 {
        return Err(DataBenchError::Empty);
    }
    let usable = usable_photos(photos, bench.patch_size);
    if usable.is_empty() {
        return Err(DataBenchError::NoUsablePhotos(bench.patch_size));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| DataBenchError::Threads { threads, reason: e.to_string() })?;
    let draw = |step: u64| draw_batch(photos, &usable, bench.batch_size, bench.patch_size, degradation, bench.seed, step);
    let seconds = pool.install(|| {
        draw(u64::MAX);
        let started = Instant::now();
        for step in 0..bench.batches {
            draw(step);
        }
        started.elapsed().as_secs_f64()
    });
    Ok(DataThroughput { threads: pool.current_num_threads(), batches: bench.batches, crops: bench.batches * bench.batch_size as u64, seconds })
}

/// The shape of a training-step measurement (`realdenoise-train bench-step`).
#[derive(Debug, Clone, Copy)]
pub struct StepBench {
    pub batch_size: usize,
    pub patch_size: u32,
    /// Timed steps, after `warmup` untimed ones.
    pub steps: u64,
    pub warmup: u64,
}

/// Measured training-step speed on one backend.
#[derive(Debug, Clone, PartialEq)]
pub struct StepThroughput {
    /// Seconds of each timed step, in order.
    pub seconds: Vec<f64>,
    pub batch_size: usize,
}

impl StepThroughput {
    pub fn median_seconds(&self) -> f64 {
        let mut sorted = self.seconds.clone();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    }

    pub fn crops_per_second(&self) -> f64 {
        self.batch_size as f64 / self.median_seconds()
    }
}

/// Times full training steps of the shipped architecture ([`crate::train::optimisation_step`]:
/// forward, Charbonnier loss, backward, AdamW with clipping, EMA) on
/// `device`, with a fixed pseudo-random batch, so backends are compared on
/// the model's work alone (`bench-data` measures the batch pipeline).
pub fn measure_steps<B: burn::tensor::backend::AutodiffBackend>(
    config: &crate::train::TrainConfig,
    bench: StepBench,
    device: &B::Device,
) -> Result<StepThroughput, crate::train::TrainError> {
    use burn::module::AutodiffModule;
    use burn::tensor::{Tensor, TensorData};
    use rand::{Rng, SeedableRng};

    let config = crate::train::TrainConfig { batch_size: bench.batch_size, patch_size: bench.patch_size, ..config.clone() };
    config.validate()?;
    if bench.steps == 0 {
        return Err(crate::train::TrainError::Config("bench-step needs at least one timed step".into()));
    }
    B::seed(device, config.seed);
    let mut model = config.model.init::<B>(device).map_err(|e| crate::train::TrainError::Config(e.to_string()))?;
    let mut average = model.valid();
    let mut optimizer = crate::train::optimizer_for::<B>(&config);
    let side = bench.patch_size as usize;
    let shape = [bench.batch_size, 3, side, side];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.seed);
    let image = |rng: &mut rand_chacha::ChaCha8Rng| {
        let values: Vec<f32> = (0..shape.iter().product::<usize>()).map(|_| rng.random::<f32>()).collect();
        Tensor::<B, 4>::from_data(TensorData::new(values, shape), device)
    };
    let clean = image(&mut rng);
    let noisy = clean.clone().mul_scalar(0.8).add(image(&mut rng).mul_scalar(0.2));
    let batch = crate::train::batch::PairBatch { clean, noisy };
    let mut seconds = Vec::new();
    for step in 0..bench.warmup + bench.steps {
        let started = Instant::now();
        let mut step_rng = crate::train::batch::stream(config.seed, step, 2);
        let lr = config.learning_rate_at(step);
        let decay = crate::train::ema::decay_at(config.ema_decay, step);
        let loss;
        (model, average, loss) =
            crate::train::optimisation_step(model, average, &mut optimizer, &batch, &mut step_rng, config.model.timesteps, lr, decay);
        // Reading the loss back waited for the step (the CPU backends are
        // eager, so the EMA update is done too).
        if !loss.is_finite() {
            return Err(crate::train::TrainError::Diverged(loss, step));
        }
        if step >= bench.warmup {
            seconds.push(started.elapsed().as_secs_f64());
        }
    }
    Ok(StepThroughput { seconds, batch_size: bench.batch_size })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb32FImage;

    /// Counts the crops it is given, so the test sees what `measure` drew.
    struct Counting(std::sync::atomic::AtomicUsize);

    impl Degradation for Counting {
        fn degrade(&self, clean: &[Rgb32FImage], _seed: u64) -> Vec<Rgb32FImage> {
            self.0.fetch_add(clean.len(), std::sync::atomic::Ordering::Relaxed);
            clean.to_vec()
        }
    }

    #[test]
    fn measures_the_requested_batches_on_the_requested_threads() {
        let photos = vec![RgbImage::new(40, 30), RgbImage::new(16, 16)];
        let counting = Counting(Default::default());
        let bench = DataBench { batch_size: 3, patch_size: 16, batches: 5, seed: 1 };
        let result = measure(&photos, &counting, bench, 2).expect("measured");
        assert_eq!((result.threads, result.batches, result.crops), (2, 5, 15));
        // Five timed batches plus the warm-up one.
        assert_eq!(counting.0.load(std::sync::atomic::Ordering::Relaxed), 18);
        assert!(result.seconds > 0.0);
        assert!((result.crops_per_second() * result.seconds - 15.0).abs() < 1e-9);
    }

    #[test]
    fn refuses_a_patch_no_photo_can_hold_and_empty_benches() {
        let photos = vec![RgbImage::new(40, 30)];
        let counting = Counting(Default::default());
        let too_big = DataBench { batch_size: 2, patch_size: 64, batches: 1, seed: 1 };
        assert!(matches!(measure(&photos, &counting, too_big, 1), Err(DataBenchError::NoUsablePhotos(64))));
        let empty = DataBench { batch_size: 2, patch_size: 16, batches: 0, seed: 1 };
        assert!(matches!(measure(&photos, &counting, empty, 1), Err(DataBenchError::Empty)));
    }

    #[test]
    fn times_the_requested_training_steps_and_refuses_empty_ones() {
        type Cpu = burn::backend::Autodiff<burn::backend::NdArray>;
        let config = crate::train::TrainConfig::default();
        let bench = StepBench { batch_size: 2, patch_size: 16, steps: 3, warmup: 1 };
        let report = measure_steps::<Cpu>(&config, bench, &Default::default()).expect("measured");
        assert_eq!(report.seconds.len(), 3);
        assert!(report.seconds.iter().all(|&s| s > 0.0));
        let median = report.median_seconds();
        assert!(report.seconds.contains(&median));
        assert!((report.crops_per_second() * median - 2.0).abs() < 1e-9);
        let none = StepBench { steps: 0, ..bench };
        assert!(measure_steps::<Cpu>(&config, none, &Default::default()).is_err());
        let odd = StepBench { patch_size: 18, ..bench };
        assert!(measure_steps::<Cpu>(&config, odd, &Default::default()).is_err());
    }
}
