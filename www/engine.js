// The page's side of the realdenoise worker: the package's public
// `realdenoise/worker-client` (WorkerDenoiser) does the protocol; this adds
// the demo's policies. Cancel aborts the run's AbortSignal (the worker gets
// `cancel`); if a long step does not yield within HARD_CANCEL_MS the worker
// is terminated and a new one loaded, so Cancel answers within about a second.
import { WorkerDenoiser } from "./vendor/realdenoise/worker-client.js";

const WEIGHTS_URL = new URL("./vendor/realdenoise/realdenoise.rdnz", import.meta.url);
// Replacing the worker costs a model reload from the Cache API (about 0.2 s on
// the CPU path here), so a second is long enough to wait for a step boundary.
const HARD_CANCEL_MS = 1000;

export class Engine {
  #client = null;
  #nextRun = 1;
  #runs = new Map(); // id -> { controller, timer }
  #backendChoice = "auto";
  loaded = null; // Promise<{ backend, reason, info, fellBack }>
  restarted = null; // the reload after a hard cancel, while it is pending

  /**
   * Starts a worker and loads the model; resolves to { backend, reason, info, fellBack }
   * (reason: the package's `backendReason`, why that backend).
   */
  load(backend = this.#backendChoice, onProgress) {
    this.#backendChoice = backend;
    this.#client?.terminate();
    this.#client = null;
    this.loaded = WorkerDenoiser.load({ backend, weights: WEIGHTS_URL.href, onProgress }).then(
      (client) => {
        this.#client = client;
        return { backend: client.backend, reason: client.backendReason, info: client.info, fellBack: null };
      },
      async (error) => {
        // A WebGPU adapter that cannot run the model: say so and use the CPU.
        if (backend !== "cpu") {
          const fallback = await this.load("cpu", onProgress);
          return { ...fallback, fellBack: error };
        }
        throw error;
      },
    );
    return this.loaded;
  }

  /**
   * Denoises RGBA pixels in the worker.
   * Returns { id, result: Promise<ImageData> }.
   */
  denoise(image, options, onProgress) {
    const id = this.#nextRun++;
    const controller = new AbortController();
    const run = { controller, timer: null };
    this.#runs.set(id, run);
    const result = this.#client.denoise(image, { ...options, onProgress, signal: controller.signal });
    result.finally(() => {
      clearTimeout(run.timer);
      this.#runs.delete(id);
    }).catch(() => {});
    return { id, result };
  }

  cancel(id) {
    const run = this.#runs.get(id);
    if (!run || run.controller.signal.aborted) return;
    run.controller.abort();
    run.timer = setTimeout(() => {
      if (!this.#runs.has(id)) return;
      // The worker is inside a long step: end it (its calls reject with an
      // AbortError) and reload the model in a new one.
      this.#client?.terminate();
      this.#client = null;
      this.restarted = this.load(this.#backendChoice);
    }, HARD_CANCEL_MS);
  }
}
