//! The degradations the training loop and the evaluation use, as
//! [`Degradation`]s over the camera-noise pipeline of [`crate::noise`]
//! (and the trait itself: clean crops in, noisy crops out).

use image::Rgb32FImage;
use rayon::prelude::*;

use rand::Rng;

use crate::noise::{self, BayerPattern, Demosaic, NoiseLevel, NoiseModel, NoiseParams, ToneCurve};

/// Turns clean crops into noisy ones. Implemented by the camera-noise
/// pipeline; tests use simpler degradations.
pub trait Degradation: Sync {
    /// One noisy image per clean one, same sizes; deterministic in `seed`.
    fn degrade(&self, clean: &[Rgb32FImage], seed: u64) -> Vec<Rgb32FImage>;
}

/// Training noise: every crop gets its own camera, level and JPEG setting
/// drawn from the model.
pub struct CameraNoise(pub NoiseModel);

impl Degradation for CameraNoise {
    fn degrade(&self, clean: &[Rgb32FImage], seed: u64) -> Vec<Rgb32FImage> {
        noise::synthesize_batch(clean, &self.0, seed)
    }
}

/// Which simulated camera processes evaluation noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoiseVariant {
    /// The image processor training synthesises (Malvar-He-Cutler demosaic,
    /// Brooks' tone curve), without JPEG: how well the model fits.
    #[default]
    Training,
    /// A camera training never sees: bilinear demosaic, the plain sRGB
    /// curve, and a JPEG round trip at quality 80-100 on every image. How
    /// well the model generalises to another camera's noise.
    Unseen,
}

impl NoiseVariant {
    /// Both variants, the training one first.
    pub const ALL: [NoiseVariant; 2] = [NoiseVariant::Training, NoiseVariant::Unseen];

    /// Lower-case name for reports, file names and the training log.
    pub fn name(self) -> &'static str {
        match self {
            NoiseVariant::Training => "training",
            NoiseVariant::Unseen => "unseen",
        }
    }

    /// Sets the variant's image processor on `params`. Draws from `rng` only
    /// for `Unseen`, so the training variant's noise does not change.
    pub fn apply<R: Rng + ?Sized>(self, params: &mut NoiseParams, rng: &mut R) {
        if self == NoiseVariant::Unseen {
            params.demosaic = Demosaic::Bilinear;
            params.tone_curve = ToneCurve::Srgb;
            params.jpeg_quality = Some(rng.random_range(80..=100));
        }
    }
}

/// Evaluation noise: one fixed level (random colour pipeline, seeded) on a
/// given Bayer pattern, or on the four patterns in turn along the batch,
/// through the image processor of a [`NoiseVariant`].
pub struct FixedLevel {
    pub level: NoiseLevel,
    /// `None`: item `i` of a batch gets `BayerPattern::ALL[i % 4]`.
    pub pattern: Option<BayerPattern>,
    pub variant: NoiseVariant,
}

impl FixedLevel {
    /// The four Bayer patterns in turn along the batch, so a validation set
    /// scores a network on all of them, as real photos bring them.
    pub fn new(level: NoiseLevel) -> FixedLevel {
        FixedLevel { level, pattern: None, variant: NoiseVariant::Training }
    }

    /// One Bayer pattern for every item.
    pub fn with_pattern(level: NoiseLevel, pattern: BayerPattern) -> FixedLevel {
        FixedLevel { level, pattern: Some(pattern), variant: NoiseVariant::Training }
    }

    /// The same noise through another variant's image processor.
    pub fn through(self, variant: NoiseVariant) -> FixedLevel {
        FixedLevel { variant, ..self }
    }
}

impl Degradation for FixedLevel {
    fn degrade(&self, clean: &[Rgb32FImage], seed: u64) -> Vec<Rgb32FImage> {
        clean
            .par_iter()
            .enumerate()
            .map(|(i, image)| {
                let pattern = self.pattern.unwrap_or(BayerPattern::ALL[i % BayerPattern::ALL.len()]);
                noisy_item(image, seed, i, self.level, pattern, self.variant)
            })
            .collect()
    }
}

