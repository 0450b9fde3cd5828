//! The JavaScript API (wasm32 only), kept thin: it converts JS values and
//! runs the library's own pipeline. The `Denoiser` class users see is the
//! JavaScript wrapper in `src/web/js/`, which queues calls, resolves the
//! backend and turns `AbortSignal`s into the `keepGoing` callback used here.

mod errors;

use std::cell::Cell;

use burn::backend::ndarray::NdArray;
use burn::backend::wgpu::{graphics::WebGpu as WebGpuApi, init_setup_async, RuntimeOptions, Wgpu, WgpuDevice, WgpuRuntime};
use burn::cubecl::Runtime;
use image::RgbaImage;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::denoiser::{plan_tiles, Cancelled, DenoiseError, Observer, Progress};
use crate::device::{self, limits, Adapter, AdapterKind, Backend, BackendChoice, Cuda, DeviceError, Machine, Platform};
use crate::tiling::{PlanarImage, Span, Tile, TiledImage};
use crate::{DenoiseOptions, Denoiser, Ensemble, SamplerKind};
use errors::{js_error, ErrorName};

thread_local! {
    static WEBGPU_READY: Cell<bool> = const { Cell::new(false) };
}

enum Engine {
    WebGpu(Denoiser<Wgpu>),
    Cpu(Denoiser<NdArray>),
}

/// A loaded model on one backend.
#[wasm_bindgen]
pub struct Model {
    engine: Engine,
    /// The WebGPU device's largest single buffer (tiles keep the network's
    /// widest tensor within it); `None` on the CPU.
    max_buffer_bytes: Option<usize>,
}

/// A run's options as the package passes them (`src/web/js/index.js` has
/// checked their types and ranges; the names are checked here).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RunOptions {
    steps: u32,
    sampler: String,
    ensemble: String,
    strength: f32,
    /// 0 = from the memory budget.
    #[serde(default)]
    tile_size: u32,
}

/// `plan`'s options.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PlanOptions {
    #[serde(default)]
    tile_size: u32,
    workers: u32,
}

/// Serialises for JavaScript as plain objects and arrays (not `Map`s).
fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| js_error(ErrorName::Internal, &e.to_string()))
}

fn from_js<T: for<'de> Deserialize<'de>>(value: JsValue, what: &str) -> Result<T, JsValue> {
    serde_wasm_bindgen::from_value(value).map_err(|e| js_error(ErrorName::Input, &format!("{what}: {e}")))
}

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// The limits and choices every call is checked against (src/device.rs),
/// for the package's argument checks: `{ maxSteps, maxTileSide,
/// maxImageSide, maxWorkers, samplers, ensembles, evaluationsPerStep }`.
#[wasm_bindgen]
pub fn limits() -> Result<JsValue, JsValue> {
    to_js(&serde_json::json!({
        "maxSteps": limits::MAX_STEPS,
        "maxTileSide": limits::MAX_TILE_SIDE,
        "maxImageSide": limits::MAX_BROWSER_IMAGE_SIDE,
        "maxWorkers": limits::MAX_WORKERS,
        "samplers": SamplerKind::ALL.map(SamplerKind::name),
        "ensembles": Ensemble::ALL.map(Ensemble::name),
        "evaluationsPerStep": Ensemble::ALL.map(|e| (e.name(), e.evaluations())).into_iter().collect::<std::collections::BTreeMap<_, _>>(),
    }))
}

/// The browser's WebGPU adapter as the package reads it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BrowserAdapter {
    /// `adapter.info`'s vendor, architecture, device and description, joined.
    description: String,
    #[serde(default)]
    is_fallback_adapter: bool,
}

