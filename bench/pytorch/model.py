"""The realdenoise U-Net in PyTorch, layer for layer as src/model/*.rs, with
the same parameter names, so it loads the burn weights (`rdnz.py`)."""

import math

import torch
import torch.nn.functional as F
from torch import nn

EPSILON = 1e-5
TIME_SCALE = 1000.0
MAX_PERIOD = 10_000.0


class PixelGroupNorm(nn.Module):
    """Group normalisation with statistics per pixel (src/model/norm.rs)."""

    def __init__(self, channels, groups):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))
        self.groups = groups

    def forward(self, x):
        batch, channels, height, width = x.shape
        grouped = x.reshape(batch, self.groups, channels // self.groups, height, width)
        mean = grouped.mean(dim=2, keepdim=True)
        variance = (grouped - mean).square().mean(dim=2, keepdim=True)  # biased, as burn's var_mean_bias
        normalised = ((grouped - mean) / torch.sqrt(variance + EPSILON)).reshape(batch, channels, height, width)
        return normalised * self.gamma.view(1, channels, 1, 1) + self.beta.view(1, channels, 1, 1)


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


class ResidualBlock(nn.Module):
    """norm -> SiLU -> conv -> + step -> norm -> SiLU -> conv, plus identity (src/model/blocks.rs)."""

    def __init__(self, cin, cout, time_channels, groups):
        super().__init__()
        self.norm_in = PixelGroupNorm(cin, groups)
        self.conv_in = conv3x3(cin, cout)
        self.time_projection = nn.Linear(time_channels, cout)
        self.norm_out = PixelGroupNorm(cout, groups)
        self.conv_out = conv3x3(cout, cout)
        self.skip_projection = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, time):
        h = self.conv_in(F.silu(self.norm_in(x)))
        step = self.time_projection(time)[:, :, None, None]
        h = self.conv_out(F.silu(self.norm_out(h + step)))
        identity = self.skip_projection(x) if self.skip_projection is not None else x
        return h + identity


class Downsample(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = conv3x3(channels, channels, stride=2)

    def forward(self, x):
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = conv3x3(channels, channels)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class TimestepEmbedding(nn.Module):
    """Sinusoid of t on a fixed 0..1000 scale, then Linear-SiLU-Linear (src/model/embedding.rs)."""

    def __init__(self, sinusoid_channels, channels, timesteps):
        super().__init__()
        self.hidden = nn.Linear(sinusoid_channels, channels)
        self.output = nn.Linear(channels, channels)
        half = sinusoid_channels // 2
        frequencies = torch.exp(-math.log(MAX_PERIOD) * torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer("frequencies", frequencies, persistent=False)
        self.timesteps = timesteps

    def forward(self, t):
        scaled = t * (TIME_SCALE / self.timesteps)
        angles = scaled[:, None] * self.frequencies[None, :].to(t.dtype)
        sinusoid = torch.cat([angles.sin(), angles.cos()], dim=1)
        return self.output(F.silu(self.hidden(sinusoid)))


class EncoderLevel(nn.Module):
    def __init__(self, blocks, downsample):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample


class DecoderLevel(nn.Module):
    def __init__(self, blocks, upsample):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.upsample = upsample


class UNet(nn.Module):
    """S(x_t, t) -> x0_hat (src/model/unet.rs)."""

    def __init__(self, image_channels=3, base_channels=16, channel_multipliers=(1, 2, 4), blocks_per_level=2, norm_groups=2, timesteps=100):
        super().__init__()
        time_channels = 4 * base_channels
        widths = [m * base_channels for m in channel_multipliers]
        last = len(widths) - 1

        def block(cin, cout):
            return ResidualBlock(cin, cout, time_channels, norm_groups)

        channels = base_channels
        skips = [channels]
        encoder = []
        for level, width in enumerate(widths):
            blocks = []
            for _ in range(blocks_per_level):
                blocks.append(block(channels, width))
                channels = width
                skips.append(channels)
            downsample = None
            if level < last:
                skips.append(channels)
                downsample = Downsample(channels)
            encoder.append(EncoderLevel(blocks, downsample))
        middle = [block(channels, channels), block(channels, channels)]
        decoder = []
        for level in reversed(range(len(widths))):
            width = widths[level]
            blocks = []
            for _ in range(blocks_per_level + 1):
                skip = skips.pop()
                blocks.append(block(channels + skip, width))
                channels = width
            decoder.append(DecoderLevel(blocks, Upsample(channels) if level > 0 else None))

        self.time_embedding = TimestepEmbedding(base_channels, time_channels, timesteps)
        self.head = conv3x3(image_channels, base_channels)
        self.encoder = nn.ModuleList(encoder)
        self.middle = nn.ModuleList(middle)
        self.decoder = nn.ModuleList(decoder)
        self.norm_out = PixelGroupNorm(channels, norm_groups)
        self.tail = conv3x3(channels, image_channels)
        self.size_multiple = 1 << (len(widths) - 1)
        self.timesteps = timesteps

    def forward(self, x_t, t):
        batch, channels, height, width = x_t.shape
        padded = pad_to_multiple(x_t, self.size_multiple)
        time = F.silu(self.time_embedding(t))
        h = self.head(padded)
        skips = [h]
        for level in self.encoder:
            for block in level.blocks:
                h = block(h, time)
                skips.append(h)
            if level.downsample is not None:
                h = level.downsample(h)
                skips.append(h)
        for block in self.middle:
            h = block(h, time)
        for level in self.decoder:
            for block in level.blocks:
                h = block(torch.cat([h, skips.pop()], dim=1), time)
            if level.upsample is not None:
                h = level.upsample(h)
        residual = self.tail(F.silu(self.norm_out(h)))[:, :, :height, :width]
        return x_t + residual


def pad_to_multiple(x, multiple):
    """Bottom/right padding: reflection, or edge replication for tiny images (as burn's pad)."""
    height, width = x.shape[-2:]
    pad_height = (multiple - height % multiple) % multiple
    pad_width = (multiple - width % multiple) % multiple
    if pad_height:
        x = F.pad(x, (0, 0, 0, pad_height), mode="reflect" if pad_height < height else "replicate")
    if pad_width:
        x = F.pad(x, (0, pad_width, 0, 0), mode="reflect" if pad_width < width else "replicate")
    return x


def schedule(timesteps, steps, strength=1.0):
    """(t, t_prev) pairs of src/diffusion/schedule.rs."""
    start = _round(strength * timesteps)
    evaluations = min(steps, start)
    if evaluations == 0:
        return []
    points = [_round(start * (evaluations - k) / evaluations) for k in range(evaluations + 1)]
    return list(zip(points[:-1], points[1:]))


def _round(value):
    """Rust's f64::round for non-negative values (halves away from zero)."""
    return int(math.floor(value + 0.5))


def blend(x0, y, t, timesteps):
    alpha = t / timesteps
    return x0 * (1.0 - alpha) + y * alpha


def sample_improved(model, y, steps, strength=1.0):
    """The improved sampler over the whole image (one tile), clamped to 0..1 like the pipeline."""
    x = y
    for t, t_prev in schedule(model.timesteps, steps, strength):
        t_tensor = torch.full((y.shape[0],), float(t), dtype=y.dtype, device=y.device)
        x0_hat = model(x, t_tensor)
        x = x - blend(x0_hat, y, t, model.timesteps) + blend(x0_hat, y, t_prev, model.timesteps)
    return x.clamp(0.0, 1.0)
