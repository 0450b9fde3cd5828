// realdenoise/worker-client: the Denoiser API run in a module worker, and the
// types of the realdenoise/worker message protocol.
import type {
  Backend, DenoiseOptions, ImageInput, LoadOptions, MemoryUsage, ModelInfo, Progress, ErrorName,
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
  | { id: number; type: "cancel"; target: number }
  | { id: number; type: "memory" }
  | { id: number; type: "dispose" };

/** Messages realdenoise/worker posts back (discriminated by `type`). */
export type WorkerReply =
  | { id: number; type: "progress"; progress: Progress }
  | { id: number; type: "loaded"; backend: Backend; reason: string; info: ModelInfo }
  | { id: number; type: "result"; image: WorkerImage }
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
}

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
  /**
   * Denoises a copy of the image in the worker (your pixels stay yours).
   * `signal` posts a `cancel`; the call then rejects with an `AbortError`.
   */
  denoise(image: ImageInput, options?: DenoiseOptions): Promise<ImageData>;
  memoryUsage(): Promise<MemoryUsage | null>;
  /** Frees the model once queued calls have finished, then ends the worker. */
  dispose(): Promise<void>;
  /** Ends the worker at once: pending calls reject with an `AbortError`, later ones with an `InputError`. */
  terminate(): void;
}