/// Which backend to load for `requested` ("auto", "webgpu" or "cpu") given
/// the page's WebGPU adapter (`null` when there is none, or
/// `{ description, isFallbackAdapter }`): `{ backend: "webgpu" | "cpu",
/// reason }`, decided by `device::resolve` as natively. `auto` never picks a
/// software renderer.
#[wasm_bindgen(js_name = resolveBackend)]
pub fn resolve_backend(requested: &str, adapter: JsValue) -> Result<JsValue, JsValue> {
    let choice: BackendChoice = requested.parse().map_err(|e: DeviceError| js_error(ErrorName::Input, &e.to_string()))?;
    let adapters = if adapter.is_null() || adapter.is_undefined() {
        Vec::new()
    } else {
        let found: BrowserAdapter = from_js(adapter, "adapter")?;
        vec![Adapter { description: found.description, kind: AdapterKind::Unknown, is_fallback: found.is_fallback_adapter }]
    };
    let machine = Machine { platform: Platform::Browser, cuda: Cuda::NotBuilt, adapters };
    let resolution = device::resolve(choice, &machine).map_err(|e| match e {
        DeviceError::NoWebGpuAdapter => js_error(ErrorName::WebGpuUnavailable, &e.to_string()),
        other => js_error(ErrorName::Input, &other.to_string()),
    })?;
    to_js(&serde_json::json!({ "backend": resolution.backend.browser_name(), "reason": resolution.reason }))
}

#[wasm_bindgen]
impl Model {
    /// Loads `.rdnz` weights on `backend` ("webgpu" or "cpu", as
    /// `resolveBackend` answered: a WebGPU adapter exists).
    pub async fn load(weights: Vec<u8>, backend: String) -> Result<Model, JsValue> {
        let engine = match backend.as_str() {
            "webgpu" => {
                let device = WgpuDevice::default();
                // The WebGPU runtime is set up once per page or worker; a
                // second setup of the same device would never resolve.
                if !WEBGPU_READY.with(Cell::get) {
                    init_setup_async::<WebGpuApi>(&device, RuntimeOptions::default()).await;
                    WEBGPU_READY.with(|ready| ready.set(true));
                }
                Engine::WebGpu(Denoiser::from_bytes(&weights, &device).map_err(|e| js_error(ErrorName::Weights, &e.to_string()))?)
            }
            "cpu" => Engine::Cpu(
                Denoiser::from_bytes(&weights, &Default::default()).map_err(|e| js_error(ErrorName::Weights, &e.to_string()))?,
            ),
            other => return Err(js_error(ErrorName::Input, &format!("unknown backend '{other}' (expected 'webgpu' or 'cpu')"))),
        };
        let max_buffer_bytes = match engine {
            Engine::WebGpu(_) => Some(device::max_buffer_bytes::<WgpuRuntime>(&WgpuDevice::default())),
            Engine::Cpu(_) => None,
        };
        Ok(Model { engine, max_buffer_bytes })
    }

