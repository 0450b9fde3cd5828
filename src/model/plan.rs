//! The U-Net's layers in forward order, written once: [`UNetConfig::init`]
//! builds its modules from this plan and the cost model (FLOPs, the widest
//! tensor, activation memory, parameters) counts the same plan, so the two
//! cannot drift apart. `tests/library/model.rs` walks the built module and checks
//! the count layer by layer (weight shapes, resolutions, parameters).

use super::blocks::{residual_block_convolutions, residual_block_parameters};
use super::config::UNetConfig;
use super::embedding::timestep_embedding_parameters;

/// One residual block: channels in (the decoder's include a concatenated
/// skip connection) and out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockPlan {
    pub input: usize,
    pub output: usize,
}

/// One resolution level: its residual blocks, then an optional resampling
/// convolution over `resample` channels (a strided downsampling in the
/// encoder, an upsampling in the decoder).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LevelPlan {
    /// Pixels of this level's maps per input pixel.
    pub scale: f64,
    pub blocks: Vec<BlockPlan>,
    pub resample: Option<usize>,
}

/// Every layer of the network, in the order the forward pass runs them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub time_channels: usize,
    /// The scale of the head and tail: the first level's.
    pub stem_scale: f64,
    /// The head convolution: the stem's channels to `base_channels`.
    pub head: BlockPlan,
    pub encoder: Vec<LevelPlan>,
    /// Two blocks at the deepest level's scale.
    pub middle: LevelPlan,
    /// From the deepest level up; each level's upsampling ends it.
    pub decoder: Vec<LevelPlan>,
    /// The output normalisation over `tail.input` channels, then the tail
    /// convolution back to the stem's channels.
    pub tail: BlockPlan,
}

/// One convolution of a forward pass: channels in and out, kernel side, and
/// the scale (pixels per input pixel) of the map it reads and writes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Convolution {
    pub input: usize,
    pub output: usize,
    pub kernel: usize,
    pub input_scale: f64,
    pub output_scale: f64,
}

impl Convolution {
    /// Multiply-adds counted as two operations, per input pixel of the network.
    fn flops_per_pixel(&self) -> f64 {
        2.0 * (self.kernel * self.kernel * self.input * self.output) as f64 * self.output_scale
    }
}

impl UNetConfig {
    /// The layer plan of this configuration (see the module comment). Needs
    /// no validation to be computed; [`UNetConfig::init`] validates first.
    pub(crate) fn plan(&self) -> Plan {
        let widths = self.level_channels();
        let last = widths.len().saturating_sub(1);
        // The stem folds pixel_unshuffle^2 pixels into one before the head.
        let stem_scale = 1.0 / (self.unshuffle_factor() * self.unshuffle_factor()) as f64;
        let mut scale = stem_scale;
        let mut channels = self.base_channels;
        // The forward pass keeps the head's output, every encoder block's and
        // every downsampling's as skip connections; decoder blocks take them
        // back, last first, concatenated to their input.
        let mut skips = vec![channels];
        let mut encoder = Vec::with_capacity(widths.len());
        for (level, &width) in widths.iter().enumerate() {
            let mut blocks = Vec::with_capacity(self.blocks_per_level);
            for _ in 0..self.blocks_per_level {
                blocks.push(BlockPlan { input: channels, output: width });
                channels = width;
                skips.push(channels);
            }
            let resample = (level < last).then(|| {
                skips.push(channels);
                channels
            });
            encoder.push(LevelPlan { scale, blocks, resample });
            if resample.is_some() {
                scale /= 4.0;
            }
        }
        let middle_block = BlockPlan { input: channels, output: channels };
        let middle = LevelPlan { scale, blocks: vec![middle_block; 2], resample: None };
        let mut decoder = Vec::with_capacity(widths.len());
        for (level, &width) in widths.iter().enumerate().rev() {
            let mut blocks = Vec::with_capacity(self.blocks_per_level + 1);
            for _ in 0..=self.blocks_per_level {
                // Never empty for a valid configuration (one skip per decoder
                // block); 0 keeps the plan total for an invalid one.
                let skip = skips.pop().unwrap_or(0);
                blocks.push(BlockPlan { input: channels + skip, output: width });
                channels = width;
            }
            let resample = (level > 0).then_some(channels);
            decoder.push(LevelPlan { scale, blocks, resample });
            if resample.is_some() {
                scale *= 4.0;
            }
        }
        Plan {
            time_channels: self.time_embedding_channels(),
            stem_scale,
            head: BlockPlan { input: self.stem_channels(), output: self.base_channels },
            encoder,
            middle,
            decoder,
            tail: BlockPlan { input: channels, output: self.stem_channels() },
        }
    }

