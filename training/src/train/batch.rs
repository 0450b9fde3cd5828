//! Training batches: random crops of clean photos with flips and 90-degree
//! rotations, their synthetic noisy counterparts, as `[batch, 3, p, p]`
//! tensors. Everything is derived from `(seed, step)`, so a resumed run draws
//! exactly the batches an uninterrupted one would have.

use burn::tensor::{backend::Backend, Tensor, TensorData};
use image::{Rgb32FImage, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::noise::degradations::Degradation;

/// A clean/noisy pair of image batches, each `[batch, 3, patch, patch]` in [0, 1].
pub struct PairBatch<B: Backend> {
    pub clean: Tensor<B, 4>,
    pub noisy: Tensor<B, 4>,
}

/// A random generator for one purpose at one step: independent streams that
/// do not shift when another stream draws more or fewer numbers.
pub fn stream(seed: u64, step: u64, purpose: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(purpose);
    rng.set_word_pos(u128::from(step) << 20);
    rng
}

/// The centre `side` x `side` crop of `photo` (each side clamped to the
/// photo; `side == 0` keeps the whole photo). Evaluation and validation both
/// score these crops.
pub fn centre_crop(photo: &RgbImage, side: u32) -> RgbImage {
    if side == 0 || (photo.width() <= side && photo.height() <= side) {
        return photo.clone();
    }
    let (w, h) = (side.min(photo.width()), side.min(photo.height()));
    image::imageops::crop_imm(photo, (photo.width() - w) / 2, (photo.height() - h) / 2, w, h).to_image()
}

/// Cuts a `patch` x `patch` crop at a random place of a random photo and
/// applies one of the eight flips/rotations. Photos smaller than the patch
/// are skipped by the caller (see [`usable_photos`]).
pub fn random_crop(photo: &RgbImage, patch: u32, rng: &mut impl Rng) -> Rgb32FImage {
    let x0 = rng.random_range(0..=photo.width() - patch);
    let y0 = rng.random_range(0..=photo.height() - patch);
    let transform = rng.random_range(0..8u8);
    Rgb32FImage::from_fn(patch, patch, |x, y| {
        let (sx, sy) = dihedral(x, y, patch, transform);
        let p = photo.get_pixel(x0 + sx, y0 + sy).0;
        image::Rgb([p[0] as f32 / 255.0, p[1] as f32 / 255.0, p[2] as f32 / 255.0])
    })
}

/// Source coordinates of output pixel (x, y) under one of the eight
/// symmetries of the square (bit 0: mirror, bit 1: flip, bit 2: transpose).
fn dihedral(x: u32, y: u32, side: u32, transform: u8) -> (u32, u32) {
    let (mut a, mut b) = if transform & 4 != 0 { (y, x) } else { (x, y) };
    if transform & 1 != 0 {
        a = side - 1 - a;
    }
    if transform & 2 != 0 {
        b = side - 1 - b;
    }
    (a, b)
}

/// Indices of photos that can hold a `patch`-sized crop.
pub fn usable_photos(photos: &[RgbImage], patch: u32) -> Vec<usize> {
    (0..photos.len()).filter(|&i| photos[i].width() >= patch && photos[i].height() >= patch).collect()
}

/// Draws the batch for `step`. Photos are picked with probability
/// proportional to their area, so large photos are not under-sampled.
pub fn draw_batch(
    photos: &[RgbImage],
    usable: &[usize],
    batch: usize,
    patch: u32,
    degradation: &dyn Degradation,
    seed: u64,
    step: u64,
) -> (Vec<Rgb32FImage>, Vec<Rgb32FImage>) {
    let mut rng = stream(seed, step, 1);
    let areas: Vec<f64> = usable.iter().map(|&i| f64::from(photos[i].width()) * f64::from(photos[i].height())).collect();
    let total: f64 = areas.iter().sum();
    let clean: Vec<Rgb32FImage> = (0..batch)
        .map(|_| {
            let mut pick = rng.random::<f64>() * total;
            let mut chosen = usable[usable.len() - 1];
            for (&i, &a) in usable.iter().zip(&areas) {
                if pick < a {
                    chosen = i;
                    break;
                }
                pick -= a;
            }
            random_crop(&photos[chosen], patch, &mut rng)
        })
        .collect();
    let noise_seed = rng.random::<u64>();
    let noisy = degradation.degrade(&clean, noise_seed);
    (clean, noisy)
}

/// Packs same-sized RGB images into one `[n, 3, h, w]` tensor.
pub fn to_tensor<B: Backend>(images: &[Rgb32FImage], device: &B::Device) -> Tensor<B, 4> {
    let (w, h) = images.first().map_or((0, 0), |i| i.dimensions());
    let plane = (w * h) as usize;
    let mut data = vec![0.0f32; images.len() * 3 * plane];
    for (n, img) in images.iter().enumerate() {
        for (i, p) in img.pixels().enumerate() {
            for c in 0..3 {
                data[(n * 3 + c) * plane + i] = p.0[c];
            }
        }
    }
    Tensor::from_data(TensorData::new(data, [images.len(), 3, h as usize, w as usize]), device)
}

/// Unpacks a `[n, 3, h, w]` tensor (any values; clamped to [0, 1]).
pub fn from_tensor<B: Backend>(tensor: Tensor<B, 4>) -> Vec<Rgb32FImage> {
    let [n, _, h, w] = tensor.dims();
    let values: Vec<f32> = tensor.into_data().convert::<f32>().into_vec().unwrap_or_default();
    let plane = h * w;
    (0..n)
        .map(|k| {
            Rgb32FImage::from_fn(w as u32, h as u32, |x, y| {
                let i = y as usize * w + x as usize;
                let at = |c: usize| values.get((k * 3 + c) * plane + i).copied().unwrap_or(0.0).clamp(0.0, 1.0);
                image::Rgb([at(0), at(1), at(2)])
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eight_transforms_are_distinct_permutations() {
        let side = 3;
        let mut seen = std::collections::HashSet::new();
        for t in 0..8 {
            let map: Vec<(u32, u32)> =
                (0..side).flat_map(|y| (0..side).map(move |x| dihedral(x, y, side, t))).collect();
            let unique: std::collections::HashSet<_> = map.iter().collect();
            assert_eq!(unique.len(), 9, "transform {t} is not a permutation");
            seen.insert(map);
        }
        assert_eq!(seen.len(), 8);
    }

    #[test]
    fn streams_are_reproducible_and_independent() {
        let a: u64 = stream(7, 3, 1).random();
        let b: u64 = stream(7, 3, 1).random();
        let c: u64 = stream(7, 4, 1).random();
        let d: u64 = stream(7, 3, 2).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }
}
