// The page's side of the realdenoise worker protocol (the package's public
// `realdenoise/worker` export): load, denoise with progress, cancel.
// Cancel asks the worker first; if a long step does not yield within
// HARD_CANCEL_MS the worker is replaced, so Cancel answers within about a second.
const WORKER_URL = new URL("./vendor/realdenoise/worker.js", import.meta.url);
const WEIGHTS_URL = new URL("./vendor/realdenoise/realdenoise.rdnz", import.meta.url);
// Replacing the worker costs a model reload from the Cache API (about 0.2 s on
// the CPU path here), so a second is long enough to wait for a step boundary.
const HARD_CANCEL_MS = 1000;

function namedError(name, message) {
  return Object.assign(new Error(message), { name });
}

export class Engine {
  #worker = null;
  #nextId = 1;
  #pending = new Map(); // id -> { resolve, reject, onProgress }
  #backendChoice = "auto";
  loaded = null; // Promise<{ backend, info }>

  /**
   * Starts a worker and loads the model; resolves to { backend, reason, info, fellBack }
   * (reason: the package's `backendReason`, why that backend).
   */
  load(backend = this.#backendChoice, onProgress) {
    this.#backendChoice = backend;
    this.#spawn();
    this.loaded = this.#request({ type: "load", backend, weights: WEIGHTS_URL.href }, [], onProgress).then(
      ({ backend: used, reason, info }) => ({ backend: used, reason, info, fellBack: null }),
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
   * Denoises RGBA pixels (the buffer is transferred to the worker).
   * Returns { id, result: Promise<{ data, width, height }> }.
   */
  denoise(image, options, onProgress) {
    const id = this.#nextId;
    const result = this.#request({ type: "denoise", image, options }, [image.data.buffer], onProgress);
    return { id, result };
  }

  cancel(id) {
    const entry = this.#pending.get(id);
    if (!entry) return;
    this.#worker.postMessage({ id: this.#nextId++, type: "cancel", target: id });
    entry.hardCancel = setTimeout(() => {
      if (!this.#pending.has(id)) return;
      // The worker is inside a long step: replace it and reload the model.
      for (const [pendingId, pending] of this.#pending) {
        pending.reject(namedError("AbortError", "the denoising run was cancelled"));
        this.#pending.delete(pendingId);
      }
      this.#worker.terminate();
      this.#worker = null;
      this.restarted = this.load(this.#backendChoice);
    }, HARD_CANCEL_MS);
  }

  #spawn() {
    for (const [, pending] of this.#pending) pending.reject(namedError("AbortError", "the worker was restarted"));
    this.#pending.clear();
    this.#worker?.terminate();
    this.#worker = new Worker(WORKER_URL, { type: "module", name: "realdenoise" });
    this.#worker.onmessage = ({ data }) => this.#receive(data);
    this.#worker.onerror = (event) => {
      event.preventDefault?.();
      const error = namedError("WorkerError", event.message || "the realdenoise worker failed to start");
      for (const [, pending] of this.#pending) pending.reject(error);
      this.#pending.clear();
    };
  }

  #request(message, transfer, onProgress) {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, onProgress });
      this.#worker.postMessage({ ...message, id }, transfer);
    });
  }

  #receive(message) {
    const entry = this.#pending.get(message.id);
    if (!entry) return;
    if (message.type === "progress") {
      entry.onProgress?.(message.progress);
      return;
    }
    this.#pending.delete(message.id);
    clearTimeout(entry.hardCancel);
    if (message.type === "error") entry.reject(namedError(message.name, message.message));
    else if (message.type === "loaded") entry.resolve({ backend: message.backend, reason: message.reason, info: message.info });
    else if (message.type === "result") entry.resolve(message.image);
    else entry.resolve(message);
  }
}
