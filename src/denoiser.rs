//! The whole pipeline: weights -> model, image -> tiles -> sampling loop ->
//! blended image. Async so the browser can await read-backs and stay
//! responsive; native callers use [`block_on`].

use burn::tensor::{backend::Backend, Tensor, TensorData};
use image::RgbaImage;

use crate::device;
use crate::diffusion::{Predictor, Sampler, SamplerKind, Schedule, ScheduleError};
use crate::ensemble::{Ensemble, PredictionMean};
use crate::model::{UNet, UNetConfig};
use crate::tiling::{tile_side_for_budget, BandBlender, Overlap, Tile, TileGrid, TiledImage, TilingError};
use crate::weights::{self, Header, WeightsError};

pub use crate::device::limits::MAX_TILE_SIDE;

/// How to denoise one image.
#[derive(Debug, Clone, PartialEq)]
pub struct DenoiseOptions {
    /// Network evaluations per tile (a strided subset of `T`).
    pub steps: usize,
    pub sampler: SamplerKind,
    /// Orientations averaged at every step (see [`crate::ensemble`]); each
    /// costs one more network evaluation per step.
    pub ensemble: Ensemble,
    /// 1 = full denoising (input taken as `x_T`); lower = lighter; 0 = none.
    pub strength: f32,
    /// Tile side in pixels; `None` derives it from `memory_budget`.
    pub tile_size: Option<usize>,
    /// Bytes of activation memory one tile may use.
    pub memory_budget: usize,
    /// The largest single buffer the device allocates, in bytes (`None`: no
    /// such limit, as on the CPU). Tiles derived from the budget shrink until
    /// the network's widest tensor fits; an explicit `tile_size` that does
    /// not fit is refused before any work starts.
    pub max_buffer_bytes: Option<usize>,
    pub overlap: Overlap,
}

impl Default for DenoiseOptions {
    fn default() -> Self {
        Self {
            steps: 4,
            sampler: SamplerKind::Improved,
            ensemble: Ensemble::Off,
            strength: 1.0,
            tile_size: None,
            memory_budget: device::memory_budget(device::Platform::Native, device::Backend::Cpu),
            max_buffer_bytes: None,
            overlap: Overlap::DEFAULT,
        }
    }
}

/// Where a run is; `fraction` goes from 0 to 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// 1-based step within the current tile (0 before the first).
    pub step: usize,
    pub steps: usize,
    /// 1-based tile index.
    pub tile: usize,
    pub tiles: usize,
    /// Network evaluations done within the current step (0 to
    /// `evaluations`): more than one per step with an [`Ensemble`].
    pub evaluation: usize,
    pub evaluations: usize,
    pub fraction: f64,
}

/// Returned by an observer to stop a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

/// Receives progress between steps and tiles and may cancel the run.
#[allow(async_fn_in_trait)]
pub trait Observer {
    async fn progress(&mut self, progress: Progress) -> Result<(), Cancelled>;

    /// Whether the pipeline waits for the device to finish each network
    /// evaluation before reporting it. GPU backends queue work and return at
    /// once, so without the wait a progress report means "queued", and a
    /// cancellation takes effect only after the whole queued tile has run on
    /// the GPU (minutes on a software renderer). With it, every report is
    /// work done and a cancel stops within one evaluation, at the cost of a
    /// one-value read-back per evaluation. The CPU backend computes eagerly
    /// and needs no wait.
    fn wait_for_device(&self) -> bool {
        false
    }
}

/// Observes nothing and never cancels.
pub struct Unobserved;

impl Observer for Unobserved {
    async fn progress(&mut self, _progress: Progress) -> Result<(), Cancelled> {
        Ok(())
    }
}

/// Adapts a synchronous callback (native progress bars, Ctrl-C flags).
pub struct Callback<F>(pub F);

impl<F: FnMut(Progress) -> Result<(), Cancelled>> Observer for Callback<F> {
    async fn progress(&mut self, progress: Progress) -> Result<(), Cancelled> {
        (self.0)(progress)
    }
}

/// Why a denoising run did not finish.
#[derive(Debug, thiserror::Error)]
pub enum DenoiseError {
    #[error(transparent)]
    Options(#[from] ScheduleError),
    #[error(transparent)]
    Tiling(#[from] TilingError),
    #[error(
        "a {tile}-pixel tile needs a {needed_mib:.0} MiB buffer, but this device allocates at most \
         {limit_mib:.0} MiB at once: use tiles of at most {largest} pixels"
    )]
    TileTooLarge { tile: usize, needed_mib: f64, limit_mib: f64, largest: usize },
    #[error("cancelled")]
    Cancelled,
    #[error("the backend failed: {0}")]
    Backend(String),
}

