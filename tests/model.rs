//! The U-Net's shape behaviour, size and cost.

mod common;

use burn::module::Module;
use burn::tensor::Tensor;
use common::{device, pseudo_random, tensor, values, Cpu};
use realdenoise::model::{ConfigError, UNetConfig};

#[test]
fn the_model_keeps_any_input_size() {
    let model = UNetConfig::new().init::<Cpu>(&device()).unwrap();
    for (height, width) in [(1, 1), (17, 33), (257, 511)] {
        let x = tensor(pseudo_random(3 * height * width, 7), [1, 3, height, width]);
        let t = Tensor::<Cpu, 1>::full([1], 50.0, &device());
        let out = model.forward(x, t);
        assert_eq!(out.dims(), [1, 3, height, width]);
        assert!(values(out).iter().all(|v| v.is_finite()));
    }
}

#[test]
fn the_default_model_suits_browsers() {
    let config = UNetConfig::new();
    let model = config.init::<Cpu>(&device()).unwrap();
    let parameters = model.num_params();
    let gflops_per_megapixel = config.flops_per_pixel() * 1e6 / 1e9;
    println!("default U-Net: {parameters} parameters, {gflops_per_megapixel:.1} GFLOP per megapixel per step");
    assert!(parameters <= 8_000_000, "{parameters} parameters");
    // f16 weights must stay under 8 MB.
    assert!(2 * parameters <= 8_000_000, "{parameters} parameters do not fit 8 MB in f16");
    assert!((100.0..1000.0).contains(&gflops_per_megapixel));
}

#[test]
fn flop_count_matches_a_hand_count_for_a_one_level_net() {
    // head 3->4, two encoder... : one level, one block per level.
    let config = UNetConfig::new().with_base_channels(4).with_channel_multipliers(vec![1]).with_blocks_per_level(1).with_norm_groups(1);
    let conv = |cin: f64, cout: f64, k: f64| 2.0 * k * k * cin * cout;
    let block = |cin: f64, cout: f64| conv(cin, cout, 3.0) + conv(cout, cout, 3.0) + if cin != cout { conv(cin, cout, 1.0) } else { 0.0 };
    let expected = conv(3.0, 4.0, 3.0)       // head
        + block(4.0, 4.0)                     // encoder block
        + 2.0 * block(4.0, 4.0)               // middle
        + 2.0 * block(8.0, 4.0)               // decoder: two blocks over concatenated skips
        + conv(4.0, 3.0, 3.0); // tail
    assert_eq!(config.flops_per_pixel(), expected);
}

#[test]
fn the_widest_tensor_matches_a_hand_count() {
    // Default (16 channels, multipliers 1-2-4): the first full-resolution
    // decoder block reads the upsampled 32-channel map concatenated with a
    // 16-channel skip: 48 channels of f32. Everything at half resolution or
    // below is narrower per input pixel (the widest there, 64 + 32 channels
    // at 1/4 of the pixels, counts 24).
    assert_eq!(UNetConfig::new().widest_tensor_bytes_per_pixel(), 48.0 * 4.0);
    // One level of 4 channels: the decoder concatenates 4 + 4.
    let one_level = UNetConfig::new().with_base_channels(4).with_channel_multipliers(vec![1]).with_blocks_per_level(1).with_norm_groups(1);
    assert_eq!(one_level.widest_tensor_bytes_per_pixel(), 8.0 * 4.0);
    // A wide bottom level reaches full resolution through the upsampling
    // (64 channels), and the first decoder block there adds an 8-channel
    // skip: 72 channels, wider than anything at the bottom (128 at 1/4).
    let wide_bottom = UNetConfig::new().with_base_channels(8).with_channel_multipliers(vec![1, 8]).with_blocks_per_level(1).with_norm_groups(1);
    assert_eq!(wide_bottom.widest_tensor_bytes_per_pixel(), 72.0 * 4.0);
}

#[test]
fn the_step_changes_the_prediction() {
    let model = UNetConfig::new().init::<Cpu>(&device()).unwrap();
    let x = tensor(pseudo_random(3 * 16 * 16, 3), [1, 3, 16, 16]);
    let early = values(model.forward(x.clone(), Tensor::full([1], 5.0, &device())));
    let late = values(model.forward(x.clone(), Tensor::full([1], 95.0, &device())));
    let again = values(model.forward(x, Tensor::full([1], 95.0, &device())));
    assert_eq!(late, again, "inference must be deterministic");
    let change = early.iter().zip(&late).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(change > 1e-4, "the step embedding has no effect ({change})");
}

#[test]
fn invalid_configurations_are_refused() {
    let device = device();
    assert_eq!(UNetConfig::new().with_channel_multipliers(vec![]).init::<Cpu>(&device).err(), Some(ConfigError::NoLevels));
    assert_eq!(UNetConfig::new().with_timesteps(0).init::<Cpu>(&device).err(), Some(ConfigError::Zero { field: "timesteps" }));
    assert_eq!(
        UNetConfig::new().with_base_channels(6).with_norm_groups(4).init::<Cpu>(&device).err(),
        Some(ConfigError::Groups { channels: 6, groups: 4 })
    );
}
