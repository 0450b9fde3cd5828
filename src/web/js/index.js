// realdenoise: private, in-browser removal of real-world camera noise.
// The Denoiser class wraps the wasm module: it initialises it, resolves the
// backend (never a silent fallback), validates every option before anything
// reaches the module, queues calls, maps AbortSignals and progress callbacks
// onto the module's step-by-step observer, and restarts the module after it
// crashed (a trapped WebAssembly instance is never used again).
import * as firstGlue from "./realdenoise.js";
import { namedError } from "./errors.js";

export {
  InputError, WeightsError, AbortError, WebGpuUnavailableError, UnsupportedBrowserError, BackendError, InternalError,
} from "./errors.js";

const DEFAULT_WEIGHTS = new URL("./realdenoise.rdnz", import.meta.url);
const WASM_URL = new URL("./realdenoise_bg.wasm", import.meta.url);
// The limits, choices, memory budgets and the backend policy live in the
// library (src/device.rs) and reach this file through the module's
// `limits()` and `resolveBackend()`; only the names of `load`'s backends are
// here, because they are checked before the module has started.
const BACKENDS = ["auto", "webgpu", "cpu"];
/** The names every rejection of this package carries. */
const ERROR_NAMES = new Set([
  "WeightsError", "InputError", "AbortError", "BackendError", "InternalError",
  "WebGpuUnavailableError", "UnsupportedBrowserError",
]);

/** A short description of any value for error messages (never megabytes of it). */
function describe(value) {
  if (value === null) return "null";
  switch (typeof value) {
    case "string": {
      const shown = JSON.stringify(value.length > 80 ? value.slice(0, 80) : value);
      return value.length > 80 ? `the string ${shown}… (${value.length} characters)` : `the string ${shown}`;
    }
    case "number":
      return `the number ${value}`;
    case "bigint":
      return `the bigint ${value}n`;
    case "boolean":
      return `the boolean ${value}`;
    case "undefined":
      return "undefined";
    case "function":
      return "a function";
    case "symbol":
      return "a symbol";
    default: {
      if (Array.isArray(value)) return `an array of length ${value.length}`;
      let kind = "Object";
      try {
        kind = Object.prototype.toString.call(value).slice(8, -1);
      } catch {
        // a revoked Proxy
      }
      return kind === "Object" ? "an object" : `a ${kind}`;
    }
  }
}

const inputError = (message) => namedError("InputError", message);
const abortError = () => namedError("AbortError", "the denoising run was aborted");

// ---------------------------------------------------------------------------
// The WebAssembly module. wasm-bindgen's glue keeps one instance per imported
// copy of realdenoise.js; a trap (a Rust panic, an allocation failure) leaves
// that instance in an undefined state (locks held, futures that never
// settle). Every call into the module goes through `call`/`callSync`, which
// notice a trap, reject the calls in flight with an InternalError and mark
// the instance as crashed; the next `Denoiser.load` starts a fresh instance
// from a freshly imported copy of the glue.

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

class Runtime {
  constructor(glue) {
    this.glue = glue;
    /** The RuntimeError that crashed this instance, or null. */
    this.trapped = null;
    /** Rejecters of the calls in flight. */
    this.pending = new Set();
    /** WeakRefs to the Models made on this instance. */
    this.models = new Set();
    /** The library's limits and choices (src/device.rs), once started. */
    this.limits = null;
  }
}

let current = null; // { runtime, ready } of the instance in use or starting
let instances = 0; // glue copies imported after the first (cache-busting)
let freshGlueNeeded = false;
let watching = false;

function crashError(runtime) {
  return namedError(
    "InternalError",
    `the WebAssembly module crashed (${runtime.trapped}); this Denoiser cannot be used any more, load a new one`,
    runtime.trapped,
  );
}

function markTrapped(runtime, error) {
  if (runtime.trapped) return;
  runtime.trapped = error;
  if (current?.runtime === runtime) current = null;
  freshGlueNeeded = true;
  for (const reject of runtime.pending) reject(crashError(runtime));
  runtime.pending.clear();
  // Forget the models without calling into the crashed instance (freeing
  // them there, even from the glue's finalizers, could trap again).
  for (const ref of runtime.models) ref.deref()?.__destroy_into_raw?.();
  runtime.models.clear();
}

