export type Backend = "webgpu" | "cpu";
export type Sampler = "improved" | "origin";
/**
 * Geometric self-ensemble: each step's prediction averaged over flipped
 * ("flips", 4 network evaluations per step) or flipped and transposed
 * ("dihedral", 8) copies of the image. Slower, slightly cleaner.
 */
export type Ensemble = "off" | "flips" | "dihedral";

export interface Progress {
  stage: "init" | "weights" | "model" | "ready" | "denoise";
  step?: number;
  steps?: number;
  tile?: number;
  tiles?: number;
  /** Network evaluations done within the step, of `evaluations` (1, or 4 or 8 with an ensemble). */
  evaluation?: number;
  evaluations?: number;
  /** 0..1 */
  fraction: number;
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

export interface LoadOptions {
  /** Weights file; default: the package's bundled weights. */
  weights?: string | URL | ArrayBuffer | Uint8Array;
  /** "auto" = WebGPU when an adapter exists, else CPU. */
  backend?: "auto" | Backend;
  onProgress?: (progress: Progress) => void;
}

export interface RgbaPixels {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
}

export type ImageInput = ImageData | ImageBitmap | HTMLCanvasElement | OffscreenCanvas | RgbaPixels;

export interface DenoiseOptions {
  steps?: number;
  sampler?: Sampler;
  /** Default "off". */
  ensemble?: Ensemble;
  /** 0 = untouched .. 1 = full denoising. */
  strength?: number;
  /** Tile side in pixels; default from the memory budget. */
  tileSize?: number;
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

export declare class Denoiser {
  /**
   * Initialises the module, picks the backend and loads the weights. Rejects
   * with an `Error` named `UnsupportedBrowserError` (no WebAssembly SIMD),
   * `WebGpuUnavailableError` (`backend: "webgpu"` without an adapter),
   * `WeightsError` or `InputError`.
   */
  static load(options?: LoadOptions): Promise<Denoiser>;
  readonly backend: Backend;
  readonly info: Readonly<ModelInfo>;
  denoise(image: ImageInput, options?: DenoiseOptions): Promise<ImageData>;
  /** WebGPU memory usage; null on the CPU backend. */
  memoryUsage(): MemoryUsage | null;
  /** Frees the model after queued calls, then the device's free GPU pages. */
  dispose(): Promise<void>;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}