/// Item `i` of a batch with `level` noise on `pattern` through `variant`'s
/// image processor, from the item's own stream ([`noise::item_rng`]): the
/// colour pipeline is drawn first, so both variants share it.
fn noisy_item(image: &Rgb32FImage, seed: u64, i: usize, level: NoiseLevel, pattern: BayerPattern, variant: NoiseVariant) -> Rgb32FImage {
    let mut rng = noise::item_rng(seed, i);
    let mut params = NoiseParams::for_level(level, &mut rng);
    params.pattern = pattern;
    variant.apply(&mut params, &mut rng);
    noise::synthesize(image, &params, &mut rng)
}

/// Validation noise: item `i` of a batch gets level `NoiseLevel::ALL[i % 3]`
/// and Bayer pattern `BayerPattern::ALL[(i / 3) % 4]`, through `variant`'s
/// image processor, so a validation set covers every level and pattern.
pub struct LevelsInTurn {
    pub variant: NoiseVariant,
}

impl LevelsInTurn {
    /// The level of item `i`.
    pub fn level(i: usize) -> NoiseLevel {
        NoiseLevel::ALL[i % NoiseLevel::ALL.len()]
    }
}

impl Degradation for LevelsInTurn {
    fn degrade(&self, clean: &[Rgb32FImage], seed: u64) -> Vec<Rgb32FImage> {
        clean
            .par_iter()
            .enumerate()
            .map(|(i, image)| {
                let pattern = BayerPattern::ALL[(i / NoiseLevel::ALL.len()) % BayerPattern::ALL.len()];
                noisy_item(image, seed, i, Self::level(i), pattern, self.variant)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::metrics::psnr;

    fn clean_crop() -> Rgb32FImage {
        let path = realdenoise::checkout::repository_path("assets/sample-clean.png");
        let photo = image::open(&path).expect("assets/sample-clean.png").to_rgb8();
        image::DynamicImage::ImageRgb8(crate::train::batch::centre_crop(&photo, 96)).to_rgb32f()
    }

    #[test]
    fn levels_in_turn_give_every_level_in_order_through_both_variants() {
        let clean = vec![clean_crop(); 6];
        for variant in NoiseVariant::ALL {
            let noisy = LevelsInTurn { variant }.degrade(&clean, 11);
            let scores: Vec<f64> = noisy.iter().zip(&clean).map(|(n, c)| psnr(n, c)).collect();
            println!("{}: PSNR per item {scores:.2?}", variant.name());
            for i in 0..3 {
                assert_eq!(LevelsInTurn::level(i), NoiseLevel::ALL[i]);
                assert_eq!(LevelsInTurn::level(i + 3), NoiseLevel::ALL[i]);
            }
            // Measured: training 31.0 > 27.0 > 21.9 dB; unseen 27.2 > 26.2 >
            // 22.1 dB (its JPEG costs most at low noise).
            for base in [0, 3] {
                assert!(scores[base] > scores[base + 1] + 0.5 && scores[base + 1] > scores[base + 2] + 2.0, "{scores:?}");
            }
        }
    }

    #[test]
    fn the_unseen_camera_is_another_image_processor_at_a_comparable_noise_level() {
        let clean = vec![clean_crop()];
        let training = FixedLevel::new(NoiseLevel::Mid).degrade(&clean, 4);
        let again = FixedLevel::new(NoiseLevel::Mid).through(NoiseVariant::Training).degrade(&clean, 4);
        assert_eq!(training, again, "the training variant is the plain fixed level");
        let unseen = FixedLevel::new(NoiseLevel::Mid).through(NoiseVariant::Unseen).degrade(&clean, 4);
        let (a, b) = (psnr(&training[0], &clean[0]), psnr(&unseen[0], &clean[0]));
        let apart = psnr(&training[0], &unseen[0]);
        println!("mid noise PSNR: training camera {a:.2} dB, unseen camera {b:.2} dB; between them {apart:.2} dB");
        assert!(apart < 40.0, "the two cameras give nearly the same image: {apart} dB apart");
        assert!((a - b).abs() < 4.0, "the unseen camera is not at a comparable level: {a} vs {b}");
    }
}
