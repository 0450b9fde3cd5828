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
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::denoiser::{plan_tiles, Cancelled, DenoiseError, Observer, Progress, MAX_TILE_SIDE};
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

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

#[wasm_bindgen]
impl Model {
    /// Loads `.rdnz` weights on `backend` ("webgpu" or "cpu"; the caller has
    /// already checked that a WebGPU adapter exists).
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
            Engine::WebGpu(_) => {
                Some(WgpuRuntime::client(&WgpuDevice::default()).properties().memory.max_page_size as usize)
            }
            Engine::Cpu(_) => None,
        };
        Ok(Model { engine, max_buffer_bytes })
    }

    /// "webgpu" or "cpu".
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        match self.engine {
            Engine::WebGpu(_) => "webgpu".into(),
            Engine::Cpu(_) => "cpu".into(),
        }
    }

    /// Model metadata as JSON: config, training metadata, parameter count,
    /// GFLOP per megapixel per step.
    #[wasm_bindgen(js_name = infoJson)]
    pub fn info_json(&self) -> String {
        let header = match &self.engine {
            Engine::WebGpu(d) => d.header(),
            Engine::Cpu(d) => d.header(),
        };
        serde_json::json!({
            "architecture": header.architecture,
            "parameters": header.parameter_count(),
            "timesteps": header.model.timesteps,
            "defaultSteps": header.training.default_steps,
            "defaultSampler": header.training.default_sampler,
            "trained": header.training.trained,
            "gflopsPerMegapixelPerStep": header.model.flops_per_pixel() * 1e-3,
            "model": header.model,
            "training": header.training,
        })
        .to_string()
    }

    /// The tile side the given options lead to (0 = from the budget).
    #[wasm_bindgen(js_name = tileSize)]
    pub fn tile_size(&self, tile_size: u32, memory_budget: f64) -> u32 {
        let options = DenoiseOptions {
            tile_size: (tile_size > 0).then_some(tile_size as usize),
            memory_budget: memory_budget as usize,
            max_buffer_bytes: self.max_buffer_bytes,
            ..DenoiseOptions::default()
        };
        (match &self.engine {
            Engine::WebGpu(d) => d.tile_size(&options),
            Engine::Cpu(d) => d.tile_size(&options),
        }) as u32
    }

    /// Denoises RGBA pixels; returns new RGBA pixels (alpha untouched).
    /// `progress(p)` is awaited between steps, tiles and ensemble evaluations; it resolves to
    /// `false` to cancel (the run then rejects with an `AbortError`).
    #[allow(clippy::too_many_arguments)]
    pub async fn denoise(
        &self,
        rgba: Vec<u8>,
        width: u32,
        height: u32,
        steps: u32,
        sampler: String,
        ensemble: String,
        strength: f32,
        tile_size: u32,
        memory_budget: f64,
        progress: js_sys::Function,
    ) -> Result<Vec<u8>, JsValue> {
        check_pixels(&rgba, width, height)?;
        let options = self.options(steps, &sampler, &ensemble, strength, tile_size, memory_budget)?;
        let image = RgbaImage::from_raw(width, height, rgba).expect("length checked above");
        let mut observer = self.observer(progress);
        let result = match &self.engine {
            Engine::WebGpu(d) => d.denoise(&image, &options, &mut observer).await,
            Engine::Cpu(d) => d.denoise(&image, &options, &mut observer).await,
        };
        result.map(RgbaImage::into_raw).map_err(denoise_error)
    }

    /// The tiles of a run shared by `workers` workers (the package's worker
    /// pool), as JSON `{"tile", "columns": [[start, end], ...], "rows": [...],
    /// "columnWeights": [[...], ...], "rowWeights": [[...], ...]}`: each tile
    /// is a column span by a row span; its blending weight at (x, y) is
    /// `columnWeights[c][x - start] * rowWeights[r][y - start]`, and every
    /// pixel's weights sum to a positive number to divide by, as in the
    /// library's own blender.
    #[wasm_bindgen(js_name = planJson)]
    pub fn plan_json(&self, width: u32, height: u32, tile_size: u32, memory_budget: f64, workers: u32) -> Result<String, JsValue> {
        check_size(width, height)?;
        let options = self.options(1, "improved", "off", 1.0, tile_size, memory_budget)?;
        let config = match &self.engine {
            Engine::WebGpu(d) => d.config(),
            Engine::Cpu(d) => d.config(),
        };
        let grid = plan_tiles(config, &options, width as usize, height as usize, workers.max(1) as usize)
            .map_err(denoise_error)?;
        let spans = |spans: &[Span]| spans.iter().map(|s| [s.start, s.end]).collect::<Vec<_>>();
        Ok(serde_json::json!({
            "tile": grid.columns.iter().chain(&grid.rows).map(|s| s.len()).max().unwrap_or(0),
            "columns": spans(&grid.columns),
            "rows": spans(&grid.rows),
            "columnWeights": grid.columns.iter().map(|&x| grid.column_weights(x)).collect::<Vec<_>>(),
            "rowWeights": grid.rows.iter().map(|&y| grid.row_weights(y)).collect::<Vec<_>>(),
        })
        .to_string())
    }

    /// Denoises one tile of a pooled run: all of `rgba` (a tile cut from the
    /// photo by `planJson`, context margins included) as a single tile.
    /// Returns the denoised RGB as planar `[3, height, width]` f32 values in
    /// 0..1, unquantised, for the caller to blend with the tile's weights
    /// exactly as the single-worker run blends them. Progress as `denoise`.
    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(js_name = denoiseTile)]
    pub async fn denoise_tile(
        &self,
        rgba: Vec<u8>,
        width: u32,
        height: u32,
        steps: u32,
        sampler: String,
        ensemble: String,
        strength: f32,
        progress: js_sys::Function,
    ) -> Result<Vec<f32>, JsValue> {
        check_pixels(&rgba, width, height)?;
        if width.max(height) as usize > MAX_TILE_SIDE {
            return Err(js_error(
                ErrorName::Input,
                &format!("a tile is at most {MAX_TILE_SIDE} pixels a side (got {width}x{height})"),
            ));
        }
        // One tile covering the whole input: image borders get full weight,
        // so the planar result is the network's clamped output itself.
        let options = self.options(steps, &sampler, &ensemble, strength, MAX_TILE_SIDE as u32, 0.0)?;
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
}

