// realdenoise/worker-client: the Denoiser API, run in a module worker so the
// page never freezes. It speaks the protocol of realdenoise/worker (see
// worker.js) and turns its replies back into promises, progress callbacks
// and the package's error classes.
//
//   const client = await WorkerDenoiser.load({ backend: "auto", onProgress });
//   const clean = await client.denoise(imageData, { steps: 4, onProgress, signal });
//   await client.dispose();
import { namedError } from "./errors.js";

const inputError = (message) => namedError("InputError", message);

/** Starts the package's own worker.js as a module worker. */
function defaultWorker() {
  return new Worker(new URL("./worker.js", import.meta.url), { type: "module", name: "realdenoise" });
}

/** Weights in a form that can be posted to the worker (URLs made absolute against the page). */
async function postableWeights(weights) {
  if (weights === undefined) return undefined;
  if (typeof weights === "string" || weights instanceof URL) {
    try {
      return new URL(weights, globalThis.location?.href).href;
    } catch {
      return String(weights); // the worker's Denoiser names the problem
    }
  }
  if (typeof Response !== "undefined" && weights instanceof Response) {
    if (!weights.ok) return weights.url || String(weights.status);
    return new Uint8Array(await weights.arrayBuffer());
  }
  return weights;
}

/** RGBA pixels to post (a copy, whose buffer is transferred), or an ImageBitmap (cloned). */
function postableImage(image) {
  if (typeof ImageBitmap !== "undefined" && image instanceof ImageBitmap) return { image, transfer: [] };
  const isCanvas =
    (typeof HTMLCanvasElement !== "undefined" && image instanceof HTMLCanvasElement) ||
    (typeof OffscreenCanvas !== "undefined" && image instanceof OffscreenCanvas);
  if (isCanvas) {
    if (!image.width || !image.height) throw inputError(`image is empty (${image.width}x${image.height})`);
    image = image.getContext("2d").getImageData(0, 0, image.width, image.height);
  }
  if (image === null || typeof image !== "object" || !(image.data instanceof Uint8Array || image.data instanceof Uint8ClampedArray)) {
    throw inputError("image must be ImageData, ImageBitmap, a canvas, or { data, width, height } with RGBA bytes");
  }
  const data = new Uint8ClampedArray(image.data); // the caller's pixels stay theirs
  return { image: { data, width: image.width, height: image.height }, transfer: [data.buffer] };
}

function toImageData({ data, width, height }) {
  return typeof ImageData !== "undefined" ? new ImageData(data, width, height) : { data, width, height, colorSpace: "srgb" };
}

export class WorkerDenoiser {
  #worker;
  #nextId = 1;
  #pending = new Map(); // id -> { resolve, reject, onProgress }
  #closed = null; // the error every call gets after terminate()/dispose()/a dead worker

