// The page's side of the realdenoise workers: the package's public
// `realdenoise/worker-client` (WorkerDenoiser) does the protocol, the pool
// of CPU workers and the time estimates; this adds the demo's policies.
//
// Cancel aborts the run's AbortSignal: the client rejects at once and the
// workers stop at their next check between network evaluations. On WebGPU
// that is within one evaluation (the package waits for the GPU at each), so
// the model stays loaded and the next run simply queues behind it. On the
// CPU one evaluation of a large tile can take many seconds, so if the
// workers have not stopped within HARD_CANCEL_MS they are terminated and the
// model is loaded again (from the package's Cache API entry: about a second).
import { WorkerDenoiser } from "./vendor/realdenoise/worker-client.js";

const WEIGHTS_URL = new URL("./vendor/realdenoise/realdenoise.rdnz", import.meta.url);
const HARD_CANCEL_MS = 1000;

export class Engine {
  #client = null;
  #backendChoice = "auto";
  loaded = null; // Promise<{ backend, reason, info, limits, fellBack, workers }>
  /** Replacements of the workers after a hard cancel (for the tests). */
  reloads = 0;
  /** Called with the client's speed after each finished run (to remember it). */
  onSpeed = null;

  /**
   * Starts the workers and loads the model; resolves to
   * { backend, reason, info, limits, fellBack, workers } (reason: the package's
   * `backendReason`, why that backend). `speed`: seconds per megapixel-
   * evaluation remembered from an earlier visit, if any, for the estimates.
   */
  load(backend = this.#backendChoice, onProgress, speed = null) {
    this.#backendChoice = backend;
    this.#client?.terminate();
    this.#client = null;
    this.loaded = WorkerDenoiser.load({ backend, weights: WEIGHTS_URL.href, onProgress }).then(
      (client) => {
        this.#client = client;
        if (typeof speed === "function") client.speed = speed(client.backend);
        return {
          backend: client.backend, reason: client.backendReason, info: client.info, limits: client.limits, fellBack: null, workers: client.workers,
        };
      },
      async (error) => {
        // A WebGPU adapter that cannot run the model: say so and use the CPU.
        if (backend !== "cpu") {
          const fallback = await this.load("cpu", onProgress, speed);
          return { ...fallback, fellBack: error };
        }
        throw error;
      },
    );
    return this.loaded;
  }

  /** The package's estimate for a photo: { seconds, tiles, workers, basis, ... }. */
  estimate(width, height, options) {
    return this.#client.estimate(width, height, options);
  }

  /**
   * Denoises RGBA pixels in the workers; resolves to ImageData. `signal`
   * cancels: the promise rejects with an AbortError once control is back
   * (at once on WebGPU; on the CPU after the workers stopped or were replaced).
   */
  async denoise(image, options, onProgress, signal) {
    const client = this.#client;
    try {
      const out = await client.denoise(image, { ...options, onProgress, signal });
      this.onSpeed?.(client.backend, client.speed);
      return out;
    } catch (error) {
      if (error.name === "AbortError" && client.backend === "cpu") await this.#stopOrReplace(client);
      throw error;
    }
  }

  async #stopOrReplace(client) {
    let timer;
    const late = new Promise((resolve) => {
      timer = setTimeout(() => resolve("late"), HARD_CANCEL_MS);
    });
    const outcome = await Promise.race([client.whenIdle().then(() => "idle"), late]);
    clearTimeout(timer);
    if (outcome === "idle" || client !== this.#client) return;
    // The workers are inside a long evaluation: end them and load the
    // model in new ones, keeping the measured speed.
    const speed = client.speed;
    this.reloads += 1;
    await this.load(this.#backendChoice, undefined, () => speed);
  }
}
