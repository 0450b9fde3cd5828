//! The degradations the training loop and the evaluation use, as
//! [`Degradation`]s over the camera-noise pipeline of [`crate::noise`].

use image::Rgb32FImage;
use rayon::prelude::*;

use crate::batch::Degradation;
use crate::noise::{self, BayerPattern, NoiseLevel, NoiseModel, NoiseParams};

/// Training noise: every crop gets its own camera, level and JPEG setting
/// drawn from the model.
pub struct CameraNoise(pub NoiseModel);

impl Degradation for CameraNoise {
    fn degrade(&self, clean: &[Rgb32FImage], seed: u64) -> Vec<Rgb32FImage> {
        noise::synthesize_batch(clean, &self.0, seed)
    }
}

/// Evaluation noise: one fixed level (random colour pipeline, seeded) on a
/// given Bayer pattern, or on the four patterns in turn along the batch.
pub struct FixedLevel {
    pub level: NoiseLevel,
    /// `None`: item `i` of a batch gets `BayerPattern::ALL[i % 4]`.
    pub pattern: Option<BayerPattern>,
}

impl FixedLevel {
    /// The four Bayer patterns in turn along the batch, so a validation set
    /// scores a network on all of them, as real photos bring them.
    pub fn new(level: NoiseLevel) -> FixedLevel {
        FixedLevel { level, pattern: None }
    }

    /// One Bayer pattern for every item.
    pub fn with_pattern(level: NoiseLevel, pattern: BayerPattern) -> FixedLevel {
        FixedLevel { level, pattern: Some(pattern) }
    }
}

impl Degradation for FixedLevel {
    fn degrade(&self, clean: &[Rgb32FImage], seed: u64) -> Vec<Rgb32FImage> {
        clean
            .par_iter()
            .enumerate()
            .map(|(i, image)| {
                let mut rng = noise::item_rng(seed, i);
                let mut params = NoiseParams::for_level(self.level, &mut rng);
                params.pattern = self.pattern.unwrap_or(BayerPattern::ALL[i % BayerPattern::ALL.len()]);
                noise::synthesize(image, &params, &mut rng)
            })
            .collect()
    }
}
