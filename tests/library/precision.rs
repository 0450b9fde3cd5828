//! The pipeline on a backend whose float type is not f32 (as f16/bf16 GPU
//! backends are): the result comes back as f32 and matches the f32 run.

use crate::common;

use burn::backend::NdArray;
use common::photo_like;
use realdenoise::denoiser::{block_on, denoise_in_place, Unobserved};
use realdenoise::tiling::PlanarImage;
use realdenoise::{DenoiseOptions, UNetConfig};

#[test]
fn a_non_f32_backend_denoises_like_f32() {
    let config = UNetConfig::new();
    let device = Default::default();
    let model32 = config.init::<NdArray<f32>>(&device).unwrap();
    let bytes = realdenoise::weights::to_bytes(&model32, &config, &realdenoise::TrainingMetadata::untrained());
    let (model32, _) = realdenoise::weights::from_bytes::<NdArray<f32>>(&bytes, &device).unwrap();
    let (model64, _) = realdenoise::weights::from_bytes::<NdArray<f64>>(&bytes, &device).unwrap();
    let (width, height) = (40, 28);
    let input = photo_like(width, height, 5);
    let options = DenoiseOptions { steps: 2, ..DenoiseOptions::default() };
    let mut single = PlanarImage::new(width, height, input.clone());
    let mut double = PlanarImage::new(width, height, input);
    block_on(denoise_in_place(&model32, &config, &device, &mut single, &options, &mut Unobserved)).unwrap();
    block_on(denoise_in_place(&model64, &config, &device, &mut double, &options, &mut Unobserved)).unwrap();
    let worst = single.data.iter().zip(&double.data).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "f64 and f32 pipelines differ by {worst}");
}