// A trap inside an async export happens in a microtask of
// wasm-bindgen-futures: it surfaces as an uncaught error event, and the
// export's promise never settles. Watch for it while calls are in flight.
function watchForTraps() {
  if (watching || typeof globalThis.addEventListener !== "function") return;
  watching = true;
  const onError = (event) => {
    const error = event.error ?? event.reason;
    const runtime = current?.runtime;
    if (error instanceof WebAssembly.RuntimeError && runtime && runtime.pending.size > 0) {
      markTrapped(runtime, error);
      event.preventDefault();
    }
  };
  globalThis.addEventListener("error", onError);
  globalThis.addEventListener("unhandledrejection", onError);
}

/** Errors from the module or the browser, as this package's named errors. */
function toNamed(error, runtime) {
  if (error instanceof WebAssembly.RuntimeError) {
    if (runtime) {
      markTrapped(runtime, error);
      return crashError(runtime);
    }
    return namedError("InternalError", `the WebAssembly module crashed (${error})`, error);
  }
  if (error instanceof Error && ERROR_NAMES.has(error.name)) return error;
  if (error instanceof Error) return namedError("InternalError", `${error.name}: ${error.message}`, error);
  return namedError("InternalError", `unexpected failure: ${describe(error)}`, error);
}

/** Runs an async call into the module; rejects with a named error, also when the module traps. */
function call(runtime, start) {
  if (runtime.trapped) return Promise.reject(crashError(runtime));
  return new Promise((resolve, reject) => {
    runtime.pending.add(reject);
    const settle = (action) => (value) => {
      if (!runtime.pending.delete(reject)) return; // already rejected by a trap
      action(value);
    };
    let result;
    try {
      result = start();
    } catch (error) {
      settle(reject)(toNamed(error, runtime));
      return;
    }
    Promise.resolve(result).then(settle(resolve), (error) => settle(reject)(toNamed(error, runtime)));
  });
}

/** Runs a synchronous call into the module; throws a named error. */
function callSync(runtime, run) {
  if (runtime.trapped) throw crashError(runtime);
  try {
    return run();
  } catch (error) {
    throw toNamed(error, runtime);
  }
}

async function importGlue() {
  if (!freshGlueNeeded && instances === 0) return firstGlue;
  // A fresh copy of the glue module is a fresh instance of its state.
  instances += 1;
  const url = new URL("./realdenoise.js", import.meta.url);
  url.searchParams.set("instance", String(instances));
  const glue = await import(/* @vite-ignore */ /* webpackIgnore: true */ url.href);
  if (typeof glue.default !== "function" || typeof glue.Model !== "function") {
    throw new Error(`${url.pathname} is not realdenoise's wasm-bindgen module (was the package bundled in an unusual way?)`);
  }
  return glue;
}

/**
 * Reads a Response's body through its stream reader, calling
 * `onBytes(loaded, total)` as bytes arrive (`total` from Content-Length, or
 * null when the header is missing or counts compressed bytes).
 */
async function readBody(response, onBytes = () => {}) {
  const length = Number(response.headers.get("Content-Length"));
  const total = length > 0 && !response.headers.get("Content-Encoding") ? length : null;
  onBytes(0, total);
  if (!response.body || typeof response.body.getReader !== "function") {
    const bytes = new Uint8Array(await response.arrayBuffer());
    onBytes(bytes.length, bytes.length);
    return bytes;
  }
  const reader = response.body.getReader();
  const chunks = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    if (loaded < (total ?? Infinity)) onBytes(loaded, total);
  }
  let bytes = chunks[0] ?? new Uint8Array(0);
  if (chunks.length > 1) {
    bytes = new Uint8Array(loaded);
    let offset = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, offset);
      offset += chunk.length;
    }
  }
  onBytes(loaded, loaded);
  return bytes;
}