    /// Every convolution of one forward pass, in the order the network runs
    /// them (and stores them: the order of its parameters).
    pub fn convolutions(&self) -> Vec<Convolution> {
        let plan = self.plan();
        let mut convs = vec![same_scale(plan.head.input, plan.head.output, 3, plan.stem_scale)];
        for level in &plan.encoder {
            push_blocks(&mut convs, level);
            if let Some(channels) = level.resample {
                // A stride-2 convolution: it writes a quarter of the pixels it reads.
                convs.push(Convolution { output_scale: level.scale / 4.0, ..same_scale(channels, channels, 3, level.scale) });
            }
        }
        push_blocks(&mut convs, &plan.middle);
        for level in &plan.decoder {
            push_blocks(&mut convs, level);
            if let Some(channels) = level.resample {
                // Nearest-neighbour upsampling, then a convolution at the new scale.
                convs.push(same_scale(channels, channels, 3, level.scale * 4.0));
            }
        }
        convs.push(same_scale(plan.tail.input, plan.tail.output, 3, plan.stem_scale));
        convs
    }

    /// Floating-point operations (multiply and add counted separately) of one
    /// network evaluation per output pixel. Convolutions and the residual
    /// 1x1 projections dominate; normalisation and activations are left out.
    pub fn flops_per_pixel(&self) -> f64 {
        self.convolutions().iter().map(Convolution::flops_per_pixel).sum()
    }

    /// Bytes per input pixel of the widest single tensor a forward pass
    /// holds (f32): the input of the first decoder block at full resolution,
    /// which concatenates the upsampled map from the level below with a skip
    /// connection (48 channels, 192 bytes, for the default network). GPU
    /// runtimes allocate each tensor as one buffer and cap its size (WebGPU's
    /// `maxStorageBufferBindingSize`, 128 MiB on many adapters), so this,
    /// not the total, bounds the tile side there.
    pub fn widest_tensor_bytes_per_pixel(&self) -> f64 {
        let widest = self
            .convolutions()
            .iter()
            .map(|c| (c.input as f64 * c.input_scale).max(c.output as f64 * c.output_scale))
            .fold(0.0, f64::max);
        4.0 * widest
    }

    /// An estimate of the memory one forward pass needs per input pixel, in
    /// bytes (f32), used to pick tile sizes from a memory budget: the stored
    /// skip connections plus a working set of four concatenated-width maps
    /// at full resolution. Calibrated on the CPU backend: the default network
    /// on a 1152x864 tile peaked at 925 MB RSS in total (estimate: 0.89 GB).
    pub fn activation_bytes_per_pixel(&self) -> f64 {
        let plan = self.plan();
        let mut stored = plan.head.output as f64 * plan.stem_scale;
        let mut working: f64 = 0.0;
        for level in &plan.encoder {
            // Each level's skips (its blocks' outputs and its downsampling's)
            // are counted at the level's scale, as the calibration was made.
            let skips: usize = level.blocks.iter().map(|block| block.output).sum::<usize>() + level.resample.unwrap_or(0);
            stored += skips as f64 * level.scale;
            // Decoder blocks read a concatenation of two maps.
            let width = level.blocks.last().map_or(0, |block| block.output);
            working = working.max((2 * width) as f64 * level.scale * 4.0);
        }
        4.0 * (stored + working)
    }

    /// Number of parameters the built network has (weights, biases,
    /// normalisation scales and shifts).
    pub fn parameter_count(&self) -> usize {
        let plan = self.plan();
        let time = plan.time_channels;
        let blocks = |level: &LevelPlan| {
            level.blocks.iter().map(|block| residual_block_parameters(block.input, block.output, time)).sum::<usize>()
        };
        let resamples = |levels: &[LevelPlan]| {
            levels.iter().filter_map(|level| level.resample).map(|c| conv_parameters(c, c, 3)).sum::<usize>()
        };
        timestep_embedding_parameters(self.base_channels, time)
            + conv_parameters(plan.head.input, plan.head.output, 3)
            + plan.encoder.iter().map(blocks).sum::<usize>()
            + resamples(&plan.encoder)
            + blocks(&plan.middle)
            + plan.decoder.iter().map(blocks).sum::<usize>()
            + resamples(&plan.decoder)
            + 2 * plan.tail.input
            + conv_parameters(plan.tail.input, plan.tail.output, 3)
    }
}

/// A convolution that keeps the resolution.
fn same_scale(input: usize, output: usize, kernel: usize, scale: f64) -> Convolution {
    Convolution { input, output, kernel, input_scale: scale, output_scale: scale }
}

/// The convolutions of a level's residual blocks.
fn push_blocks(convs: &mut Vec<Convolution>, level: &LevelPlan) {
    for block in &level.blocks {
        for (input, output, kernel) in residual_block_convolutions(block.input, block.output) {
            convs.push(same_scale(input, output, kernel, level.scale));
        }
    }
}

/// Weights and biases of a `kernel x kernel` convolution.
pub(crate) fn conv_parameters(input: usize, output: usize, kernel: usize) -> usize {
    kernel * kernel * input * output + output
}
