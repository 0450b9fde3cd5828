//! The geometric self-ensemble in the whole pipeline: its output commutes
//! with flips and transposes (a plain network's does not), and its progress
//! counts every evaluation, so long ensemble steps can be watched and
//! cancelled.

use crate::common;

use burn::tensor::backend::Backend;
use common::{device, photo_like, Cpu};
use realdenoise::denoiser::{block_on, denoise_in_place, Callback, Cancelled, DenoiseError, Progress, Unobserved};
use realdenoise::tiling::PlanarImage;
use realdenoise::{DenoiseOptions, Ensemble, UNetConfig};

/// Width and height are multiples of the network's size multiple, so no
/// padding (which sits on the bottom and right only) breaks the symmetry.
const WIDTH: usize = 48;
const HEIGHT: usize = 32;

fn transposed(image: &PlanarImage) -> PlanarImage {
    let (width, height) = (image.width, image.height);
    let mut data = vec![0.0; image.data.len()];
    for channel in 0..3 {
        for y in 0..height {
            for x in 0..width {
                data[(channel * width + x) * height + y] = image.data[(channel * height + y) * width + x];
            }
        }
    }
    PlanarImage::new(height, width, data)
}

fn mirrored(image: &PlanarImage) -> PlanarImage {
    let (width, height) = (image.width, image.height);
    let mut data = vec![0.0; image.data.len()];
    for row in 0..3 * height {
        for x in 0..width {
            data[row * width + x] = image.data[row * width + width - 1 - x];
        }
    }
    PlanarImage::new(width, height, data)
}

fn largest_difference(a: &PlanarImage, b: &PlanarImage) -> f32 {
    a.data.iter().zip(&b.data).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn the_dihedral_ensemble_commutes_with_flips_and_transposes_and_a_single_view_does_not() {
    let config = UNetConfig::new();
    Cpu::seed(&device(), 23);
    let model = config.init::<Cpu>(&device()).unwrap();
    let input = PlanarImage::new(WIDTH, HEIGHT, photo_like(WIDTH, HEIGHT, 3));
    let denoise = |image: &PlanarImage, ensemble: Ensemble| {
        let mut image = image.clone();
        let options = DenoiseOptions { steps: 2, ensemble, ..DenoiseOptions::default() };
        block_on(denoise_in_place(&model, &config, &device(), &mut image, &options, &mut Unobserved)).unwrap();
        image
    };

    let plain = denoise(&input, Ensemble::Off);
    let plain_asymmetry = largest_difference(&mirrored(&plain), &denoise(&mirrored(&input), Ensemble::Off))
        .max(largest_difference(&transposed(&plain), &denoise(&transposed(&input), Ensemble::Off)));

    let averaged = denoise(&input, Ensemble::Dihedral);
    let mirror_asymmetry = largest_difference(&mirrored(&averaged), &denoise(&mirrored(&input), Ensemble::Dihedral));
    let transpose_asymmetry = largest_difference(&transposed(&averaged), &denoise(&transposed(&input), Ensemble::Dihedral));
    println!("asymmetry: single view {plain_asymmetry}, dihedral mirror {mirror_asymmetry}, transpose {transpose_asymmetry}");

    assert!(plain_asymmetry > 1e-3, "the random network is already symmetric ({plain_asymmetry}): the test would prove nothing");
    assert!(mirror_asymmetry < 1e-5, "dihedral output of the mirrored image differs by {mirror_asymmetry}");
    assert!(transpose_asymmetry < 1e-5, "dihedral output of the transposed image differs by {transpose_asymmetry}");
    assert!(largest_difference(&plain, &averaged) > 1e-3, "the ensemble changed nothing");
}

#[test]
fn ensemble_progress_counts_every_evaluation_and_can_stop_inside_a_step() {
    let config = UNetConfig::new().with_base_channels(8).with_norm_groups(1);
    let model = config.init::<Cpu>(&device()).unwrap();
    let input = PlanarImage::new(WIDTH, HEIGHT, photo_like(WIDTH, HEIGHT, 4));
    let options = DenoiseOptions { steps: 2, ensemble: Ensemble::Flips, ..DenoiseOptions::default() };

    let mut seen: Vec<Progress> = Vec::new();
    let mut observer = Callback(|progress: Progress| {
        seen.push(progress);
        Ok(())
    });
    block_on(denoise_in_place(&model, &config, &device(), &mut input.clone(), &options, &mut observer)).unwrap();
    // The tile's start, then four evaluations in each of two steps.
    assert_eq!(seen.len(), 1 + 2 * 4, "{seen:?}");
    let fractions: Vec<f64> = seen.iter().map(|p| p.fraction).collect();
    let expected: Vec<f64> = (0..=8).map(|done| done as f64 / 8.0).collect();
    assert_eq!(fractions, expected);
    assert!(seen.iter().all(|p| p.evaluations == 4 && p.steps == 2));
    assert_eq!((seen[3].step, seen[3].evaluation), (1, 3));
    assert_eq!((seen[8].step, seen[8].evaluation), (2, 4));

    // Cancelled after the second evaluation of the first step: the image is
    // left as it was (one tile, never written back).
    let mut calls = 0;
    let mut cancelling = Callback(|_| {
        calls += 1;
        if calls == 3 { Err(Cancelled) } else { Ok(()) }
    });
    let mut image = input.clone();
    let result = block_on(denoise_in_place(&model, &config, &device(), &mut image, &options, &mut cancelling));
    assert!(matches!(result, Err(DenoiseError::Cancelled)), "{result:?}");
    assert_eq!(calls, 3);
    assert_eq!(image.data, input.data);
}
