//! Helpers shared by the integration tests.
#![allow(dead_code)]

use burn::backend::NdArray;
use burn::tensor::{Tensor, TensorData};
use realdenoise::diffusion::Predictor;

pub type Cpu = NdArray<f32>;

pub fn device() -> burn::backend::ndarray::NdArrayDevice {
    Default::default()
}

/// Deterministic pseudo-random values in 0..1 (xorshift), no RNG crate needed.
pub fn pseudo_random(count: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

pub fn tensor(values: Vec<f32>, shape: [usize; 4]) -> Tensor<Cpu, 4> {
    Tensor::from_data(TensorData::new(values, shape), &device())
}

pub fn values(tensor: Tensor<Cpu, 4>) -> Vec<f32> {
    tensor.into_data().into_vec::<f32>().expect("f32 tensor")
}

/// A photo-like test image: smooth gradients, edges and mild texture.
pub fn photo_like(width: usize, height: usize, seed: u64) -> Vec<f32> {
    let noise = pseudo_random(3 * width * height, seed);
    let mut planes = vec![0.0; 3 * width * height];
    for channel in 0..3 {
        for y in 0..height {
            for x in 0..width {
                let index = (channel * height + y) * width + x;
                let gradient = (x as f32 / width as f32 + channel as f32 * 0.2) % 1.0;
                let edge = if (x / 23 + y / 17) % 2 == 0 { 0.15 } else { 0.0 };
                planes[index] = (0.6 * gradient + edge + 0.2 * noise[index]).clamp(0.0, 1.0);
            }
        }
    }
    planes
}

/// Always predicts the clean image: the perfect network.
pub struct Oracle(pub Tensor<Cpu, 4>);

impl Predictor<Cpu> for Oracle {
    fn predict(&self, _x_t: Tensor<Cpu, 4>, _t: usize) -> Tensor<Cpu, 4> {
        self.0.clone()
    }
}

/// Returns its input: tiling with it must reproduce the image.
pub struct Identity;

impl Predictor<Cpu> for Identity {
    fn predict(&self, x_t: Tensor<Cpu, 4>, _t: usize) -> Tensor<Cpu, 4> {
        x_t
    }
}