/** The running module instance, started (again) when there is none; `onBytes` sees the wasm download. */
function startRuntime(onBytes) {
  if (current) return current.ready;
  if (!WebAssembly.validate(SIMD_PROBE)) {
    return Promise.reject(namedError(
      "UnsupportedBrowserError",
      "this browser does not support WebAssembly SIMD, which realdenoise needs (Chrome or Edge 91, Firefox 89, Safari 16.4 or newer)",
    ));
  }
  watchForTraps();
  const starting = {};
  starting.ready = (async () => {
    const glue = await importGlue();
    const runtime = new Runtime(glue);
    starting.runtime = runtime;
    // Fetched here, not by the glue, to report the bytes as they arrive.
    const response = await fetch(WASM_URL);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const bytes = await readBody(response, onBytes);
    await glue.default({ module_or_path: new Response(bytes, { headers: { "Content-Type": "application/wasm" } }) });
    runtime.limits = Object.freeze(glue.limits());
    freshGlueNeeded = false;
    return runtime;
  })().catch((error) => {
    // Not cached: the next load tries again (a fresh copy of the glue if
    // the module got as far as running).
    if (current === starting) current = null;
    if (error instanceof WebAssembly.RuntimeError) freshGlueNeeded = true;
    if (error instanceof Error && ERROR_NAMES.has(error.name)) throw error;
    throw namedError("InternalError", `cannot start the WebAssembly module (${WASM_URL.pathname}): ${error?.message ?? describe(error)}`, error);
  });
  current = starting;
  return starting.ready;
}

async function probeAdapter() {
  if (typeof navigator === "undefined" || !navigator.gpu) return null;
  try {
    return await navigator.gpu.requestAdapter();
  } catch {
    return null;
  }
}

/** The adapter's description: `adapter.info` (current browsers) or `requestAdapterInfo()` (older ones). */
async function adapterInfo(adapter) {
  let info = adapter.info;
  if (!info && typeof adapter.requestAdapterInfo === "function") {
    try {
      info = await adapter.requestAdapterInfo();
    } catch {
      info = null;
    }
  }
  return info ?? {};
}

/**
 * The adapter as the module's `resolveBackend` reads it: its vendor,
 * architecture, device and description joined (software renderers such as
 * SwiftShader are known by name there), and whether it is a fallback adapter.
 */
async function describeAdapter(adapter) {
  const info = await adapterInfo(adapter);
  const description = ["vendor", "architecture", "device", "description"]
    .map((key) => info[key])
    .filter((value) => typeof value === "string")
    .join(" ");
  return { description, isFallbackAdapter: adapter.isFallbackAdapter === true || info.isFallbackAdapter === true };
}

// ---------------------------------------------------------------------------
// Validation: every option is checked here, before anything reaches wasm.

function checkOptionsObject(options, what, known) {
  if (options === undefined) return {};
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw inputError(`${what} must be an object (got ${describe(options)})`);
  }
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw inputError(`unknown ${what.replace(/s$/, "")} ${JSON.stringify(key.slice(0, 80))} (known: ${known.join(", ")})`);
    }
  }
  return options;
}

function checkChoice(name, value, choices) {
  if (typeof value !== "string" || !choices.includes(value)) {
    const list = choices.map((c) => JSON.stringify(c));
    throw inputError(`${name} must be ${list.slice(0, -1).join(", ")} or ${list.at(-1)} (got ${describe(value)})`);
  }
  return value;
}

function checkInteger(name, value, min, max) {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw inputError(`${name} must be an integer from ${min} to ${max} (got ${describe(value)})`);
  }
  return value;
}

function checkCallback(name, value) {
  if (value !== undefined && typeof value !== "function") {
    throw inputError(`${name} must be a function (got ${describe(value)})`);
  }
  return value;
}

function isAbortSignal(value) {
  if (typeof AbortSignal !== "undefined") return value instanceof AbortSignal;
  return value !== null && typeof value === "object" && typeof value.aborted === "boolean";
}

const LOAD_OPTIONS = ["weights", "backend", "onProgress"];
const DENOISE_OPTIONS = ["steps", "sampler", "ensemble", "strength", "tileSize", "onProgress", "signal"];
const TILE_OPTIONS = ["steps", "sampler", "ensemble", "strength", "onProgress", "signal"];

