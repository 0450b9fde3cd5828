// realdenoise/worker-client: the Denoiser API, run in module workers so the
// page never freezes. It speaks the protocol of realdenoise/worker (see
// worker.js) and turns its replies back into promises, progress callbacks
// and the package's error classes.
//
// On the CPU backend a photo's tiles are shared by a pool of workers, one
// per core (navigator.hardwareConcurrency), fewer when the device has little
// memory (navigator.deviceMemory): WebAssembly in a worker uses one core, and
// the tiles are independent. Each worker holds its own copy of the model
// (about 3.6 MB of weights plus up to 256 MiB of activations for a tile).
// The page blends the tiles' unquantised outputs with the same weights as
// the single-worker run, so the result is the same to within rounding.
// WebGPU runs use one worker: there is one GPU.
//
//   const client = await WorkerDenoiser.load({ backend: "auto", onProgress });
//   const { seconds } = await client.estimate(width, height, { steps: 4 });
//   const clean = await client.denoise(imageData, { steps: 4, onProgress, signal });
//   await client.dispose();
import { namedError } from "./errors.js";

const inputError = (message) => namedError("InputError", message);
const abortError = () => namedError("AbortError", "the denoising run was aborted");

/** Memory one CPU worker may reach: the 256 MiB tile budget, the model, the tile's pixels. */
const WORKER_MIB = 384;
/** The most workers "auto" starts (each is a full copy of the module and model). */
const MAX_AUTO_WORKERS = 8;
/**
 * Side of the tile timed by estimate() when this device's speed is unknown:
 * on the CPU about a third of a second here; on WebGPU smaller, since the
 * timed tile (and its warm-up run) delays a run started meanwhile, by
 * seconds on a software renderer.
 */
const CALIBRATION_SIDE = { cpu: 128, webgpu: 64 };

/**
 * How many CPU workers `workers: "auto"` starts: one per logical core, at
 * most 8, and at most as many as half the device's memory holds
 * (navigator.deviceMemory, in GiB, where the browser tells it).
 */
export function autoWorkers() {
  const nav = globalThis.navigator;
  const cores = Number(nav?.hardwareConcurrency) >= 1 ? Math.floor(nav.hardwareConcurrency) : 1;
  const memory = Number(nav?.deviceMemory);
  const byMemory = memory > 0 ? Math.max(1, Math.floor((memory * 1024) / 2 / WORKER_MIB)) : MAX_AUTO_WORKERS;
  return Math.max(1, Math.min(cores, byMemory, MAX_AUTO_WORKERS));
}

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

/**
 * RGBA pixels `{ data, width, height }` of any accepted image, read but not
 * copied (a canvas or bitmap is drawn once); `transferable()` copies them
 * before a buffer is sent away, so the caller's pixels stay theirs.
 */
function readPixels(image) {
  const isCanvas =
    (typeof HTMLCanvasElement !== "undefined" && image instanceof HTMLCanvasElement) ||
    (typeof OffscreenCanvas !== "undefined" && image instanceof OffscreenCanvas);
  const isBitmap = typeof ImageBitmap !== "undefined" && image instanceof ImageBitmap;
  if (isCanvas || isBitmap) {
    if (!image.width || !image.height) throw inputError(`image is empty (${image.width}x${image.height})`);
    let canvas = image;
    if (isBitmap) {
      canvas = new OffscreenCanvas(image.width, image.height);
      canvas.getContext("2d").drawImage(image, 0, 0);
    }
    const drawn = canvas.getContext("2d").getImageData(0, 0, image.width, image.height);
    return { data: drawn.data, width: drawn.width, height: drawn.height, owned: true };
  }
  if (image === null || typeof image !== "object" || !(image.data instanceof Uint8Array || image.data instanceof Uint8ClampedArray)) {
    throw inputError("image must be ImageData, ImageBitmap, a canvas, or { data, width, height } with RGBA bytes");
  }
  const { width, height } = image;
  for (const [name, value] of [["width", width], ["height", height]]) {
    if (!Number.isInteger(value) || value < 1 || value > 1 << 20) {
      throw inputError(`image.${name} must be an integer from 1 to ${1 << 20} (got ${String(value).slice(0, 80)})`);
    }
  }
  if (image.data.length !== width * height * 4) {
    throw inputError(`image.data has ${image.data.length} bytes; ${width}x${height} RGBA needs ${width * height * 4}`);
  }
  return { data: image.data, width, height, owned: false };
}

