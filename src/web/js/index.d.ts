export type Backend = "webgpu" | "cpu";
export type Sampler = "improved" | "origin";
/**
 * Geometric self-ensemble: each step's prediction averaged over flipped
 * ("flips", 4 network evaluations per step) or flipped and transposed
 * ("dihedral", 8) copies of the image. Slower, slightly cleaner.
 */
export type Ensemble = "off" | "flips" | "dihedral";

export interface Progress {
  /**
   * "wasm" and "weights": bytes of that download (`loaded` of `total`);
   * "backend": the backend is chosen (`backend` and `reason` tell which and why).
   */
  stage: "init" | "wasm" | "backend" | "weights" | "model" | "workers" | "ready" | "denoise";
  /** Only with stages "wasm" and "weights": bytes received so far; with "workers" (WorkerDenoiser's pool): workers loaded. */
  loaded?: number;
  /** Only with stages "wasm" and "weights": the download's size from Content-Length, or null when unknown (then it is given once done). */
  total?: number | null;
  /** Only with stage "backend": the backend that will be used. */
  backend?: Backend;
  /** Only with stage "backend": why (see {@link Denoiser.backendReason}). */
  reason?: string;
  /** Steps done in the tile (0 before the first): step 1 runs while `step` is 0. */
  step?: number;
  steps?: number;
  tile?: number;
  tiles?: number;
  /** WorkerDenoiser: tiles finished so far (its pool runs several at once). */
  tilesDone?: number;
  /** WorkerDenoiser: workers sharing the run. */
  workers?: number;
  /** Network evaluations done within the step, of `evaluations` (1, or 4 or 8 with an ensemble). */
  evaluation?: number;
  evaluations?: number;
  /** 0..1: of the whole load (during load) or of the whole run (during denoise). */
  fraction: number;
}

/** The library's limits and choices (src/device.rs in the Rust crate). */
export interface Limits {
  /** Largest `steps`. */
  maxSteps: number;
  /** Largest `tileSize`, and the largest tile side `denoiseTile` takes. */
  maxTileSide: number;
  /** Largest image width or height. */
  maxImageSide: number;
  /** Most workers a tile plan is made for. */
  maxWorkers: number;
  samplers: Sampler[];
  ensembles: Ensemble[];
  /** Network evaluations per step of each ensemble. */
  evaluationsPerStep: Record<Ensemble, number>;
}

export interface ModelInfo {
  architecture: string;
  parameters: number;
  timesteps: number;
  defaultSteps: number;
  defaultSampler: Sampler;
  trained: boolean;
  gflopsPerMegapixelPerStep: number;
  model: Record<string, unknown>;
  training: Record<string, unknown>;
}

/**
 * The `name` of every error the package rejects with (all are `Error`s; an
 * `InternalError` has the original error, e.g. a `WebAssembly.RuntimeError`,
 * as its `cause`). The one exception: an error thrown by your own
 * `onProgress` callback stops the call and is what it rejects with, unchanged.
 */
export type ErrorName =
  | "InputError" // an argument of the wrong type or out of range; a disposed Denoiser
  | "WeightsError" // weights that cannot be fetched, read or used
  | "AbortError" // the AbortSignal was aborted (before or during the call)
  | "WebGpuUnavailableError" // backend: "webgpu" without a WebGPU adapter
  | "UnsupportedBrowserError" // no WebAssembly SIMD
  | "BackendError" // the GPU runtime failed
  | "InternalError"; // the WebAssembly module could not start, or crashed (the next load starts a fresh one)

declare class RealdenoiseError extends Error {
  constructor(message?: string, options?: { cause?: unknown });
}
/** An argument of the wrong type or out of range; a disposed Denoiser. `name === "InputError"`. */
export declare class InputError extends RealdenoiseError { readonly name: "InputError"; }
/** Weights that cannot be fetched, read or used. */
export declare class WeightsError extends RealdenoiseError { readonly name: "WeightsError"; }
/** The AbortSignal was aborted (before or during the call). */
export declare class AbortError extends RealdenoiseError { readonly name: "AbortError"; }
/** `backend: "webgpu"` without a WebGPU adapter. */
export declare class WebGpuUnavailableError extends RealdenoiseError { readonly name: "WebGpuUnavailableError"; }
/** No WebAssembly SIMD. */
export declare class UnsupportedBrowserError extends RealdenoiseError { readonly name: "UnsupportedBrowserError"; }
/** The GPU runtime failed. */
export declare class BackendError extends RealdenoiseError { readonly name: "BackendError"; }
/** The WebAssembly module could not start, or crashed; the original error is `cause`. */
export declare class InternalError extends RealdenoiseError { readonly name: "InternalError"; }

/** This package's version (the weights cache is per version). */
export declare const VERSION: string;

