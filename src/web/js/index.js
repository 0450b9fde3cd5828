// realdenoise: private, in-browser removal of real-world camera noise.
// The Denoiser class wraps the wasm module: it initialises it, resolves the
// backend (never a silent fallback), queues calls, and maps AbortSignals and
// progress callbacks onto the module's step-by-step observer.
import init, { Model, webgpuMemoryUsage, webgpuMemoryCleanup } from "./realdenoise.js";

const DEFAULT_WEIGHTS = new URL("./realdenoise.rdnz", import.meta.url);
// Activation memory one tile may use; on WebGPU the model also shrinks tiles
// until their widest tensor fits the adapter's buffer limit.
const CPU_BUDGET = 256 * 1024 * 1024;
const GPU_BUDGET = 512 * 1024 * 1024;

function namedError(name, message, cause) {
  const error = new Error(message, cause ? { cause } : undefined);
  error.name = name;
  return error;
}

// The module is built with WebAssembly SIMD (128-bit vectors), which the CPU
// path needs for its speed. A browser without it would fail to compile the
// module with an opaque CompileError, so ask first with the smallest module
// that uses a vector instruction: (func (result v128) i32.const 0 i8x16.splat i8x16.popcnt).
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type section: () -> v128
  0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
  0x0a, 0x0a, 0x01, 0x08, 0x00, 0x41, 0x00, 0xfd, 0x0f, 0xfd, 0x62, 0x0b, // code
]);

let ready = null;
function initialise() {
  if (ready) return ready; // probed and started once per page or worker
  if (!WebAssembly.validate(SIMD_PROBE)) {
    throw namedError(
      "UnsupportedBrowserError",
      "this browser does not support WebAssembly SIMD, which realdenoise needs (Chrome or Edge 91, Firefox 89, Safari 16.4 or newer)",
    );
  }
  ready = init({ module_or_path: new URL("./realdenoise_bg.wasm", import.meta.url) });
  return ready;
}

async function probeAdapter() {
  if (typeof navigator === "undefined" || !navigator.gpu) return null;
  try {
    return await navigator.gpu.requestAdapter();
  } catch {
    return null;
  }
}

