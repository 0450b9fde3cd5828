//! Hyper-parameters of the U-Net. They travel inside the weights file, so a
//! model can always be rebuilt exactly as it was trained.

use burn::config::Config;

/// Architecture of the denoising U-Net `S(x_t, t) -> x0_hat`.
#[derive(Config, Debug, PartialEq)]
pub struct UNetConfig {
    /// Colour channels in and out (RGB).
    #[config(default = 3)]
    pub image_channels: usize,
    /// Feature channels at full resolution.
    #[config(default = 16)]
    pub base_channels: usize,
    /// Channel multiplier per resolution level; one entry per level, the
    /// resolution halves between consecutive levels.
    #[config(default = "vec![1, 2, 4]")]
    pub channel_multipliers: Vec<usize>,
    /// Residual blocks per level in the encoder (the decoder has one more).
    #[config(default = 2)]
    pub blocks_per_level: usize,
    /// Channel groups of the per-pixel group normalisation.
    #[config(default = 2)]
    pub norm_groups: usize,
    /// `T`: number of diffusion steps the network was trained with.
    #[config(default = 100)]
    pub timesteps: usize,
    /// Space-to-depth factor of the stem: 1 runs the U-Net at the image's
    /// resolution; 2 folds each 2x2 block of pixels into 12 channels first
    /// (pixel unshuffle, as FFDNet does) and unfolds the output at the end,
    /// so the whole network runs at half resolution: a quarter of the
    /// pixels, twice the receptive field, room for wider layers at the same
    /// cost. `None` is 1: weights files from before this field lack it (an
    /// `Option` because burn's `Config` gives missing fields no default).
    pub pixel_unshuffle: Option<usize>,
}

/// Why a configuration cannot describe a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{field} must be at least 1")]
    Zero { field: &'static str },
    #[error("channel_multipliers is empty: the U-Net needs at least one level")]
    NoLevels,
    #[error("{channels} channels cannot be split into {groups} normalisation groups")]
    Groups { channels: usize, groups: usize },
    #[error("{levels} levels would need padding to a multiple of 2^{downsamplings}, which is too large")]
    TooDeep { levels: usize, downsamplings: usize },
    #[error("{field} is {value}, above this build's limit of {max}")]
    TooLarge { field: &'static str, value: usize, max: usize },
    #[error("image_channels is {0}; the network reads and writes RGB, so it must be 3")]
    NotRgb(usize),
    #[error("base_channels is {0}; the sinusoidal step embedding needs an even number")]
    OddBaseChannels(usize),
    #[error("pixel_unshuffle is {0}; it must be 1 (none) or 2")]
    PixelUnshuffle(usize),
}

/// Limits on every size a configuration sets. Weights files carry their
/// configuration, so these bound what a damaged or hostile file can make the
/// reader build; they are far above any network this project trains
/// (the shipped one: 16 base channels, 64 at the widest level, T = 100).
pub mod limits {
    /// Most feature channels at full resolution.
    pub const BASE_CHANNELS: usize = 512;
    /// Most feature channels at any level (`multiplier * base_channels`).
    pub const LEVEL_CHANNELS: usize = 2048;
    /// Most resolution levels (8 halvings: inputs are padded to 256 pixels).
    pub const LEVELS: usize = 9;
    /// Most residual blocks per encoder level.
    pub const BLOCKS_PER_LEVEL: usize = 16;
    /// Largest `T` (the paper's is a few hundred or fewer; every step is a
    /// network evaluation, so it also bounds the longest run a file can ask for).
    pub const TIMESTEPS: usize = 1_000;
}

impl UNetConfig {
    /// Channel width of every level.
    pub fn level_channels(&self) -> Vec<usize> {
        self.channel_multipliers
            .iter()
            .map(|m| m * self.base_channels)
            .collect()
    }

    /// Width of the timestep embedding fed to every residual block.
    pub fn time_embedding_channels(&self) -> usize {
        4 * self.base_channels
    }

    /// Number of 2x downsamplings.
    pub fn downsamplings(&self) -> usize {
        self.channel_multipliers.len().saturating_sub(1)
    }

    /// The stem's space-to-depth factor: 1 (none) or 2.
    pub fn unshuffle_factor(&self) -> usize {
        self.pixel_unshuffle.unwrap_or(1)
    }

    /// Inputs are padded to a multiple of this many pixels on each side.
    pub fn size_multiple(&self) -> usize {
        self.unshuffle_factor() << self.downsamplings()
    }

    /// Channels the head reads and the tail writes: the image's channels
    /// times the pixels the stem folds into one.
    pub fn stem_channels(&self) -> usize {
        self.image_channels * self.unshuffle_factor() * self.unshuffle_factor()
    }

    /// Checks that the configuration describes a buildable network whose
    /// sizes stay within [`limits`]. Runs before anything derived from the
    /// sizes is computed, so no arithmetic below can overflow.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, value) in [
            ("image_channels", self.image_channels),
            ("base_channels", self.base_channels),
            ("blocks_per_level", self.blocks_per_level),
            ("norm_groups", self.norm_groups),
            ("timesteps", self.timesteps),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero { field });
            }
        }
        if self.image_channels != 3 {
            return Err(ConfigError::NotRgb(self.image_channels));
        }
        if !matches!(self.unshuffle_factor(), 1 | 2) {
            return Err(ConfigError::PixelUnshuffle(self.unshuffle_factor()));
        }
        if self.channel_multipliers.is_empty() {
            return Err(ConfigError::NoLevels);
        }
        if self.channel_multipliers.contains(&0) {
            return Err(ConfigError::Zero {
                field: "channel_multipliers",
            });
        }
        if self.channel_multipliers.len() > limits::LEVELS {
            return Err(ConfigError::TooDeep {
                levels: self.channel_multipliers.len(),
                downsamplings: self.downsamplings(),
            });
        }
        for (field, value, max) in [
            ("base_channels", self.base_channels, limits::BASE_CHANNELS),
            ("blocks_per_level", self.blocks_per_level, limits::BLOCKS_PER_LEVEL),
            ("timesteps", self.timesteps, limits::TIMESTEPS),
        ] {
            if value > max {
                return Err(ConfigError::TooLarge { field, value, max });
            }
        }
        if self.base_channels % 2 != 0 {
            return Err(ConfigError::OddBaseChannels(self.base_channels));
        }
        for &multiplier in &self.channel_multipliers {
            let channels = multiplier.saturating_mul(self.base_channels);
            if channels > limits::LEVEL_CHANNELS {
                return Err(ConfigError::TooLarge {
                    field: "channel_multipliers x base_channels",
                    value: channels,
                    max: limits::LEVEL_CHANNELS,
                });
            }
        }
        // The head's output (base_channels) is normalised too, in the first block.
        for channels in std::iter::once(self.base_channels).chain(self.level_channels()) {
            if channels % self.norm_groups != 0 {
                return Err(ConfigError::Groups {
                    channels,
                    groups: self.norm_groups,
                });
            }
        }
        Ok(())
    }
}