function isWeightsSource(value) {
  return (
    value instanceof ArrayBuffer ||
    (typeof SharedArrayBuffer !== "undefined" && value instanceof SharedArrayBuffer) ||
    ArrayBuffer.isView(value) ||
    (typeof Blob !== "undefined" && value instanceof Blob) ||
    (typeof Response !== "undefined" && value instanceof Response) ||
    typeof value === "string" ||
    value instanceof URL
  );
}

/** Checks `Denoiser.load`'s options; returns them with defaults. */
function validateLoadOptions(options) {
  const { weights, backend = "auto", onProgress } = checkOptionsObject(options, "load options", LOAD_OPTIONS);
  checkChoice("backend", backend, BACKENDS);
  if (weights !== undefined && !isWeightsSource(weights)) {
    throw inputError(
      `weights must be a URL (string or URL), an ArrayBuffer, a typed array or DataView, a Blob or a Response (got ${describe(weights)})`,
    );
  }
  checkCallback("onProgress", onProgress);
  return { weights, backend, onProgress };
}

/**
 * Checks `denoise`'s options against the model's defaults and the library's
 * limits; returns the values sent to the module.
 */
function validateOptions(options, info, limits, known = DENOISE_OPTIONS) {
  const {
    steps = info.defaultSteps, sampler = info.defaultSampler, ensemble = "off", strength = 1, tileSize = 0,
    onProgress, signal,
  } = checkOptionsObject(options, "denoise options", known);
  checkInteger("steps", steps, 1, limits.maxSteps);
  checkChoice("sampler", sampler, limits.samplers);
  checkChoice("ensemble", ensemble, limits.ensembles);
  if (typeof strength !== "number" || !(strength >= 0 && strength <= 1)) {
    throw inputError(`strength must be a number from 0 to 1 (got ${describe(strength)})`);
  }
  checkInteger("tileSize", tileSize, 0, limits.maxTileSide);
  checkCallback("onProgress", onProgress);
  if (signal !== undefined && !isAbortSignal(signal)) {
    throw inputError(`signal must be an AbortSignal (got ${describe(signal)})`);
  }
  return { steps, sampler, ensemble, strength, tileSize, onProgress, signal };
}

/** The weights' bytes from any accepted source; `onBytes(loaded, total)` reports their download. */
async function readWeights(weights, onBytes = () => {}) {
  const given = await givenBytes(weights);
  if (given) {
    onBytes(given.length, given.length);
    return given;
  }
  return fetchWeights(weights, onBytes);
}

async function givenBytes(weights) {
  if (weights instanceof ArrayBuffer) return new Uint8Array(weights);
  if (typeof SharedArrayBuffer !== "undefined" && weights instanceof SharedArrayBuffer) return new Uint8Array(weights);
  if (ArrayBuffer.isView(weights)) return new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength);
  if (typeof Blob !== "undefined" && weights instanceof Blob) {
    try {
      return new Uint8Array(await weights.arrayBuffer());
    } catch (cause) {
      throw namedError("WeightsError", "cannot read the weights Blob", cause);
    }
  }
  return null;
}

async function fetchWeights(weights, onBytes) {
  let response = weights;
  const url = weights ?? DEFAULT_WEIGHTS;
  const shown = () => (typeof url === "string" ? describe(url).replace(/^the string /, "") : String(url).slice(0, 200));
  const isResponse = typeof Response !== "undefined" && weights instanceof Response;
  const key = isResponse ? null : cacheKey(url);
  if (key) {
    const cached = await readCached(key);
    if (cached) {
      onBytes(cached.length, cached.length);
      return cached;
    }
  }
  if (!isResponse) {
    try {
      response = await fetch(url);
    } catch (cause) {
      throw namedError("WeightsError", `cannot fetch weights from ${shown()}`, cause);
    }
  }
  if (!response.ok) throw namedError("WeightsError", `cannot fetch weights from ${shown()}: HTTP ${response.status}`);
  let bytes;
  try {
    bytes = await readBody(response, onBytes);
  } catch (cause) {
    throw namedError("WeightsError", `cannot read weights from ${shown()}`, cause);
  }
  if (key) await writeCached(key, bytes);
  return bytes;
}