async function readWeights(weights) {
  if (weights instanceof Uint8Array) return weights;
  if (weights instanceof ArrayBuffer) return new Uint8Array(weights);
  const url = weights ?? DEFAULT_WEIGHTS;
  let response;
  try {
    response = await fetch(url);
  } catch (cause) {
    throw namedError("WeightsError", `cannot fetch weights from ${url}`, cause);
  }
  if (!response.ok) throw namedError("WeightsError", `cannot fetch weights from ${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** Reads RGBA pixels out of any supported image source. */
function toPixels(image) {
  if (image && typeof image === "object" && "data" in image && "width" in image && "height" in image) {
    const { data, width, height } = image;
    if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray)) {
      throw namedError("InputError", "image.data must be a Uint8Array or Uint8ClampedArray of RGBA values");
    }
    if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
      throw namedError("InputError", `image size must be positive integers (got ${width}x${height})`);
    }
    if (data.length !== width * height * 4) {
      throw namedError("InputError", `image.data has ${data.length} bytes; ${width}x${height} RGBA needs ${width * height * 4}`);
    }
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width, height };
  }
  const drawable =
    (typeof ImageBitmap !== "undefined" && image instanceof ImageBitmap) ||
    (typeof HTMLCanvasElement !== "undefined" && image instanceof HTMLCanvasElement) ||
    (typeof OffscreenCanvas !== "undefined" && image instanceof OffscreenCanvas);
  if (!drawable) {
    throw namedError("InputError", "image must be ImageData, ImageBitmap, a canvas, or { data, width, height }");
  }
  const { width, height } = image;
  if (!width || !height) throw namedError("InputError", `image is empty (${width}x${height})`);
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const pixels = context.getImageData(0, 0, width, height);
  return { data: new Uint8Array(pixels.data.buffer), width, height };
}

function toImageData(bytes, width, height) {
  const clamped = new Uint8ClampedArray(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return typeof ImageData !== "undefined" ? new ImageData(clamped, width, height) : { data: clamped, width, height, colorSpace: "srgb" };
}

export class Denoiser {
  #model;
  #queue = Promise.resolve();
  #budget;
  #disposed = false;
  #released = null;

  constructor(model, budget) {
    this.#model = model;
    this.#budget = budget;
    /** "webgpu" | "cpu": the backend actually in use. */
    this.backend = model.backend;
    /** Model metadata from the weights header. */
    this.info = Object.freeze(JSON.parse(model.infoJson()));
  }

  /**
   * @param {{ weights?: string | URL | ArrayBuffer | Uint8Array, backend?: "auto" | "webgpu" | "cpu",
   *           onProgress?: (p: {stage: string, fraction: number}) => void }} [options]
   */
  static async load({ weights, backend = "auto", onProgress } = {}) {
    if (!["auto", "webgpu", "cpu"].includes(backend)) {
      throw namedError("InputError", `backend must be "auto", "webgpu" or "cpu" (got ${JSON.stringify(backend)})`);
    }
    onProgress?.({ stage: "init", fraction: 0 });
    await initialise();
    let adapter = null;
    if (backend !== "cpu") {
      adapter = await probeAdapter();
      if (!adapter && backend === "webgpu") {
        throw namedError("WebGpuUnavailableError", "WebGPU was requested but this browser exposes no WebGPU adapter");
      }
    }
    const chosen = adapter ? "webgpu" : "cpu";
    onProgress?.({ stage: "weights", fraction: 0.3 });
    const bytes = await readWeights(weights);
    onProgress?.({ stage: "model", fraction: 0.7 });
    const model = await Model.load(bytes, chosen);
    // The model itself also keeps each tile's widest tensor within the
    // device's buffer limit (maxStorageBufferBindingSize).
    const budget = adapter ? GPU_BUDGET : CPU_BUDGET;
    onProgress?.({ stage: "ready", fraction: 1 });
    return new Denoiser(model, budget);
  }

  /**
   * Denoises an image; resolves to ImageData of the same size (alpha untouched).
   * Calls on one Denoiser run one after another.
   */
  denoise(image, { steps, sampler, ensemble = "off", strength = 1, tileSize = 0, onProgress, signal } = {}) {
    const run = this.#queue.then(() => this.#run(image, { steps, sampler, ensemble, strength, tileSize, onProgress, signal }));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #run(image, { steps, sampler, ensemble, strength, tileSize, onProgress, signal }) {
    if (this.#disposed) throw namedError("InputError", "this Denoiser was disposed");
    if (signal?.aborted) throw namedError("AbortError", "the denoising run was aborted");
    const { data, width, height } = toPixels(image);
    const chosenSteps = steps ?? this.info.defaultSteps;
    const chosenSampler = sampler ?? this.info.defaultSampler;
    if (!Number.isInteger(chosenSteps) || chosenSteps < 1) {
      throw namedError("InputError", `steps must be a positive integer (got ${chosenSteps})`);
    }
    const progress = async (event) => {
      onProgress?.(event);
      // Let the event loop run so abort signals and messages arrive.
      await new Promise((resolve) => setTimeout(resolve, 0));
      return !signal?.aborted;
    };
    const output = await this.#model.denoise(
      data, width, height, chosenSteps, chosenSampler, ensemble, strength, tileSize, this.#budget, progress,
    );
    return toImageData(output, width, height);
  }

  /**
   * Memory of the WebGPU device's pools, or null on the CPU backend:
   * `{ bytesInUse, bytesPadding, bytesReserved, allocations }`. The pools
   * belong to the device, which every WebGPU Denoiser in this page (or
   * worker) shares, so the numbers cover all of them; they stay readable
   * after dispose().
   */
  memoryUsage() {
    if (this.backend !== "webgpu") return null;
    const json = webgpuMemoryUsage();
    return json === undefined ? null : JSON.parse(json);
  }

  /**
   * Frees the model once queued calls have finished, then returns the
   * device's free GPU memory pages to the browser. Resolves when done.
   */
  dispose() {
    if (!this.#disposed) {
      this.#disposed = true;
      this.#released = this.#queue.then(() => {
        this.#model.free();
        if (this.backend === "webgpu") webgpuMemoryCleanup();
      });
    }
    return this.#released;
  }

  [Symbol.dispose]() {
    this.dispose();
  }

  [Symbol.asyncDispose]() {
    return this.dispose();
  }
}