export interface LoadOptions {
  /**
   * Weights: a URL, or the file's bytes (any ArrayBuffer, typed array,
   * DataView, Blob or Response); default: the package's bundled weights.
   */
  weights?: string | URL | ArrayBuffer | SharedArrayBuffer | ArrayBufferView | Blob | Response;
  /**
   * "auto" = WebGPU when a hardware adapter exists, else CPU: a software
   * renderer (an adapter with `isFallbackAdapter`, or one whose info names
   * SwiftShader, llvmpipe, lavapipe or "software") counts as no GPU, since the
   * CPU path is faster. "webgpu" uses any adapter, software ones included.
   */
  backend?: "auto" | Backend;
  onProgress?: (progress: Progress) => void;
}

export interface RgbaPixels {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
}

export type ImageInput = ImageData | ImageBitmap | HTMLCanvasElement | OffscreenCanvas | RgbaPixels;

/**
 * Every option is checked (type and range) when `denoise` is called; a bad
 * one, or an unknown option name, rejects with an `InputError` naming it.
 */
export interface DenoiseOptions {
  /** Integer 1..10000 (the model uses at most its `T`); default from the weights. */
  steps?: number;
  /** Default from the weights. */
  sampler?: Sampler;
  /** Default "off". */
  ensemble?: Ensemble;
  /** Number 0 = untouched .. 1 = full denoising; default 1. */
  strength?: number;
  /** Tile side in pixels, integer 0..2048; 0 (default) = from the memory budget. */
  tileSize?: number;
  /** Called between steps, tiles and ensemble evaluations; an exception thrown here stops the run and rejects the call with it. */
  onProgress?: (progress: Progress) => void;
  signal?: AbortSignal;
}

/** The WebGPU device's memory pools (shared by every WebGPU Denoiser in the page or worker). */
export interface MemoryUsage {
  /** Bytes held by live tensors (weights included). */
  bytesInUse: number;
  /** Alignment padding of those allocations. */
  bytesPadding: number;
  /** GPU memory reserved by the pools (>= bytesInUse). */
  bytesReserved: number;
  /** Number of live allocations. */
  allocations: number;
}

/** How a run is cut into tiles; see {@link Denoiser.planTiles}. */
export interface TilePlan {
  /** The largest tile side. */
  tile: number;
  /** Half-open [start, end) pixel spans; tile (c, r) is columns[c] x rows[r]. */
  columns: [number, number][];
  rows: [number, number][];
  /** Blending weights along each column span and row span; a tile's weight at (x, y) is their product. */
  columnWeights: number[][];
  rowWeights: number[][];
  /** Network evaluations per tile. */
  evaluations: number;
  /** The checked options, with the model's defaults. */
  options: { steps: number; sampler: Sampler; ensemble: Ensemble; strength: number };
}

export declare class Denoiser {
  private constructor();
  /**
   * Initialises the module (a failed start is retried by the next load; a
   * crashed module is replaced by a fresh instance), picks the backend and
   * loads the weights. Rejects with an `Error` named `UnsupportedBrowserError`
   * (no WebAssembly SIMD), `WebGpuUnavailableError` (`backend: "webgpu"`
   * without an adapter), `WeightsError`, `InputError` or `InternalError`.
   */
  static load(options?: LoadOptions): Promise<Denoiser>;
  readonly backend: Backend;
  /**
   * Why `backend` was chosen, a phrase to show the user: "the CPU backend was
   * requested", "WebGPU was requested" (plus a warning for a software
   * adapter), "a hardware WebGPU adapter is available", "this browser exposes
   * no WebGPU adapter", or "the only WebGPU adapter is a software renderer
   * (SwiftShader); the CPU is faster".
   */
  readonly backendReason: string;
  readonly info: Readonly<ModelInfo>;
  /** The library's limits and choices, which every call is checked against. */
  readonly limits: Readonly<Limits>;
  /**
   * Calls on one Denoiser are queued and run one after another. Rejects with
   * an `Error` named `InputError`, `AbortError`, `BackendError` or
   * `InternalError` (see {@link ErrorName}); the Denoiser keeps working after
   * any of them except an `InternalError` from a crashed module.
   */
  denoise(image: ImageInput, options?: DenoiseOptions): Promise<ImageData>;
  /**
   * Advanced (what WorkerDenoiser's pool uses): the tiles a width x height
   * run is cut into when `workers` workers share it, smaller than a single
   * run's when that finishes sooner. Throws an `InputError` for bad options.
   */
  planTiles(width: number, height: number, options?: Omit<DenoiseOptions, "onProgress" | "signal"> & { workers?: number }): TilePlan;
  /**
   * Advanced: denoises all of `image` as one tile (at most 2048 pixels a
   * side) and resolves to its unquantised planar RGB (`data`: red plane,
   * then green, then blue, values 0..1), to blend with the plan's weights.
   */
  denoiseTile(image: ImageInput, options?: Omit<DenoiseOptions, "tileSize">): Promise<{ data: Float32Array; width: number; height: number }>;
  /** WebGPU memory usage; null on the CPU backend. */
  memoryUsage(): MemoryUsage | null;
  /**
   * Frees the model once the calls queued before it have finished (they run
   * normally), then the device's free GPU pages. Calls made after dispose()
   * reject with an `InputError`.
   */
  dispose(): Promise<void>;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}