  /** Use `WorkerDenoiser.load`. */
  constructor(worker) {
    this.#worker = worker;
    /** "webgpu" | "cpu", set by load. */
    this.backend = null;
    /** Why that backend (the Denoiser's backendReason). */
    this.backendReason = null;
    /** Model metadata from the weights header. */
    this.info = null;
    worker.addEventListener("message", ({ data }) => this.#receive(data));
    worker.addEventListener("error", (event) => {
      event.preventDefault?.();
      this.#fail(namedError("InternalError", `the realdenoise worker failed: ${event.message || "it could not start"}`));
    });
    worker.addEventListener("messageerror", () => {
      this.#fail(namedError("InternalError", "a message from the realdenoise worker could not be read"));
    });
  }

  /**
   * Starts a worker (the package's worker.js, or `options.worker`) and loads
   * the model in it. Rejects with the package's errors (`InputError`,
   * `WeightsError`, `WebGpuUnavailableError`, ...); the worker is then terminated.
   */
  static async load(options = {}) {
    if (options === null || typeof options !== "object") throw inputError("load options must be an object");
    for (const key of Object.keys(options)) {
      if (!["weights", "backend", "onProgress", "worker"].includes(key)) {
        throw inputError(`unknown load option ${JSON.stringify(key.slice(0, 80))} (known: weights, backend, onProgress, worker)`);
      }
    }
    const { worker: given, onProgress, ...rest } = options;
    if (onProgress !== undefined && typeof onProgress !== "function") throw inputError("onProgress must be a function");
    const client = new WorkerDenoiser(given ?? defaultWorker());
    try {
      const message = { type: "load", ...rest };
      if ("weights" in rest) message.weights = await postableWeights(rest.weights);
      const loaded = await client.#request(message, [], onProgress);
      client.backend = loaded.backend;
      client.backendReason = loaded.reason;
      client.info = Object.freeze(loaded.info);
      return client;
    } catch (error) {
      client.terminate();
      throw error;
    }
  }

  /**
   * Denoises an image in the worker; resolves to ImageData of the same size.
   * `signal` aborts it (the worker gets a `cancel` message and the call
   * rejects with an AbortError); every other option is checked by the worker.
   */
  denoise(image, options = {}) {
    if (options === null || typeof options !== "object") return Promise.reject(inputError("denoise options must be an object"));
    const { onProgress, signal, ...rest } = options;
    if (onProgress !== undefined && typeof onProgress !== "function") return Promise.reject(inputError("onProgress must be a function"));
    if (signal !== undefined && !(signal instanceof AbortSignal)) return Promise.reject(inputError("signal must be an AbortSignal"));
    if (signal?.aborted) return Promise.reject(namedError("AbortError", "the denoising run was aborted"));
    let posted;
    try {
      posted = postableImage(image);
    } catch (error) {
      return Promise.reject(error);
    }
    const id = this.#nextId;
    const onAbort = () => this.#post({ id: this.#nextId++, type: "cancel", target: id });
    signal?.addEventListener("abort", onAbort, { once: true });
    return this.#request({ type: "denoise", image: posted.image, options: rest }, posted.transfer, onProgress)
      .then(toImageData)
      .finally(() => signal?.removeEventListener("abort", onAbort));
  }

  /** The worker's WebGPU memory pools (see Denoiser.memoryUsage); null on the CPU. */
  async memoryUsage() {
    return (await this.#request({ type: "memory" })).usage;
  }

  /** Frees the model once queued calls have finished, then ends the worker. */
  async dispose() {
    if (this.#closed) return;
    try {
      await this.#request({ type: "dispose" });
    } finally {
      this.terminate();
    }
  }

  /**
   * Ends the worker at once (even inside a long step): calls still running
   * or queued reject with an AbortError, later ones with an InputError.
   */
  terminate() {
    if (this.#closed) return;
    this.#worker.terminate();
    this.#fail(namedError("AbortError", "the realdenoise worker was terminated"));
  }

  #fail(error) {
    this.#closed ??= inputError("this WorkerDenoiser's worker has ended; load a new one");
    for (const { reject } of this.#pending.values()) reject(error);
    this.#pending.clear();
  }

  #post(message, transfer = []) {
    if (!this.#closed) this.#worker.postMessage(message, transfer);
  }

  #request(message, transfer = [], onProgress) {
    if (this.#closed) return Promise.reject(this.#closed);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, onProgress });
      this.#post({ ...message, id }, transfer);
    });
  }

  #receive(message) {
    const entry = this.#pending.get(message?.id);
    if (!entry) return;
    if (message.type === "progress") {
      try {
        entry.onProgress?.(message.progress);
      } catch (error) {
        // As with Denoiser: an exception from onProgress stops the run and is what the call rejects with.
        this.#pending.delete(message.id);
        this.#post({ id: this.#nextId++, type: "cancel", target: message.id });
        entry.reject(error);
      }
      return;
    }
    this.#pending.delete(message.id);
    if (message.type === "error") entry.reject(namedError(message.name, message.message));
    else if (message.type === "result") entry.resolve(message.image);
    else entry.resolve(message);
  }
}

export {
  InputError, WeightsError, AbortError, WebGpuUnavailableError, UnsupportedBrowserError, BackendError, InternalError,
} from "./errors.js";