    /// "webgpu" or "cpu".
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.device_backend().browser_name().into()
    }

    /// Model metadata: architecture, parameter count, timesteps, default
    /// steps and sampler, whether trained, GFLOP per megapixel per step,
    /// and the weights header's model and training records.
    pub fn info(&self) -> Result<JsValue, JsValue> {
        let header = match &self.engine {
            Engine::WebGpu(d) => d.header(),
            Engine::Cpu(d) => d.header(),
        };
        to_js(&serde_json::json!({
            "architecture": header.architecture,
            "parameters": header.parameter_count(),
            "timesteps": header.model.timesteps,
            "defaultSteps": header.training.default_steps,
            "defaultSampler": header.training.default_sampler,
            "trained": header.training.trained,
            "gflopsPerMegapixelPerStep": header.model.flops_per_pixel() * 1e-3,
            "model": header.model,
            "training": header.training,
        }))
    }

    /// Denoises RGBA pixels; returns new RGBA pixels (alpha untouched).
    /// `options`: `{ steps, sampler, ensemble, strength, tileSize }`.
    /// `progress(p)` is awaited between steps, tiles and ensemble
    /// evaluations; it resolves to `false` to cancel (the run then rejects
    /// with an `AbortError`).
    pub async fn denoise(
        &self,
        rgba: Vec<u8>,
        width: u32,
        height: u32,
        options: JsValue,
        progress: js_sys::Function,
    ) -> Result<Vec<u8>, JsValue> {
        check_pixels(&rgba, width, height)?;
        let options = self.options(&from_js(options, "denoise options")?)?;
        let image = RgbaImage::from_raw(width, height, rgba).expect("length checked above");
        let mut observer = self.observer(progress);
        let result = match &self.engine {
            Engine::WebGpu(d) => d.denoise(&image, &options, &mut observer).await,
            Engine::Cpu(d) => d.denoise(&image, &options, &mut observer).await,
        };
        result.map(RgbaImage::into_raw).map_err(denoise_error)
    }

    /// The tiles of a run shared by `options.workers` workers (the
    /// package's worker pool): `{ tile, columns: [[start, end], ...], rows,
    /// columnWeights: [[...], ...], rowWeights }`. Each tile is a column
    /// span by a row span; its blending weight at (x, y) is
    /// `columnWeights[c][x - start] * rowWeights[r][y - start]`, and every
    /// pixel's weights sum to a positive number to divide by, as in the
    /// library's own blender.
    pub fn plan(&self, width: u32, height: u32, options: JsValue) -> Result<JsValue, JsValue> {
        check_size(width, height)?;
        let PlanOptions { tile_size, workers } = from_js(options, "plan options")?;
        let options = self.tiling(tile_size);
        let config = match &self.engine {
            Engine::WebGpu(d) => d.config(),
            Engine::Cpu(d) => d.config(),
        };
        let workers = workers.clamp(1, limits::MAX_WORKERS as u32) as usize;
        let grid = plan_tiles(config, &options, width as usize, height as usize, workers).map_err(denoise_error)?;
        let spans = |spans: &[Span]| spans.iter().map(|s| [s.start, s.end]).collect::<Vec<_>>();
        to_js(&serde_json::json!({
            "tile": grid.columns.iter().chain(&grid.rows).map(|s| s.len()).max().unwrap_or(0),
            "columns": spans(&grid.columns),
            "rows": spans(&grid.rows),
            "columnWeights": grid.columns.iter().map(|&x| grid.column_weights(x)).collect::<Vec<_>>(),
            "rowWeights": grid.rows.iter().map(|&y| grid.row_weights(y)).collect::<Vec<_>>(),
        }))
    }

    /// Denoises one tile of a pooled run: all of `rgba` (a tile cut from the
    /// photo by `plan`, context margins included) as a single tile.
    /// Returns the denoised RGB as planar `[3, height, width]` f32 values in
    /// 0..1, unquantised, for the caller to blend with the tile's weights
    /// exactly as the single-worker run blends them. Options (`tileSize`
    /// aside) and progress as `denoise`.
    #[wasm_bindgen(js_name = denoiseTile)]
    pub async fn denoise_tile(
        &self,
        rgba: Vec<u8>,
        width: u32,
        height: u32,
        options: JsValue,
        progress: js_sys::Function,
    ) -> Result<Vec<f32>, JsValue> {
        check_pixels(&rgba, width, height)?;
        if width.max(height) as usize > limits::MAX_TILE_SIDE {
            return Err(js_error(
                ErrorName::Input,
                &format!("a tile is at most {} pixels a side (got {width}x{height})", limits::MAX_TILE_SIDE),
            ));
        }
        // One tile covering the whole input: image borders get full weight,
        // so the planar result is the network's clamped output itself.
        let run: RunOptions = from_js(options, "tile options")?;
        let options = self.options(&RunOptions { tile_size: limits::MAX_TILE_SIDE as u32, ..run })?;
        let (w, h) = (width as usize, height as usize);
        let rgba = RgbaImage::from_raw(width, height, rgba).expect("length checked above");
        let whole = Tile { x: Span { start: 0, end: w }, y: Span { start: 0, end: h } };
        let mut image = PlanarImage::new(w, h, rgba.read_tile(whole));
        let mut observer = self.observer(progress);
        let result = match &self.engine {
            Engine::WebGpu(d) => d.denoise_in_place(&mut image, &options, &mut observer).await,
            Engine::Cpu(d) => d.denoise_in_place(&mut image, &options, &mut observer).await,
        };
        result.map(|()| image.data).map_err(denoise_error)
    }

    /// One network evaluation `S(x_t, t)` and nothing else (no tiles, no
    /// sampler, no clamp): `x_t` is planar `[3, height, width]` f32, the
    /// result the same. For benchmarks against other runtimes on the same
    /// network (bench/onnx/) and for checking their outputs; the package's
    /// JavaScript wrapper does not expose it.
    pub async fn evaluate(&self, x_t: Vec<f32>, width: u32, height: u32, t: u32) -> Result<Vec<f32>, JsValue> {
        check_size(width, height)?;
        let (w, h) = (width as usize, height as usize);
        if x_t.len() != 3 * w * h {
            return Err(js_error(ErrorName::Input, &format!("x_t has {} values; [3, {h}, {w}] needs {}", x_t.len(), 3 * w * h)));
        }
        match &self.engine {
            Engine::WebGpu(d) => evaluate_on(d, x_t, w, h, t as usize).await,
            Engine::Cpu(d) => evaluate_on(d, x_t, w, h, t as usize).await,
        }
    }
}