impl Model {
    fn options(
        &self,
        steps: u32,
        sampler: &str,
        ensemble: &str,
        strength: f32,
        tile_size: u32,
        memory_budget: f64,
    ) -> Result<DenoiseOptions, JsValue> {
        let sampler: SamplerKind = sampler.parse().map_err(|e: String| js_error(ErrorName::Input, &e))?;
        let ensemble: Ensemble = ensemble.parse().map_err(|e: String| js_error(ErrorName::Input, &e))?;
        Ok(DenoiseOptions {
            steps: steps as usize,
            sampler,
            ensemble,
            strength,
            tile_size: (tile_size > 0).then_some(tile_size as usize),
            memory_budget: memory_budget as usize,
            max_buffer_bytes: self.max_buffer_bytes,
            ..DenoiseOptions::default()
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

/// The WebGPU device's memory pools as JSON `{"bytesInUse", "bytesPadding",
/// "bytesReserved", "allocations"}` (cubecl's `MemoryUsage`), or `undefined`
/// when WebGPU has not been set up in this page or worker. The pools belong
/// to the device, so every WebGPU `Model` here shares them.
#[wasm_bindgen(js_name = webgpuMemoryUsage)]
pub fn webgpu_memory_usage() -> Option<String> {
    if !WEBGPU_READY.with(Cell::get) {
        return None;
    }
    let usage = WgpuRuntime::client(&WgpuDevice::default()).memory_usage().ok()?;
    Some(
        serde_json::json!({
            "bytesInUse": usage.bytes_in_use,
            "bytesPadding": usage.bytes_padding,
            "bytesReserved": usage.bytes_reserved,
            "allocations": usage.number_allocs,
        })
        .to_string(),
    )
}

/// Returns the WebGPU device's free memory pages to the browser (pages still
/// holding live tensors are kept). Called after a WebGPU `Model` is freed.
#[wasm_bindgen(js_name = webgpuMemoryCleanup)]
pub fn webgpu_memory_cleanup() {
    if WEBGPU_READY.with(Cell::get) {
        WgpuRuntime::client(&WgpuDevice::default()).memory_cleanup();
    }
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
        let event = serde_json::json!({
            "stage": "denoise",
            "step": progress.step,
            "steps": progress.steps,
            "tile": progress.tile,
            "tiles": progress.tiles,
            "evaluation": progress.evaluation,
            "evaluations": progress.evaluations,
            "fraction": progress.fraction,
        });
        let value = js_sys::JSON::parse(&event.to_string()).map_err(|_| Cancelled)?;
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
