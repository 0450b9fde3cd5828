// realdenoise/worker-client: the Denoiser API run in a module worker, and the
// types of the realdenoise/worker message protocol.
import type {
  Backend, DenoiseOptions, ImageInput, Limits, LoadOptions, MemoryUsage, ModelInfo, Progress, ErrorName, TilePlan,
} from "./index.js";

export {
  InputError, WeightsError, AbortError, WebGpuUnavailableError, UnsupportedBrowserError, BackendError, InternalError,
} from "./index.js";

/** RGBA pixels as they cross the worker boundary. */
export interface WorkerImage {
  data: Uint8ClampedArray;
  width: number;
  height: number;
}

/** Messages the page posts to realdenoise/worker. `id` is chosen by the page; replies carry it. */
export type WorkerRequest =
  | { id: number; type: "load"; weights?: string | ArrayBuffer | ArrayBufferView | Blob; backend?: "auto" | Backend }
  | { id: number; type: "denoise"; image: ImageBitmap | { data: Uint8Array | Uint8ClampedArray; width: number; height: number }; options?: Omit<DenoiseOptions, "onProgress" | "signal"> }
  | { id: number; type: "tile"; image: { data: Uint8Array | Uint8ClampedArray; width: number; height: number }; options?: Omit<DenoiseOptions, "onProgress" | "signal" | "tileSize"> }
  | { id: number; type: "plan"; width: number; height: number; options?: Omit<DenoiseOptions, "onProgress" | "signal"> & { workers?: number } }
  | { id: number; type: "cancel"; target: number }
  | { id: number; type: "memory" }
  | { id: number; type: "dispose" };

/** Messages realdenoise/worker posts back (discriminated by `type`). */
export type WorkerReply =
  | { id: number; type: "progress"; progress: Progress }
  | { id: number; type: "loaded"; backend: Backend; reason: string; info: ModelInfo; limits: Limits }
  | { id: number; type: "result"; image: WorkerImage }
  | { id: number; type: "tile"; data: Float32Array; width: number; height: number }
  | { id: number; type: "plan"; plan: TilePlan }
  | { id: number | undefined; type: "error"; name: ErrorName | string; message: string }
  | { id: number; type: "memory"; usage: MemoryUsage | null }
  | { id: number; type: "disposed" };

export interface WorkerLoadOptions extends LoadOptions {
  /**
   * The worker to use; default: `new Worker(new URL("./worker.js", import.meta.url), { type: "module" })`,
   * the package's own worker.js. Pass your own when your bundler needs a worker file of yours
   * (one line: `import "realdenoise/worker";`).
   */
  worker?: Worker;
  /**
   * CPU workers sharing each photo's tiles: "auto" (default) = one per
   * logical core (`navigator.hardwareConcurrency`), at most 8, and at most
   * as many as half of `navigator.deviceMemory` holds at 384 MiB each; or a
   * number from 1 to 64. WebGPU and a given `worker` use one.
   */
  workers?: "auto" | number;
}

/** What {@link WorkerDenoiser.estimate} resolves to. */
export interface Estimate {
  /** Seconds the run should take on this device. */
  seconds: number;
  /** Tiles the photo is cut into. */
  tiles: number;
  /** Workers that would share them. */
  workers: number;
  /** Network evaluations per tile (steps x ensemble views; fewer steps at strength below 1). */
  evaluations: number;
  /** Seconds one worker takes per megapixel per evaluation here. */
  speed: number;
  /** "run": the speed was measured by a finished run (or set); "calibration": by timing one small tile just now (128 px on the CPU, 64 px on WebGPU, each after an untimed warm-up run). */
  basis: "run" | "calibration";
}

/** How many CPU workers `workers: "auto"` starts in this browser. */
export declare function autoWorkers(): number;

export declare class WorkerDenoiser {
  private constructor();
  /**
   * Starts the worker and loads the model in it (weights given as a URL are
   * resolved against the page). Rejects with the package's error classes;
   * the worker is then terminated.
   */
  static load(options?: WorkerLoadOptions): Promise<WorkerDenoiser>;
  readonly backend: Backend;
  readonly backendReason: string;
  readonly info: Readonly<ModelInfo>;
  /** The library's limits and choices (see Denoiser.limits). */
  readonly limits: Readonly<Limits>;
  /** Workers sharing the CPU work (1 on WebGPU). */
  readonly workers: number;
  /**
   * Seconds one worker takes per megapixel per network evaluation on this
   * device: measured by every finished run, or by estimate()'s calibration;
   * null until then. Set it (e.g. from localStorage) to skip the calibration.
   */
  speed: number | null;
  /**
   * Denoises a copy of the image in the worker(s) (your pixels stay yours);
   * on the CPU the tiles are shared by the pool and progress comes per tile
   * step, with `tilesDone` and `workers`. `signal` posts a `cancel` and the
   * call rejects with an `AbortError` at once; the workers stop at their next
   * check between network evaluations (see {@link whenIdle}).
   */
  denoise(image: ImageInput, options?: DenoiseOptions): Promise<ImageData>;
  /**
   * How long `denoise` of a width x height photo with these options should
   * take here, before running it: the tile plan shared among the workers at
   * this device's measured speed (the first time: one small tile is timed).
   */
  estimate(width: number, height: number, options?: Omit<DenoiseOptions, "onProgress" | "signal">): Promise<Estimate>;
  /** Resolves once every worker has answered every call made so far (after an abort: once they have stopped). */
  whenIdle(): Promise<void>;
  memoryUsage(): Promise<MemoryUsage | null>;
  /** Frees the models once queued calls have finished, then ends the workers. */
  dispose(): Promise<void>;
  /** Ends the worker at once: pending calls reject with an `AbortError`, later ones with an `InputError`. */
  terminate(): void;
}