// ---------------------------------------------------------------------------
// The weights cache (Cache API). Weights fetched from an http(s) URL are kept
// in the cache "realdenoise-weights-<package version>" under their absolute
// URL, with the SHA-256 of their bytes in a header; a later load with the
// same URL reads them from there without a request, after checking that
// hash (an entry that does not match is deleted and fetched again). A new
// package version starts a new cache and deletes the old ones. Where the
// Cache API is missing (http origins other than localhost, some private
// modes) or fails (quota), the weights come from the network as before.

/**
 * This package's version: the weights cache is per version. `make pkg`
 * writes the root Cargo.toml's version here and into package.json.
 */
export const VERSION = "0.0.0-unstamped";
const CACHE_PREFIX = "realdenoise-weights-";
const CACHE_NAME = `${CACHE_PREFIX}${VERSION}`;
const HASH_HEADER = "X-Realdenoise-Sha256";

function cacheKey(url) {
  try {
    const absolute = new URL(url, globalThis.location?.href);
    // Browsers refuse URLs of megabytes (Chromium: 2 MiB); such a key must not reach the cache.
    return /^https?:$/.test(absolute.protocol) && absolute.href.length <= 8192 ? absolute.href : null;
  } catch {
    return null;
  }
}

async function sha256(bytes) {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function openCache() {
  if (typeof caches === "undefined" || typeof crypto === "undefined" || !crypto.subtle) return null;
  return caches.open(CACHE_NAME);
}

async function readCached(key) {
  try {
    const cache = await openCache();
    const hit = await cache?.match(key);
    if (!hit || (hit.url && hit.url !== key)) return null;
    const bytes = new Uint8Array(await hit.arrayBuffer());
    if (hit.headers.get(HASH_HEADER) === (await sha256(bytes))) return bytes;
    await cache.delete(key);
  } catch {
    // no Cache API here, or it failed: the network it is
  }
  return null;
}

async function writeCached(key, bytes) {
  try {
    const cache = await openCache();
    if (!cache) return;
    const headers = { "Content-Type": "application/octet-stream", [HASH_HEADER]: await sha256(bytes) };
    await cache.put(key, new Response(bytes, { headers }));
    for (const name of await caches.keys()) {
      if (name.startsWith(CACHE_PREFIX) && name !== CACHE_NAME) await caches.delete(name);
    }
  } catch {
    // quota exceeded or no Cache API: the next load fetches again
  }
}

/** Reads RGBA pixels out of any supported image source (sides up to `maxSide`). */
function toPixels(image, maxSide) {
  if (image !== null && typeof image === "object" && "data" in image && "width" in image && "height" in image) {
    const { data, width, height } = image;
    if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray)) {
      throw inputError(`image.data must be a Uint8Array or Uint8ClampedArray of RGBA values (got ${describe(data)})`);
    }
    for (const [name, value] of [["width", width], ["height", height]]) {
      if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > maxSide) {
        throw inputError(`image.${name} must be an integer from 1 to ${maxSide} (got ${describe(value)})`);
      }
    }
    if (data.length !== width * height * 4) {
      throw inputError(`image.data has ${data.length} bytes; ${width}x${height} RGBA needs ${width * height * 4}`);
    }
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width, height };
  }
  const drawable =
    (typeof ImageBitmap !== "undefined" && image instanceof ImageBitmap) ||
    (typeof HTMLCanvasElement !== "undefined" && image instanceof HTMLCanvasElement) ||
    (typeof OffscreenCanvas !== "undefined" && image instanceof OffscreenCanvas);
  if (!drawable) {
    throw inputError(`image must be ImageData, ImageBitmap, a canvas, or { data, width, height } (got ${describe(image)})`);
  }
  const { width, height } = image;
  if (!width || !height) throw inputError(`image is empty (${width}x${height})`);
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

const constructing = Symbol("realdenoise.Denoiser");

export class Denoiser {
  #model;
  #runtime;
  #queue = Promise.resolve();
  #disposed = false;
  #released = null;