async fn evaluate_on<B: burn::tensor::backend::Backend>(
    denoiser: &Denoiser<B>,
    x_t: Vec<f32>,
    width: usize,
    height: usize,
    t: usize,
) -> Result<Vec<f32>, JsValue> {
    use crate::diffusion::Predictor;
    use burn::tensor::{Tensor, TensorData};
    let timesteps = denoiser.config().timesteps;
    if t > timesteps {
        return Err(js_error(ErrorName::Input, &format!("t = {t} is above the model's T = {timesteps}")));
    }
    let input = Tensor::<B, 4>::from_data(TensorData::new(x_t, [1, 3, height, width]), denoiser.device());
    let output = denoiser
        .model()
        .predict(input, t)
        .into_data_async()
        .await
        .map_err(|error| js_error(ErrorName::Backend, &format!("{error:?}")))?;
    output.convert::<f32>().into_vec::<f32>().map_err(|error| js_error(ErrorName::Backend, &format!("{error:?}")))
}

impl Model {
    fn device_backend(&self) -> Backend {
        match self.engine {
            Engine::WebGpu(_) => Backend::Wgpu,
            Engine::Cpu(_) => Backend::Cpu,
        }
    }

    /// What decides the tiles: `tile_size` (0 = from the budget), the
    /// browser's memory budget for this backend (src/device.rs) and the
    /// device's buffer limit; the sampling options keep their defaults.
    fn tiling(&self, tile_size: u32) -> DenoiseOptions {
        DenoiseOptions {
            tile_size: (tile_size > 0).then_some(tile_size as usize),
            memory_budget: device::memory_budget(Platform::Browser, self.device_backend()),
            max_buffer_bytes: self.max_buffer_bytes,
            ..DenoiseOptions::default()
        }
    }

    /// The library's options for a run: its sampling options and [`Self::tiling`].
    fn options(&self, run: &RunOptions) -> Result<DenoiseOptions, JsValue> {
        let sampler: SamplerKind = run.sampler.parse().map_err(|e: String| js_error(ErrorName::Input, &e))?;
        let ensemble: Ensemble = run.ensemble.parse().map_err(|e: String| js_error(ErrorName::Input, &e))?;
        Ok(DenoiseOptions {
            steps: run.steps as usize,
            sampler,
            ensemble,
            strength: run.strength,
            ..self.tiling(run.tile_size)
        })
    }

    fn observer(&self, callback: js_sys::Function) -> JsObserver {
        // WebGPU queues work: wait for each evaluation so that progress is
        // work done and a cancel stops within one evaluation (see
        // Observer::wait_for_device) instead of after the whole tile.
        JsObserver { callback, wait: matches!(self.engine, Engine::WebGpu(_)) }
    }
}