/** The pixels as a message part whose buffer can be transferred. */
function transferable({ data, width, height, owned }) {
  const copy = owned && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : new Uint8ClampedArray(data);
  return { data: copy, width, height };
}

function toImageData({ data, width, height }) {
  return typeof ImageData !== "undefined" ? new ImageData(data, width, height) : { data, width, height, colorSpace: "srgb" };
}

/**
 * One worker and its calls in flight. Replies are matched to calls by id;
 * a call can be settled early (an abort) and its late reply is then ignored.
 */
class Channel {
  #worker;
  #nextId = 1;
  #pending = new Map(); // id -> { resolve, reject, onProgress }
  #outstanding = new Set(); // ids the worker has not answered yet, cancelled ones included
  #idle = []; // resolvers waiting for #outstanding to empty
  closed = null; // the error every call gets once the worker has ended

  constructor(worker) {
    this.#worker = worker;
    worker.addEventListener("message", ({ data }) => this.#receive(data));
    worker.addEventListener("error", (event) => {
      event.preventDefault?.();
      this.fail(namedError("InternalError", `the realdenoise worker failed: ${event.message || "it could not start"}`));
    });
    worker.addEventListener("messageerror", () => {
      this.fail(namedError("InternalError", "a message from the realdenoise worker could not be read"));
    });
  }

  /** Posts a request; returns { id, result: Promise }. */
  start(message, transfer = [], onProgress) {
    const id = this.#nextId++;
    if (this.closed) return { id, result: Promise.reject(this.closed) };
    const result = new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, onProgress });
      this.#outstanding.add(id);
      this.#worker.postMessage({ ...message, id }, transfer);
    });
    return { id, result };
  }

  /** Resolves once the worker has answered every request, cancelled ones included (or has ended). */
  settled() {
    if (this.#outstanding.size === 0 || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #answered(id) {
    this.#outstanding.delete(id);
    if (this.#outstanding.size === 0 || this.closed) {
      for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  request(message, transfer, onProgress) {
    return this.start(message, transfer, onProgress).result;
  }

  /** Tells the worker to stop call `id` and rejects it now with `error`. */
  cancel(id, error = abortError()) {
    if (!this.closed) this.#worker.postMessage({ id: this.#nextId++, type: "cancel", target: id });
    const entry = this.#pending.get(id);
    this.#pending.delete(id);
    entry?.reject(error);
  }

  terminate(error) {
    if (this.closed) return;
    this.#worker.terminate();
    this.fail(error);
  }

  fail(error) {
    this.closed ??= inputError("this WorkerDenoiser's worker has ended; load a new one");
    for (const { reject } of this.#pending.values()) reject(error);
    this.#pending.clear();
    this.#answered(undefined);
  }

  #receive(message) {
    if (message?.type !== "progress") this.#answered(message?.id);
    const entry = this.#pending.get(message?.id);
    if (!entry) return;
    if (message.type === "progress") {
      try {
        entry.onProgress?.(message.progress);
      } catch (error) {
        // As with Denoiser: an exception from onProgress stops the run and is what the call rejects with.
        this.cancel(message.id, error);
      }
      return;
    }
    this.#pending.delete(message.id);
    if (message.type === "error") entry.reject(namedError(message.name, message.message));
    else if (message.type === "result") entry.resolve(message.image);
    else entry.resolve(message);
  }
}

/**
 * The time `tiles` (of `plan`) take on `workers` workers that each take the
 * next tile when free, in units of one worker's megapixel-evaluation.
 */
function makespan(plan, workers) {
  const free = new Array(Math.max(1, workers)).fill(0);
  for (const [y0, y1] of plan.rows) {
    for (const [x0, x1] of plan.columns) {
      const first = free.indexOf(Math.min(...free));
      free[first] += ((x1 - x0) * (y1 - y0) * plan.evaluations) / 1e6;
    }
  }
  return Math.max(...free);
}

/**
 * Accumulates the tiles' weighted outputs row by row and writes each image
 * row once every tile over it is done (as the library's BandBlender): only
 * the rows of the tiles in flight are held, 16 bytes per pixel.
 */
class Blender {
  constructor(plan, source) {
    this.plan = plan;
    this.source = source; // RGBA input: alpha is copied from it
    this.width = source.width;
    this.output = new Uint8ClampedArray(source.data.length);
    this.rows = new Map(); // y -> Float32Array [r, g, b, weight] per pixel
    this.doneInRow = new Array(plan.rows.length).fill(0);
    this.nextRow = 0; // first tile row not yet flushed
    this.flushedUntil = 0; // image rows written so far
  }

  add(column, row, planes) {
    const { columns, rows, columnWeights, rowWeights } = this.plan;
    const [x0, x1] = columns[column];
    const [y0, y1] = rows[row];
    const w = x1 - x0;
    const h = y1 - y0;
    const alongX = columnWeights[column];
    const alongY = rowWeights[row];
    for (let j = 0; j < h; j++) {
      const y = y0 + j;
      let sums = this.rows.get(y);
      if (!sums) {
        sums = new Float32Array(4 * this.width);
        this.rows.set(y, sums);
      }
      const wy = alongY[j];
      for (let i = 0; i < w; i++) {
        const weight = Math.fround(alongX[i] * wy);
        const at = 4 * (x0 + i);
        const p = j * w + i;
        sums[at] += weight * planes[p];
        sums[at + 1] += weight * planes[w * h + p];
        sums[at + 2] += weight * planes[2 * w * h + p];
        sums[at + 3] += weight;
      }
    }
    this.doneInRow[row] += 1;
    this.#flush();
  }

  #flush() {
    const { rows, columns } = this.plan;
    const height = this.source.height;
    while (this.nextRow < rows.length && this.doneInRow[this.nextRow] === columns.length) {
      const until = this.nextRow + 1 < rows.length ? rows[this.nextRow + 1][0] : height;
      for (let y = this.flushedUntil; y < until; y++) {
        const sums = this.rows.get(y);
        this.rows.delete(y);
        for (let x = 0; x < this.width; x++) {
          const at = 4 * (y * this.width + x);
          const weight = sums[4 * x + 3];
          for (let c = 0; c < 3; c++) {
            const value = Math.min(1, Math.max(0, sums[4 * x + c] / weight));
            this.output[at + c] = Math.round(value * 255);
          }
          this.output[at + 3] = this.source.data[at + 3];
        }
      }
      this.flushedUntil = until;
      this.nextRow += 1;
    }
  }
}

/** The RGBA pixels of `source` inside [x0, x1) x [y0, y1), as a new array. */
function crop(source, [x0, x1], [y0, y1]) {
  const w = x1 - x0;
  const data = new Uint8ClampedArray(w * (y1 - y0) * 4);
  for (let y = y0; y < y1; y++) {
    const from = 4 * (y * source.width + x0);
    data.set(source.data.subarray(from, from + 4 * w), 4 * (y - y0) * w);
  }
  return { data, width: w, height: y1 - y0 };
}

export class WorkerDenoiser {
  #primary;
  #helpers = []; // the pool's other CPU workers, once loaded
  #closed = null;

  /** Use `WorkerDenoiser.load`. */
  constructor(worker) {
    this.#primary = new Channel(worker);
    /** "webgpu" | "cpu", set by load. */
    this.backend = null;
    /** Why that backend (the Denoiser's backendReason). */
    this.backendReason = null;
    /** Model metadata from the weights header. */
    this.info = null;
    /** The library's limits and choices (see Denoiser.limits). */
    this.limits = null;
    /**
     * Seconds one worker takes per megapixel per network evaluation on
     * this device: measured by every finished run (or by estimate()'s
     * calibration tile); null until then. Set it to a value remembered
     * from an earlier visit to skip the calibration.
     */
    this.speed = null;
  }

  /** Workers sharing the CPU work (1 on WebGPU). */
  get workers() {
    return this.#pool().length;
  }

  /** The live workers: the first, and the pool's others that have not ended. */
  #pool() {
    return [this.#primary, ...this.#helpers.filter((channel) => !channel.closed)];
  }

  /**
   * Resolves once every worker has answered every call made so far: after an
   * abort, when the workers have actually stopped (at their next check
   * between network evaluations) and a new call would start at once.
   */
  whenIdle() {
    return Promise.all(this.#pool().map((channel) => channel.settled())).then(() => {});
  }

  /**
   * Starts a worker (the package's worker.js, or `options.worker`) and loads
   * the model in it; on the CPU backend also the pool's other workers
   * (`options.workers`: "auto", the default, or a number; a given `worker`
   * makes a pool of one). Rejects with the package's errors (`InputError`,
   * `WeightsError`, `WebGpuUnavailableError`, ...); the worker is then
   * terminated. A pool worker that fails to load is left out of the pool.
   */
  static async load(options = {}) {
    if (options === null || typeof options !== "object") throw inputError("load options must be an object");
    const known = ["weights", "backend", "onProgress", "worker", "workers"];
    for (const key of Object.keys(options)) {
      if (!known.includes(key)) {
        throw inputError(`unknown load option ${JSON.stringify(key.slice(0, 80))} (known: ${known.join(", ")})`);
      }
    }
    const { worker: given, onProgress, workers = "auto", ...rest } = options;
    if (onProgress !== undefined && typeof onProgress !== "function") throw inputError("onProgress must be a function");
    // The upper bound is the library's (limits.maxWorkers), known once the first worker has loaded.
    const workersError = (most) =>
      inputError(`workers must be "auto" or an integer from 1 to ${most} (got ${String(workers).slice(0, 80)})`);
    if (workers !== "auto" && !(Number.isInteger(workers) && workers >= 1)) throw workersError("the library's limit");
    const wanted = given ? 1 : workers === "auto" ? autoWorkers() : workers;
    const client = new WorkerDenoiser(given ?? defaultWorker());
    try {
      const message = { type: "load", ...rest };
      if ("weights" in rest) message.weights = await postableWeights(rest.weights);
      // "ready" is said once the whole pool is.
      const forward = (progress) => progress.stage !== "ready" && onProgress?.(progress);
      const loaded = await client.#primary.request(message, [], forward);
      client.backend = loaded.backend;
      client.backendReason = loaded.reason;
      client.info = Object.freeze(loaded.info);
      client.limits = Object.freeze(loaded.limits);
      if (workers !== "auto" && workers > loaded.limits.maxWorkers) throw workersError(loaded.limits.maxWorkers);
      if (loaded.backend === "cpu" && wanted > 1) await client.#startHelpers(message, wanted - 1, onProgress);
      onProgress?.({ stage: "ready", fraction: 1, workers: client.workers });
      return client;
    } catch (error) {
      client.terminate();
      throw error;
    }
  }

  /**
   * The pool's other workers, started once the first has loaded: it has put
   * the weights in the package's Cache API entry, so they read them from
   * there instead of the network.
   */
  async #startHelpers(message, count, onProgress) {
    let done = 0;
    const total = count + 1;
    onProgress?.({ stage: "workers", loaded: 1, total, fraction: 0.9 });
    await Promise.all(Array.from({ length: count }, async () => {
      const channel = new Channel(defaultWorker());
      try {
        await channel.request({ ...message, backend: "cpu" });
        if (this.#closed) channel.terminate(this.#closed);
        else this.#helpers.push(channel);
      } catch {
        // Out of memory or the like: the pool goes on without it.
        channel.terminate(inputError("this pool worker did not load"));
      }
      done += 1;
      onProgress?.({ stage: "workers", loaded: 1 + done, total, fraction: 0.9 + (0.1 * done) / count });
    }));
  }

  /**
   * Denoises an image in the worker(s); resolves to ImageData of the same
   * size. `signal` aborts it: the call rejects with an AbortError at once
   * and the workers stop at their next check (between network evaluations;
   * on WebGPU the package waits for the GPU at each one, so that is soon);
   * a later call waits for them. Every other option is checked by the worker.
   */
  denoise(image, options = {}) {
    if (options === null || typeof options !== "object") return Promise.reject(inputError("denoise options must be an object"));
    const { onProgress, signal, ...rest } = options;
    if (onProgress !== undefined && typeof onProgress !== "function") return Promise.reject(inputError("onProgress must be a function"));
    if (signal !== undefined && !(signal instanceof AbortSignal)) return Promise.reject(inputError("signal must be an AbortSignal"));
    if ("workers" in rest) return Promise.reject(inputError("workers is a load option of WorkerDenoiser, not a denoise option"));
    if (signal?.aborted) return Promise.reject(abortError());
    if (this.#closed) return Promise.reject(this.#closed);
    let pixels;
    try {
      pixels = readPixels(image);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      const run = { signal, onProgress, rest, pixels, inFlight: new Map(), stopped: null };
      const stop = (error) => {
        if (run.stopped) return;
        run.stopped = error;
        for (const [id, channel] of run.inFlight) channel.cancel(id, error);
        run.inFlight.clear();
        reject(error);
      };
      run.stop = stop;
      const onAbort = () => stop(abortError());
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#run(run).then(
        (result) => (run.stopped ? undefined : resolve(result)),
        (error) => stop(error),
      ).finally(() => signal?.removeEventListener("abort", onAbort));
    });
  }

  async #run(run) {
    const { pixels, rest } = run;
    const plan = await this.#track(run, this.#primary, {
      type: "plan", width: pixels.width, height: pixels.height, options: { ...rest, workers: this.workers },
    });
    if (run.stopped) return null;
    const tiles = plan.plan.columns.length * plan.plan.rows.length;
    const started = { at: null };
    const mark = () => (started.at ??= performance.now());
    let output;
    if (this.workers === 1 || tiles === 1) {
      const posted = transferable(pixels);
      const image = await this.#track(run, this.#primary, { type: "denoise", image: posted, options: rest }, [posted.data.buffer], (p) => {
        mark();
        run.onProgress?.({ ...p, workers: 1 });
      });
      output = toImageData(image);
    } else {
      output = toImageData(await this.#pooled(run, plan.plan, mark));
    }
    if (!run.stopped && started.at !== null && plan.plan.evaluations > 0) {
      // This device's measured speed, for estimate(): the run's time over its work per worker.
      const workers = this.workers === 1 || tiles === 1 ? 1 : this.workers;
      this.speed = (performance.now() - started.at) / 1000 / makespan(plan.plan, workers);
    }
    return output;
  }

  /** Sends a request as part of `run` (so that stopping the run cancels it); resolves to its reply. */
  #track(run, channel, message, transfer, onProgress) {
    if (run.stopped) return Promise.reject(run.stopped);
    const { id, result } = channel.start(message, transfer, onProgress);
    run.inFlight.set(id, channel);
    return result.finally(() => run.inFlight.delete(id));
  }

  /** Shares the plan's tiles among the pool's workers; resolves to the blended RGBA pixels. */
  async #pooled(run, plan, mark) {
    const columns = plan.columns.length;
    const tiles = columns * plan.rows.length;
    const blender = new Blender(plan, run.pixels);
    const fractions = new Array(tiles).fill(0);
    const pool = this.#pool();
    const last = new Array(tiles).fill(null); // each tile's latest progress
    let next = 0;
    let done = 0;
    const report = (index, p) => {
      mark();
      last[index] = p;
      fractions[index] = p.fraction;
      const fraction = fractions.reduce((sum, f) => sum + f, 0) / tiles;
      run.onProgress?.({
        ...p, tile: index + 1, tiles, tilesDone: done, workers: pool.length, fraction: Math.min(1, fraction),
      });
    };
    const drive = async (channel) => {
      while (next < tiles && !run.stopped) {
        const index = next++;
        const column = index % columns;
        const row = Math.floor(index / columns);
        const image = crop(run.pixels, plan.columns[column], plan.rows[row]);
        const out = await this.#track(run, channel, { type: "tile", image, options: plan.options }, [image.data.buffer], (p) => report(index, p));
        if (run.stopped) return;
        blender.add(column, row, out.data);
        done += 1;
        report(index, { ...(last[index] ?? { stage: "denoise" }), fraction: 1 });
      }
    };
    await Promise.all(pool.map(drive));
    return { data: blender.output, width: run.pixels.width, height: run.pixels.height };
  }

  /**
   * How long denoising a `width` x `height` photo with `options` (as for
   * denoise) should take here: the plan's tiles shared among this pool's
   * workers at this device's measured speed (`speed`: from the last
   * finished run, or, the first time, from timing one small tile).
   * Resolves to `{ seconds, tiles, workers, evaluations, speed, basis }`,
   * basis "run" or "calibration". Queued behind calls in flight.
   */
  async estimate(width, height, options = {}) {
    if (options === null || typeof options !== "object") throw inputError("estimate options must be an object");
    const { plan } = await this.#primary.request({ type: "plan", width, height, options: { ...options, workers: this.workers } });
    const tiles = plan.columns.length * plan.rows.length;
    const workers = tiles === 1 ? 1 : this.workers;
    let basis = "run";
    if (!(this.speed > 0)) {
      this.speed = await this.#calibrate();
      basis = "calibration";
    }
    return { seconds: this.speed * makespan(plan, workers), tiles, workers, evaluations: plan.evaluations, speed: this.speed, basis };
  }

  /** Times one evaluation of a small tile, after an untimed warm-up run of it. */
  async #calibrate() {
    const side = CALIBRATION_SIDE[this.backend] ?? 128;
    const tile = () => {
      const data = new Uint8ClampedArray(side * side * 4);
      for (let i = 0; i < data.length; i++) data[i] = i % 4 === 3 ? 255 : (i * 2654435761) >>> 24;
      return { data, width: side, height: side };
    };
    const options = { steps: 1, ensemble: "off", strength: 1 };
    // The first run is not timed: on WebGPU it compiles the shaders; on the
    // CPU the browser first runs WebAssembly from its quick baseline
    // compiler and moves hot code to optimised code as it runs (timing that
    // first run put a 9-tile estimate 2.6 times over the real run).
    await this.#primary.request({ type: "tile", image: tile(), options });
    const image = tile();
    const started = performance.now();
    await this.#primary.request({ type: "tile", image, options }, [image.data.buffer]);
    return (performance.now() - started) / 1000 / ((side * side) / 1e6);
  }

  /** The worker's WebGPU memory pools (see Denoiser.memoryUsage); null on the CPU. */
  async memoryUsage() {
    return (await this.#primary.request({ type: "memory" })).usage;
  }

  /** Frees the models once queued calls have finished, then ends the workers. */
  async dispose() {
    if (this.#closed) return;
    try {
      await Promise.all(this.#pool().map((channel) => channel.request({ type: "dispose" })));
    } finally {
      this.terminate();
    }
  }

  /**
   * Ends the workers at once (even inside a long step): calls still running
   * or queued reject with an AbortError, later ones with an InputError.
   */
  terminate() {
    if (this.#closed) return;
    this.#closed = inputError("this WorkerDenoiser's worker has ended; load a new one");
    const error = namedError("AbortError", "the realdenoise worker was terminated");
    for (const channel of [this.#primary, ...this.#helpers]) channel.terminate(error);
  }
}

export {
  InputError, WeightsError, AbortError, WebGpuUnavailableError, UnsupportedBrowserError, BackendError, InternalError,
} from "./errors.js";