  /** Use `Denoiser.load`. */
  constructor(token, model, runtime, info, backendReason) {
    if (token !== constructing) throw new TypeError("use Denoiser.load() to make a Denoiser");
    this.#model = model;
    this.#runtime = runtime;
    /** "webgpu" | "cpu": the backend actually in use. */
    this.backend = model.backend;
    /**
     * Why that backend, as a phrase to show the user, e.g. "the only WebGPU
     * adapter is a software renderer (SwiftShader); the CPU is faster".
     */
    this.backendReason = backendReason;
    /** Model metadata from the weights header. */
    this.info = Object.freeze(info);
    /**
     * The library's limits and choices: { maxSteps, maxTileSide,
     * maxImageSide, maxWorkers, samplers, ensembles, evaluationsPerStep }.
     */
    this.limits = runtime.limits;
  }

  /**
   * @param {{ weights?: string | URL | ArrayBuffer | ArrayBufferView | Blob | Response, backend?: "auto" | "webgpu" | "cpu",
   *           onProgress?: (p: {stage: string, fraction: number}) => void }} [options]
   */
  static async load(options) {
    const { weights, backend, onProgress } = validateLoadOptions(options);
    // Errors thrown by onProgress reach the caller unchanged.
    let failedCallback = null;
    const report = (progress) => {
      try {
        onProgress?.(progress);
      } catch (error) {
        failedCallback = { error };
        throw error;
      }
    };
    try {
      report({ stage: "init", fraction: 0 });
      // Byte counts of the two downloads; an exception from onProgress
      // there is remembered (and rethrown below) without breaking the download.
      const bytesReport = (stage, from, span) => (loaded, total) => {
        if (failedCallback) return;
        try {
          report({ stage, loaded, total, fraction: from + span * (total ? Math.min(1, loaded / total) : 0) });
        } catch {
          // kept in failedCallback
        }
      };
      const runtime = await startRuntime(bytesReport("wasm", 0, 0.2));
      if (failedCallback) throw failedCallback.error;
      // The choice is the library's (src/device.rs): "auto" never takes a
      // software renderer such as SwiftShader.
      const adapter = backend === "cpu" ? null : await probeAdapter();
      const described = adapter ? await describeAdapter(adapter) : null;
      const { backend: chosen, reason } = callSync(runtime, () => runtime.glue.resolveBackend(backend, described));
      report({ stage: "backend", fraction: 0.2, backend: chosen, reason });
      const bytes = await readWeights(weights, bytesReport("weights", 0.3, 0.4));
      if (failedCallback) throw failedCallback.error;
      report({ stage: "model", fraction: 0.7 });
      const model = await call(runtime, () => runtime.glue.Model.load(bytes, chosen));
      runtime.models.add(new WeakRef(model));
      const info = callSync(runtime, () => model.info());
      const denoiser = new Denoiser(constructing, model, runtime, info, reason);
      report({ stage: "ready", fraction: 1 });
      return denoiser;
    } catch (error) {
      if (failedCallback) throw failedCallback.error;
      throw toNamed(error);
    }
  }

