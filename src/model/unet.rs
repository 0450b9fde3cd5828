//! The denoising U-Net `S(x_t, t) -> x0_hat`.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::silu;
use burn::tensor::ops::PadMode;
use burn::tensor::{backend::Backend, Tensor};

use super::blocks::{conv3x3, Downsample, ResidualBlock, Upsample};
use super::config::{ConfigError, UNetConfig};
use super::embedding::TimestepEmbedding;
use super::norm::PixelGroupNorm;
use super::plan::{BlockPlan, LevelPlan};

#[derive(Module, Debug)]
struct EncoderLevel<B: Backend> {
    blocks: Vec<ResidualBlock<B>>,
    downsample: Option<Downsample<B>>,
}

#[derive(Module, Debug)]
struct DecoderLevel<B: Backend> {
    blocks: Vec<ResidualBlock<B>>,
    upsample: Option<Upsample<B>>,
}

/// Convolutional U-Net that predicts the clean image from an intermediate
/// image `x_t` and its diffusion step `t`. Works on any height and width.
#[derive(Module, Debug)]
pub struct UNet<B: Backend> {
    time_embedding: TimestepEmbedding<B>,
    head: Conv2d<B>,
    encoder: Vec<EncoderLevel<B>>,
    middle: Vec<ResidualBlock<B>>,
    decoder: Vec<DecoderLevel<B>>,
    norm_out: PixelGroupNorm<B>,
    tail: Conv2d<B>,
    size_multiple: usize,
    timesteps: usize,
    pixel_unshuffle: usize,
}

impl UNetConfig {
    /// Builds a randomly initialised network, layer by layer from
    /// [`UNetConfig::plan`], the description the cost model counts too.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<UNet<B>, ConfigError> {
        self.validate()?;
        let plan = self.plan();
        let groups = self.norm_groups;
        let blocks = |level: &LevelPlan| -> Vec<ResidualBlock<B>> {
            let block = |b: &BlockPlan| ResidualBlock::new(b.input, b.output, plan.time_channels, groups, device);
            level.blocks.iter().map(block).collect()
        };
        // An encoder level ends in a downsampling, a decoder level in an upsampling.
        let down = |level: &LevelPlan| level.resample.map(|channels| Downsample::new(channels, device));
        let up = |level: &LevelPlan| level.resample.map(|channels| Upsample::new(channels, device));
        let encoder = plan.encoder.iter().map(|level| EncoderLevel { blocks: blocks(level), downsample: down(level) }).collect();
        let decoder = plan.decoder.iter().map(|level| DecoderLevel { blocks: blocks(level), upsample: up(level) }).collect();

        Ok(UNet {
            time_embedding: TimestepEmbedding::new(self.base_channels, plan.time_channels, self.timesteps, device),
            head: conv3x3(plan.head.input, plan.head.output, 1, device),
            encoder,
            middle: blocks(&plan.middle),
            decoder,
            norm_out: PixelGroupNorm::new(plan.tail.input, groups, device),
            tail: conv3x3(plan.tail.input, plan.tail.output, 1, device),
            size_multiple: self.size_multiple(),
            timesteps: self.timesteps,
            pixel_unshuffle: self.unshuffle_factor(),
        })
    }
}

impl<B: Backend> UNet<B> {
    /// `T`, the number of diffusion steps the network was built for.
    pub fn timesteps(&self) -> usize {
        self.timesteps
    }

    /// `x_t`: `[batch, 3, height, width]` in 0..1; `t`: `[batch]` steps in 0..=T.
    /// Returns the predicted clean image, same shape as `x_t`.
    pub fn forward(&self, x_t: Tensor<B, 4>, t: Tensor<B, 1>) -> Tensor<B, 4> {
        let [batch, channels, height, width] = x_t.dims();
        let padded = pad_to_multiple(x_t.clone(), self.size_multiple);
        let time = silu(self.time_embedding.forward(t));

        let mut h = self.head.forward(pixel_unshuffle(padded, self.pixel_unshuffle));
        let mut skips = vec![h.clone()];
        for level in &self.encoder {
            for block in &level.blocks {
                h = block.forward(h, time.clone());
                skips.push(h.clone());
            }
            if let Some(downsample) = &level.downsample {
                h = downsample.forward(h);
                skips.push(h.clone());
            }
        }
        for block in &self.middle {
            h = block.forward(h, time.clone());
        }
        for level in &self.decoder {
            for block in &level.blocks {
                let skip = skips.pop().expect("one skip per decoder block by construction");
                h = block.forward(Tensor::cat(vec![h, skip], 1), time.clone());
            }
            if let Some(upsample) = &level.upsample {
                h = upsample.forward(h);
            }
        }
        let residual = self.tail.forward(silu(self.norm_out.forward(h)));
        let residual = pixel_shuffle(residual, self.pixel_unshuffle);
        let residual = residual.slice([0..batch, 0..channels, 0..height, 0..width]);
        // The network learns the correction to its input; the output is still
        // the clean-image estimate x0_hat, as the method requires.
        x_t.add(residual)
    }
}

/// Pads bottom and right up to a multiple of `multiple`: reflection where the
/// image is large enough, edge replication for images smaller than the pad.
fn pad_to_multiple<B: Backend>(x: Tensor<B, 4>, multiple: usize) -> Tensor<B, 4> {
    let [_, _, height, width] = x.dims();
    let pad_height = (multiple - height % multiple) % multiple;
    let pad_width = (multiple - width % multiple) % multiple;
    let mode = |pad: usize, size: usize| if pad < size { PadMode::Reflect } else { PadMode::Edge };
    let x = if pad_height > 0 {
        x.pad([(0, pad_height), (0, 0)], mode(pad_height, height))
    } else {
        x
    };
    if pad_width > 0 {
        x.pad([(0, 0), (0, pad_width)], mode(pad_width, width))
    } else {
        x
    }
}

/// Space-to-depth: `[n, c, h, w]` -> `[n, c * f * f, h / f, w / f]`, each
/// `f x f` block of pixels becoming `f * f` channels (channel `c * f * f +
/// dy * f + dx` holds pixel `(dx, dy)` of the block), as PyTorch's
/// `pixel_unshuffle`. `h` and `w` must be multiples of `f`; `f = 1` is the
/// identity.
pub fn pixel_unshuffle<B: Backend>(x: Tensor<B, 4>, f: usize) -> Tensor<B, 4> {
    if f == 1 {
        return x;
    }
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h / f, f, w / f, f]).permute([0, 1, 3, 5, 2, 4]).reshape([n, c * f * f, h / f, w / f])
}

/// Depth-to-space, the inverse of [`pixel_unshuffle`]:
/// `[n, c * f * f, h, w]` -> `[n, c, h * f, w * f]`.
pub fn pixel_shuffle<B: Backend>(x: Tensor<B, 4>, f: usize) -> Tensor<B, 4> {
    if f == 1 {
        return x;
    }
    let [n, cff, h, w] = x.dims();
    let c = cff / (f * f);
    x.reshape([n, c, f, f, h, w]).permute([0, 1, 4, 2, 5, 3]).reshape([n, c, h * f, w * f])
}
