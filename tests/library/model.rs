//! The U-Net's shape behaviour, size and cost.

use crate::common;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use common::{device, pseudo_random, tensor, values, Cpu};
use realdenoise::model::{pixel_shuffle, pixel_unshuffle, ConfigError, Convolution, UNetConfig};

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

/// Every parameter of a built network with its dotted path and shape, in
/// visiting order: the order of the module's fields, which is the order
/// the forward pass runs its layers.
#[derive(Default)]
struct Parameters {
    path: Vec<String>,
    found: Vec<(String, Vec<usize>)>,
}

impl ModuleVisitor<Cpu> for Parameters {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Cpu, D>>) {
        self.found.push((self.path.join("."), param.lazy_shape().dims::<D>().to_vec()));
    }
}

/// The convolutions of the built network, read from its modules: every
/// 4-D weight `[output, input, k, k]` in order, at the resolution the
/// forward pass runs it: the stem's, a quarter after each downsampling
/// (a stride-2 convolution), four times from each upsampling on.
fn built_convolutions(config: &UNetConfig) -> Vec<(String, Convolution)> {
    let model = config.init::<Cpu>(&device()).unwrap();
    let mut parameters = Parameters::default();
    model.visit(&mut parameters);
    let unshuffle = config.pixel_unshuffle.unwrap_or(1);
    let mut scale = 1.0 / (unshuffle * unshuffle) as f64;
    let mut convs = Vec::new();
    for (path, shape) in parameters.found {
        let &[output, input, kernel, kernel_width] = shape.as_slice() else { continue };
        assert_eq!(kernel, kernel_width, "{path}: not square");
        if path.contains(".upsample.") {
            scale *= 4.0;
        }
        let input_scale = scale;
        if path.contains(".downsample.") {
            scale /= 4.0;
        }
        convs.push((path, Convolution { input, output, kernel, input_scale, output_scale: scale }));
    }
    convs
}

/// The cost model (`src/model/plan.rs`) against the built module, layer by
/// layer: a layer added to the network but not to the plan fails here.
#[test]
fn the_cost_model_counts_every_layer_of_the_built_network() {
    let small = || UNetConfig::new().with_base_channels(8).with_norm_groups(2);
    let configs = [
        ("default", UNetConfig::new()),
        ("pixel_unshuffle stem", UNetConfig::new().with_pixel_unshuffle(Some(2)).with_base_channels(32)),
        ("4 levels", small().with_channel_multipliers(vec![1, 2, 3, 4])),
        ("4 levels, stem, 3 blocks", small().with_channel_multipliers(vec![1, 1, 2, 4]).with_pixel_unshuffle(Some(2)).with_blocks_per_level(3)),
        ("one level", small().with_channel_multipliers(vec![1]).with_blocks_per_level(1)),
    ];
    for (name, config) in configs {
        let built = built_convolutions(&config);
        let estimated = config.convolutions();
        for (index, ((path, conv), estimate)) in built.iter().zip(&estimated).enumerate() {
            assert_eq!(conv, estimate, "{name}: convolution {index} ({path}) differs from the cost model's");
        }
        assert_eq!(built.len(), estimated.len(), "{name}: the network has {} convolutions, the cost model {}", built.len(), estimated.len());
        let model = config.init::<Cpu>(&device()).unwrap();
        assert_eq!(model.num_params(), config.parameter_count(), "{name}: parameters");
        // FLOPs and the widest tensor, computed from the built layers.
        let flops: f64 = built.iter().map(|(_, c)| 2.0 * (c.kernel * c.kernel * c.input * c.output) as f64 * c.output_scale).sum();
        assert_eq!(config.flops_per_pixel(), flops, "{name}: FLOPs");
        let widest = built
            .iter()
            .map(|(_, c)| (c.input as f64 * c.input_scale).max(c.output as f64 * c.output_scale))
            .fold(0.0, f64::max);
        assert_eq!(config.widest_tensor_bytes_per_pixel(), 4.0 * widest, "{name}: widest tensor");
    }
    // The shipped architecture's figures, as the README states them.
    assert_eq!(UNetConfig::new().parameter_count(), 889_187);
    assert!((UNetConfig::new().flops_per_pixel() * 1e6 / 1e9 - 249.3).abs() < 0.05);
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

#[test]
fn pixel_unshuffle_folds_each_2x2_block_into_channels_and_shuffle_undoes_it() {
    // One channel, 4x4, values 0..16 row-major.
    let x = tensor((0..16).map(|v| v as f32).collect(), [1, 1, 4, 4]);
    let folded = pixel_unshuffle(x.clone(), 2);
    assert_eq!(folded.dims(), [1, 4, 2, 2]);
    // Channel dy * 2 + dx holds pixel (dx, dy) of each block, as PyTorch's
    // pixel_unshuffle: channel 0 the top-left pixels 0, 2, 8, 10.
    assert_eq!(values(folded.clone()), vec![0.0, 2.0, 8.0, 10.0, 1.0, 3.0, 9.0, 11.0, 4.0, 6.0, 12.0, 14.0, 5.0, 7.0, 13.0, 15.0]);
    assert_eq!(values(pixel_shuffle(folded, 2)), values(x.clone()));
    assert_eq!(values(pixel_unshuffle(x.clone(), 1)), values(x));
    let rgb = tensor(pseudo_random(2 * 3 * 6 * 8, 5), [2, 3, 6, 8]);
    assert_eq!(values(pixel_shuffle(pixel_unshuffle(rgb.clone(), 2), 2)), values(rgb));
}

#[test]
fn an_unshuffled_stem_runs_at_half_resolution_on_any_input_size() {
    let base = UNetConfig::new();
    let stem = UNetConfig::new().with_pixel_unshuffle(Some(2)).with_base_channels(32);
    assert_eq!(stem.size_multiple(), 2 * base.size_multiple());
    // Twice the channels at a quarter of the pixels: the same cost per pixel
    // up to the head and tail, which read and write 12 channels.
    let ratio = stem.flops_per_pixel() / base.flops_per_pixel();
    println!("unshuffle stem, 32 channels: {ratio:.3} x the default's FLOPs per pixel");
    assert!((0.98..1.05).contains(&ratio), "{ratio}");
    let model = stem.init::<Cpu>(&device()).unwrap();
    for (height, width) in [(1, 1), (17, 33), (40, 24)] {
        let x = tensor(pseudo_random(3 * height * width, 9), [1, 3, height, width]);
        let out = model.forward(x, Tensor::<Cpu, 1>::full([1], 50.0, &device()));
        assert_eq!(out.dims(), [1, 3, height, width]);
        assert!(values(out).iter().all(|v| v.is_finite()));
    }
    assert_eq!(UNetConfig::new().with_pixel_unshuffle(Some(4)).init::<Cpu>(&device()).err(), Some(ConfigError::PixelUnshuffle(4)));
}