  /**
   * Denoises an image; resolves to ImageData of the same size (alpha untouched).
   * Calls on one Denoiser run one after another. Options are checked when
   * the call is made; bad ones reject with an InputError.
   */
  denoise(image, options) {
    if (this.#disposed) return Promise.reject(inputError("this Denoiser was disposed; load a new one"));
    let request;
    try {
      request = { ...validateOptions(options, this.info, this.limits), ...toPixels(image, this.limits.maxImageSide) };
    } catch (error) {
      return Promise.reject(toNamed(error));
    }
    const run = this.#queue.then(() => this.#run(request));
    this.#queue = run.catch(() => {});
    return run;
  }

  /**
   * The tiles a run of `width` x `height` pixels is cut into when
   * `workers` workers share it (realdenoise/worker-client's pool): the
   * single-run tiles, or smaller ones when they finish sooner. Returns
   * `{ tile, columns, rows, columnWeights, rowWeights, evaluations, options }`:
   * tile (c, r) covers columns[c] x rows[r] (half-open [start, end) pixel
   * spans) and blends with weight columnWeights[c][x - start] *
   * rowWeights[r][y - start]; evaluations = network evaluations per tile;
   * options = the checked denoise options with their defaults.
   */
  planTiles(width, height, options) {
    if (this.#disposed) throw inputError("this Denoiser was disposed; load a new one");
    const limits = this.limits;
    for (const [name, value] of [["width", width], ["height", height]]) {
      checkInteger(name, value, 1, limits.maxImageSide);
    }
    const { workers = 1, ...rest } = checkOptionsObject(options, "denoise options", [...DENOISE_OPTIONS, "workers"]);
    checkInteger("workers", workers, 1, limits.maxWorkers);
    const { steps, sampler, ensemble, strength, tileSize } = validateOptions(rest, this.info, limits);
    const runtime = this.#runtime;
    const plan = callSync(runtime, () => this.#model.plan(width, height, { tileSize, workers }));
    // Strength s starts the schedule at round(s * T): at most that many steps
    // run (the library's Schedule; strength is an f32 there).
    const evaluations = Math.min(steps, Math.round(Math.fround(strength) * this.info.timesteps)) * limits.evaluationsPerStep[ensemble];
    return { ...plan, evaluations, options: { steps, sampler, ensemble, strength } };
  }

  /**
   * Denoises one tile of a pooled run (see planTiles): all of `image`, as a
   * single tile. Resolves to `{ data, width, height }` with `data` the
   * denoised RGB as planar Float32Array values in 0..1 (3 * width * height:
   * red plane, green, blue), unquantised, to blend with the tile's weights.
   * Queued with denoise calls; progress and abort as in denoise.
   */
  denoiseTile(image, options) {
    if (this.#disposed) return Promise.reject(inputError("this Denoiser was disposed; load a new one"));
    let request;
    try {
      const { maxTileSide, maxImageSide } = this.limits;
      request = { ...validateOptions(options, this.info, this.limits, TILE_OPTIONS), ...toPixels(image, maxImageSide), tile: true };
      if (Math.max(request.width, request.height) > maxTileSide) {
        throw inputError(`a tile is at most ${maxTileSide} pixels a side (got ${request.width}x${request.height})`);
      }
    } catch (error) {
      return Promise.reject(toNamed(error));
    }
    const run = this.#queue.then(() => this.#run(request));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #run({ data, width, height, steps, sampler, ensemble, strength, tileSize, onProgress, signal, tile = false }) {
    if (this.#runtime.trapped) throw crashError(this.#runtime);
    if (signal?.aborted) throw abortError();
    let failedCallback = null;
    const progress = async (event) => {
      if (failedCallback) return false;
      try {
        onProgress?.(event);
      } catch (error) {
        failedCallback = { error };
        return false;
      }
      // Let the event loop run so abort signals and messages arrive.
      await new Promise((resolve) => setTimeout(resolve, 0));
      return !signal?.aborted;
    };
    try {
      const model = this.#model;
      if (tile) {
        const planes = await call(this.#runtime, () =>
          model.denoiseTile(data, width, height, { steps, sampler, ensemble, strength }, progress),
        );
        return { data: planes, width, height };
      }
      const output = await call(this.#runtime, () =>
        model.denoise(data, width, height, { steps, sampler, ensemble, strength, tileSize }, progress),
      );
      return toImageData(output, width, height);
    } catch (error) {
      // An exception thrown by onProgress stops the run and is what the caller gets.
      if (failedCallback) throw failedCallback.error;
      throw error;
    }
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
    const runtime = this.#runtime;
    return callSync(runtime, () => runtime.glue.webgpuMemoryUsage()) ?? null;
  }

  /**
   * Frees the model once the calls queued before it have finished, then
   * returns the device's free GPU memory pages to the browser. Resolves when
   * done; calls made after dispose() reject with an InputError.
   */
  dispose() {
    if (!this.#disposed) {
      this.#disposed = true;
      const runtime = this.#runtime;
      this.#released = this.#queue.then(() => {
        if (runtime.trapped) return; // nothing can be freed in a crashed instance
        try {
          callSync(runtime, () => {
            this.#model.free();
            if (this.backend === "webgpu") runtime.glue.webgpuMemoryCleanup();
          });
        } catch {
          // A crash while freeing has marked the instance; the memory goes with it.
        }
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