fn check_size(width: u32, height: u32) -> Result<(), JsValue> {
    if width == 0 || height == 0 {
        return Err(js_error(ErrorName::Input, &format!("image is empty ({width}x{height})")));
    }
    Ok(())
}

fn check_pixels(rgba: &[u8], width: u32, height: u32) -> Result<(), JsValue> {
    check_size(width, height)?;
    let expected = width as usize * height as usize * 4;
    if rgba.len() != expected {
        return Err(js_error(
            ErrorName::Input,
            &format!("data has {} bytes; a {width}x{height} RGBA image needs {expected}", rgba.len()),
        ));
    }
    Ok(())
}

fn denoise_error(error: DenoiseError) -> JsValue {
    match error {
        DenoiseError::Cancelled => js_error(ErrorName::Abort, "the denoising run was aborted"),
        DenoiseError::Options(e) => js_error(ErrorName::Input, &e.to_string()),
        DenoiseError::Tiling(e) => js_error(ErrorName::Input, &e.to_string()),
        e @ DenoiseError::TileTooLarge { .. } => js_error(ErrorName::Input, &e.to_string()),
        DenoiseError::Backend(e) => js_error(ErrorName::Backend, &e),
    }
}

/// The WebGPU device's memory pools, `{ bytesInUse, bytesPadding,
/// bytesReserved, allocations }` (cubecl's `MemoryUsage`), or `undefined`
/// when WebGPU has not been set up in this page or worker. The pools belong
/// to the device, so every WebGPU `Model` here shares them.
#[wasm_bindgen(js_name = webgpuMemoryUsage)]
pub fn webgpu_memory_usage() -> Result<JsValue, JsValue> {
    if !WEBGPU_READY.with(Cell::get) {
        return Ok(JsValue::UNDEFINED);
    }
    let Ok(usage) = WgpuRuntime::client(&WgpuDevice::default()).memory_usage() else { return Ok(JsValue::UNDEFINED) };
    to_js(&serde_json::json!({
        "bytesInUse": usage.bytes_in_use,
        "bytesPadding": usage.bytes_padding,
        "bytesReserved": usage.bytes_reserved,
        "allocations": usage.number_allocs,
    }))
}

/// Returns the WebGPU device's free memory pages to the browser (pages still
/// holding live tensors are kept). Called after a WebGPU `Model` is freed.
#[wasm_bindgen(js_name = webgpuMemoryCleanup)]
pub fn webgpu_memory_cleanup() {
    if WEBGPU_READY.with(Cell::get) {
        WgpuRuntime::client(&WgpuDevice::default()).memory_cleanup();
    }
}

/// A progress report as JavaScript receives it.
#[derive(Serialize)]
struct ProgressEvent {
    stage: &'static str,
    step: usize,
    steps: usize,
    tile: usize,
    tiles: usize,
    evaluation: usize,
    evaluations: usize,
    fraction: f64,
}

/// Forwards progress to JavaScript and awaits its answer, which also lets
/// the browser's event loop run (abort signals, worker messages).
struct JsObserver {
    callback: js_sys::Function,
    wait: bool,
}

impl Observer for JsObserver {
    fn wait_for_device(&self) -> bool {
        self.wait
    }

    async fn progress(&mut self, progress: Progress) -> Result<(), Cancelled> {
        let event = ProgressEvent {
            stage: "denoise",
            step: progress.step,
            steps: progress.steps,
            tile: progress.tile,
            tiles: progress.tiles,
            evaluation: progress.evaluation,
            evaluations: progress.evaluations,
            fraction: progress.fraction,
        };
        let value = to_js(&event).map_err(|_| Cancelled)?;
        let answer = self.callback.call1(&JsValue::NULL, &value).map_err(|_| Cancelled)?;
        let keep_going = match answer.dyn_into::<js_sys::Promise>() {
            Ok(promise) => JsFuture::from(promise).await.map_err(|_| Cancelled)?,
            Err(value) => value,
        };
        if keep_going.as_bool() == Some(false) {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }
}
