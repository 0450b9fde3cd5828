//! The run's validation: fixed crops of the validation photos with seeded
//! noise through the training and the unseen camera, scored with sampling.

use burn::tensor::backend::Backend;
use image::{Rgb32FImage, RgbImage};
use realdenoise::denoiser::sample;
use realdenoise::diffusion::{SamplerKind, Schedule};
use realdenoise::UNet;

use super::batch::{from_tensor, to_tensor};
use super::config::{TrainConfig, ValidationNoise};
use crate::noise::degradations::{Degradation, FixedLevel, LevelsInTurn, NoiseVariant};
use crate::noise::NoiseLevel;
use crate::reports::metrics::psnr;


/// Fixed validation crops, clean and through each [`NoiseVariant`]: the
/// training variant scores fit (and picks the best weights), the unseen one
/// generalisation to a camera training never simulates.
pub struct ValidationSet {
    pub clean: Vec<Rgb32FImage>,
    /// Noisy crops per variant, [`NoiseVariant::ALL`] order.
    pub noisy: Vec<(NoiseVariant, Vec<Rgb32FImage>)>,
}

/// Crops scored per network evaluation, which bounds validation memory
/// (24 crops of 256 px at once need several GB in the U-Net's widest layer).
const VALIDATION_CHUNK: usize = 8;

impl ValidationSet {
    /// The run's validation: `validation_crops_per_photo` crops of
    /// `validation_patch` px from each of at most `validation_photos`
    /// validation photos (those that hold one), with seeded noise of the
    /// configured levels through both [`NoiseVariant`]s.
    pub fn for_config(photos: &[RgbImage], config: &TrainConfig, seed: u64) -> Self {
        let clean = validation_crops(photos, config.validation_patch, config.validation_photos, config.validation_crops_per_photo);
        let noisy = NoiseVariant::ALL
            .iter()
            .map(|&variant| {
                let images = match config.validation_noise {
                    ValidationNoise::MidLevel => FixedLevel::new(NoiseLevel::Mid).through(variant).degrade(&clean, seed),
                    ValidationNoise::LevelsInTurn => LevelsInTurn { variant }.degrade(&clean, seed),
                };
                (variant, images)
            })
            .collect();
        Self { clean, noisy }
    }

    /// Centre crops of at most `count` photos with `degradation`'s seeded
    /// noise, as the training variant only (the unseen score is then NaN).
    pub fn new(photos: &[RgbImage], patch: u32, count: usize, degradation: &dyn Degradation, seed: u64) -> Self {
        let clean = validation_crops(photos, patch, count, 1);
        let noisy = degradation.degrade(&clean, seed);
        Self { clean, noisy: vec![(NoiseVariant::Training, noisy)] }
    }

    /// Mean PSNR (dB) of `steps`-step improved sampling over the training
    /// variant's crops.
    pub fn score<B: Backend>(&self, model: &UNet<B>, steps: usize, device: &B::Device) -> f64 {
        self.score_variant(model, NoiseVariant::Training, steps, device)
    }

    /// Mean PSNR (dB) of `steps`-step improved sampling over `variant`'s
    /// crops; NaN for an empty set.
    pub fn score_variant<B: Backend>(&self, model: &UNet<B>, variant: NoiseVariant, steps: usize, device: &B::Device) -> f64 {
        let Some((_, noisy)) = self.noisy.iter().find(|(v, _)| *v == variant) else {
            return f64::NAN;
        };
        if self.clean.is_empty() {
            return f64::NAN;
        }
        let Ok(schedule) = Schedule::new(model.timesteps(), steps, 1.0) else {
            return f64::NAN;
        };
        let sampler = SamplerKind::Improved.sampler::<B>();
        let mut total = 0.0;
        for (noisy, clean) in noisy.chunks(VALIDATION_CHUNK).zip(self.clean.chunks(VALIDATION_CHUNK)) {
            let out = sample(model, sampler.as_ref(), &schedule, to_tensor::<B>(noisy, device));
            total += from_tensor(out).iter().zip(clean).map(|(a, b)| psnr(a, b)).sum::<f64>();
        }
        total / self.clean.len() as f64
    }
}

/// `per_photo` crops of `side` px from each of the first `photos` photos
/// that hold one.
fn validation_crops(photos: &[RgbImage], side: u32, count: usize, per_photo: usize) -> Vec<Rgb32FImage> {
    photos
        .iter()
        .filter(|p| p.width() >= side && p.height() >= side)
        .take(count)
        .flat_map(|p| spread_crops(p, side, per_photo))
        .map(|c| image::DynamicImage::ImageRgb8(c).to_rgb32f())
        .collect()
}

/// `count` crops of `side` px spread evenly along the photo's long side
/// (centred across the short one); one crop is the centre crop.
pub fn spread_crops(photo: &RgbImage, side: u32, count: usize) -> Vec<RgbImage> {
    let (w, h) = photo.dimensions();
    let (side_w, side_h) = (side.min(w), side.min(h));
    let (free_x, free_y) = (w - side_w, h - side_h);
    (0..count)
        .map(|k| {
            let along = |free: u32| (u64::from(free) * (k as u64 + 1) / (count as u64 + 1)) as u32;
            let (x, y) = if w >= h { (along(free_x), free_y / 2) } else { (free_x / 2, along(free_y)) };
            image::imageops::crop_imm(photo, x, y, side_w, side_h).to_image()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_spread_along_the_long_side_and_one_crop_is_the_centre_crop() {
        let photo = RgbImage::from_fn(600, 300, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, (x / 256) as u8]));
        let one = spread_crops(&photo, 256, 1);
        assert_eq!(one, vec![crate::train::batch::centre_crop(&photo, 256)]);
        let three = spread_crops(&photo, 256, 3);
        assert_eq!(three.len(), 3);
        // Free space 344 px: the crops start at 86, 172 and 258, 22 px down.
        let starts: Vec<(u8, u8, u8)> = three.iter().map(|c| { let p = c.get_pixel(0, 0).0; (p[0], p[1], p[2]) }).collect();
        assert_eq!(starts, vec![(86, 22, 0), (172, 22, 0), (2, 22, 1)]);
        assert!(three.iter().all(|c| c.dimensions() == (256, 256)));
        let tall = RgbImage::from_fn(300, 600, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, (y / 256) as u8]));
        let along_y: Vec<u8> = spread_crops(&tall, 256, 3).iter().map(|c| c.get_pixel(0, 0).0[1]).collect();
        assert_eq!(along_y, vec![86, 172, 2]);
    }
}