impl From<Cancelled> for DenoiseError {
    fn from(_: Cancelled) -> Self {
        DenoiseError::Cancelled
    }
}

/// A loaded model with its metadata, ready to denoise images.
pub struct Denoiser<B: Backend> {
    model: UNet<B>,
    header: Header,
    device: B::Device,
}

impl<B: Backend> Denoiser<B> {
    /// Loads a weights file (see [`crate::weights`]) onto `device`.
    pub fn from_bytes(bytes: &[u8], device: &B::Device) -> Result<Self, WeightsError> {
        let (model, header) = weights::from_bytes::<B>(bytes, device)?;
        Ok(Self { model, header, device: device.clone() })
    }

    pub fn new(model: UNet<B>, header: Header, device: B::Device) -> Self {
        Self { model, header, device }
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn config(&self) -> &UNetConfig {
        &self.header.model
    }

    pub fn model(&self) -> &UNet<B> {
        &self.model
    }

    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// Options with the weights' recommended steps and sampler.
    pub fn default_options(&self) -> DenoiseOptions {
        DenoiseOptions {
            steps: self.header.training.default_steps,
            sampler: self.header.training.default_sampler,
            ..DenoiseOptions::default()
        }
    }

    /// The tile side `options` lead to for this model.
    pub fn tile_size(&self, options: &DenoiseOptions) -> usize {
        resolve_tile_size(self.config(), options)
    }

    /// Denoises the RGB channels of `image`; alpha is copied untouched.
    pub async fn denoise(
        &self,
        image: &RgbaImage,
        options: &DenoiseOptions,
        observer: &mut impl Observer,
    ) -> Result<RgbaImage, DenoiseError> {
        let mut output = image.clone();
        denoise_in_place(&self.model, self.config(), &self.device, &mut output, options, observer).await?;
        Ok(output)
    }
}

impl<B: Backend> Denoiser<B> {
    /// Denoises any [`TiledImage`] in place (for example a float
    /// [`crate::tiling::PlanarImage`] when the result must not be quantised).
    pub async fn denoise_in_place(
        &self,
        image: &mut impl TiledImage,
        options: &DenoiseOptions,
        observer: &mut impl Observer,
    ) -> Result<(), DenoiseError> {
        denoise_in_place(&self.model, self.config(), &self.device, image, options, observer).await
    }
}

/// The tile side for `options`: the explicit one, or the largest that fits
/// the memory budget and, on devices that limit single buffers, keeps the
/// network's widest tensor within that limit.
pub fn resolve_tile_size(config: &UNetConfig, options: &DenoiseOptions) -> usize {
    options.tile_size.unwrap_or_else(|| {
        let from_budget = tile_side_for_budget(
            options.memory_budget as f64,
            config.activation_bytes_per_pixel(),
            options.overlap,
            config.size_multiple(),
            MAX_TILE_SIDE,
        );
        from_budget.min(largest_tile_for_buffer(config, options).unwrap_or(usize::MAX))
    })
}

/// Tiles never shrink below this side to feed more workers: the overlap
/// (112 pixels per seam by default) would cost more than the parallelism gains.
pub const MIN_POOLED_TILE_SIDE: usize = 256;

/// The tile grid for a run shared among `workers` parallel workers (the
/// browser's worker pool): the grid [`denoise_in_place`] would use, or one of
/// smaller tiles when that finishes sooner. Each worker runs whole tiles, so
/// the run takes about `ceil(tiles / workers)` times the largest tile's
/// area; a 512 x 512 photo on two workers becomes four 312-pixel tiles
/// (0.74x the single tile's time). An explicit `tile_size` is kept as given.
pub fn plan_tiles(
    config: &UNetConfig,
    options: &DenoiseOptions,
    width: usize,
    height: usize,
    workers: usize,
) -> Result<TileGrid, DenoiseError> {
    let largest = resolve_tile_size(config, options);
    check_buffer_limit(config, options, largest, width, height)?;
    let align = config.size_multiple().max(1);
    let mut best = TileGrid::new(width, height, largest, options.overlap, align)?;
    if workers <= 1 || options.tile_size.is_some() {
        return Ok(best);
    }
    let cost = |grid: &TileGrid| {
        let widest = grid.columns.iter().map(|span| span.len()).max().unwrap_or(0);
        let tallest = grid.rows.iter().map(|span| span.len()).max().unwrap_or(0);
        grid.len().div_ceil(workers) * widest * tallest
    };
    let floor = MIN_POOLED_TILE_SIDE.max(2 * options.overlap.total() + align);
    let mut side = largest;
    while side >= floor + align {
        side -= align;
        let grid = TileGrid::new(width, height, side, options.overlap, align)?;
        if cost(&grid) < cost(&best) {
            best = grid;
        }
    }
    Ok(best)
}

/// The largest tile side whose widest tensor fits the device's buffer limit.
fn largest_tile_for_buffer(config: &UNetConfig, options: &DenoiseOptions) -> Option<usize> {
    options.max_buffer_bytes.map(|limit| {
        tile_side_for_budget(
            limit as f64,
            config.widest_tensor_bytes_per_pixel(),
            options.overlap,
            config.size_multiple(),
            MAX_TILE_SIDE,
        )
    })
}

/// Refuses a tile whose widest tensor the device cannot allocate, which
/// would otherwise fail deep inside the GPU runtime, possibly after hours.
fn check_buffer_limit(
    config: &UNetConfig,
    options: &DenoiseOptions,
    tile: usize,
    width: usize,
    height: usize,
) -> Result<(), DenoiseError> {
    let Some(limit) = options.max_buffer_bytes else { return Ok(()) };
    // The largest tile the grid cuts, padded as the network pads it.
    let multiple = config.size_multiple();
    let padded = |side: usize| side.min(tile).div_ceil(multiple) * multiple;
    let needed = (padded(width) * padded(height)) as f64 * config.widest_tensor_bytes_per_pixel();
    if needed <= limit as f64 {
        return Ok(());
    }
    const MIB: f64 = (1 << 20) as f64;
    Err(DenoiseError::TileTooLarge {
        tile,
        needed_mib: needed / MIB,
        limit_mib: limit as f64 / MIB,
        largest: largest_tile_for_buffer(config, options).unwrap_or(tile),
    })
}

/// Denoises `image` tile by tile with any predictor, writing the result back
/// into it. Rows are overwritten only once no later tile reads them. On
/// cancellation or error, part of the image may already be denoised.
pub async fn denoise_in_place<B: Backend>(
    predictor: &dyn Predictor<B>,
    config: &UNetConfig,
    device: &B::Device,
    image: &mut impl TiledImage,
    options: &DenoiseOptions,
    observer: &mut impl Observer,
) -> Result<(), DenoiseError> {
    let schedule = Schedule::new(config.timesteps, options.steps, options.strength)?;
    let (width, height) = (image.width(), image.height());
    let tile_size = resolve_tile_size(config, options);
    check_buffer_limit(config, options, tile_size, width, height)?;
    let grid = TileGrid::new(width, height, tile_size, options.overlap, config.size_multiple())?;
    let evaluations = options.ensemble.evaluations();
    let tiles = grid.len();
    if schedule.is_empty() {
        // Strength 0: the input is already x_0.
        let done = Progress { step: 0, steps: 0, tile: tiles, tiles, evaluation: 0, evaluations, fraction: 1.0 };
        observer.progress(done).await?;
        return Ok(());
    }
    let sampler = options.sampler.sampler::<B>();
    let mut blender = BandBlender::new(width);
    let mut tile_index = 0;

    for (row_index, &row) in grid.rows.iter().enumerate() {
        for &column in &grid.columns {
            let tile = Tile { x: column, y: row };
            let place = TilePlace { index: tile_index, count: tiles };
            observer.progress(place.at(&schedule, evaluations, 0, 0)).await?;
            let planes = image.read_tile(tile);
            let shape = [1, 3, tile.y.len(), tile.x.len()];
            let y = Tensor::<B, 4>::from_data(TensorData::new(planes, shape), device);
            let x = run_schedule(predictor, sampler.as_ref(), options.ensemble, &schedule, y, place, observer).await?;
            let output = x
                .clamp(0.0, 1.0)
                .into_data_async()
                .await
                .map_err(|error| DenoiseError::Backend(format!("{error:?}")))?;
            // Backends running in f16, bf16 or f64 hand back their own element
            // type; convert on the host (a no-op for f32).
            let planes: Vec<f32> = output
                .convert::<f32>()
                .into_vec::<f32>()
                .map_err(|error| DenoiseError::Backend(format!("{error:?}")))?;
            blender.add(tile, &planes, &grid.weights(tile));
            tile_index += 1;
        }
        let finished_until = grid.rows.get(row_index + 1).map_or(height, |next| next.start);
        blender.flush(image, finished_until);
    }
    Ok(())
}

/// Which tile of how many a run of [`run_schedule`] is, for its progress.
#[derive(Debug, Clone, Copy)]
struct TilePlace {
    /// 0-based.
    index: usize,
    count: usize,
}

impl TilePlace {
    /// Progress after `evaluation` of the `evaluations` network evaluations
    /// of 1-based `step` (0 before the first) of this tile.
    fn at(self, schedule: &Schedule, evaluations: usize, step: usize, evaluation: usize) -> Progress {
        let steps = schedule.len();
        let done = self.index * steps * evaluations + step.saturating_sub(1) * evaluations + evaluation;
        Progress {
            step,
            steps,
            tile: self.index + 1,
            tiles: self.count,
            evaluation,
            evaluations,
            fraction: done as f64 / (steps * self.count * evaluations) as f64,
        }
    }
}

/// The sampling loop, the only one: images run it on every tile
/// ([`denoise_in_place`]), training's validation and the tests on whole
/// batches ([`sample`]). Starts at `x = y` and walks `schedule`; every step
/// averages the predictor's estimates over the orientations of `ensemble`
/// (one evaluation each, reported to `observer` in between, so a long step
/// can be watched and cancelled) and hands the mean to `sampler`. Returns
/// `y` itself when the schedule is empty (strength 0).
async fn run_schedule<B: Backend>(
    predictor: &dyn Predictor<B>,
    sampler: &dyn Sampler<B>,
    ensemble: Ensemble,
    schedule: &Schedule,
    y: Tensor<B, 4>,
    place: TilePlace,
    observer: &mut impl Observer,
) -> Result<Tensor<B, 4>, DenoiseError> {
    let orientations = ensemble.orientations();
    let evaluations = orientations.len();
    let wait = observer.wait_for_device();
    let mut x = y.clone();
    for (index, (t, t_prev)) in schedule.transitions().enumerate() {
        let step = index + 1;
        let mut x0_hat = PredictionMean::default();
        for (done, &orientation) in orientations.iter().enumerate() {
            let prediction = orientation.predict(predictor, x.clone(), t);
            // Between evaluations, so a long ensemble step can be watched
            // and cancelled; the step's end is reported below.
            let between = done + 1 < evaluations;
            if between && wait {
                wait_until_computed(&prediction).await?;
            }
            x0_hat.add(prediction);
            if between {
                observer.progress(place.at(schedule, evaluations, step, done + 1)).await?;
            }
        }
        let x0_hat = x0_hat.mean().expect("an ensemble has at least one orientation");
        x = sampler.step(x0_hat, x, &y, t, t_prev, schedule.timesteps()).0;
        if wait {
            wait_until_computed(&x).await?;
        }
        observer.progress(place.at(schedule, evaluations, step, evaluations)).await?;
    }
    Ok(x)
}

/// Runs a whole schedule on one image batch `y` (`[batch, 3, h, w]`, any
/// size the predictor takes), without tiles, ensemble, progress or
/// cancellation: [`run_schedule`], the loop every image's tiles go through.
/// Returns `y` itself when the schedule is empty (strength 0).
#[cfg(not(target_arch = "wasm32"))]
pub fn sample<B: Backend>(
    predictor: &dyn Predictor<B>,
    sampler: &dyn Sampler<B>,
    schedule: &Schedule,
    y: Tensor<B, 4>,
) -> Tensor<B, 4> {
    let whole = TilePlace { index: 0, count: 1 };
    let mut unobserved = Unobserved;
    let run = run_schedule(predictor, sampler, Ensemble::Off, schedule, y, whole, &mut unobserved);
    // The loop fails only when its observer cancels or asks it to wait for
    // the device (a read-back that can fail); `Unobserved` does neither.
    block_on(run).expect("an unobserved run neither cancels nor reads back")
}

/// Waits until the device has computed `tensor` (and, queues being in
/// order, everything submitted before it) by reading back one value.
async fn wait_until_computed<B: Backend>(tensor: &Tensor<B, 4>) -> Result<(), DenoiseError> {
    tensor
        .clone()
        .slice([0..1, 0..1, 0..1, 0..1])
        .into_data_async()
        .await
        .map(|_| ())
        .map_err(|error| DenoiseError::Backend(format!("{error:?}")))
}

/// Drives a future to completion on the current thread (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    futures_lite::future::block_on(future)
}
