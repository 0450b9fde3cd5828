//! The degradations the training loop and the evaluation use, as
//! [`Degradation`]s over the camera-noise pipeline of [`crate::noise`].

use image::Rgb32FImage;
use rayon::prelude::*;

use crate::batch::Degradation;
use crate::noise::{self, NoiseLevel, NoiseModel, NoiseParams};

/// Training noise: every crop gets its own camera, level and JPEG setting
/// drawn from the model.
pub struct CameraNoise(pub NoiseModel);

impl Degradation for CameraNoise {
    fn degrade(&self, clean: &[Rgb32FImage], seed: u64) -> Vec<Rgb32FImage> {
        noise::synthesize_batch(clean, &self.0, seed)
    }
}

/// Evaluation noise: one fixed level (random colour pipeline, seeded).
pub struct FixedLevel(pub NoiseLevel);

impl Degradation for FixedLevel {
    fn degrade(&self, clean: &[Rgb32FImage], seed: u64) -> Vec<Rgb32FImage> {
        clean
            .par_iter()
            .enumerate()
            .map(|(i, image)| {
                let mut rng = noise::item_rng(seed, i);
                let params = NoiseParams::for_level(self.0, &mut rng);
                noise::synthesize(image, &params, &mut rng)
            })
            .collect()
    }
}
