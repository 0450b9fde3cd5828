// realdenoise/worker: run the Denoiser in a module worker so the page never
// freezes. Protocol (all messages are plain objects with an `id` chosen by
// the page; replies carry the same `id`):
//   page -> worker  { id, type: "load", weights?, backend? }
//                   { id, type: "denoise", image: { data, width, height }, options? }
//                   { id, type: "cancel", target }   (target = id of a denoise)
//                   { id, type: "plan", width, height, options? }   (options: denoise options + workers)
//                   { id, type: "tile", image: { data, width, height }, options? }
//                   { id, type: "memory" }
//                   { id, type: "dispose" }
//   worker -> page  { id, type: "progress", progress }
//                   { id, type: "loaded", backend, reason, info, limits }   (reason: Denoiser.backendReason; limits: Denoiser.limits)
//                   { id, type: "result", image: { data, width, height } }   (data transferred)
//                   { id, type: "error", name, message }
//                   { id, type: "plan", plan }   (see Denoiser.planTiles)
//                   { id, type: "tile", data, width, height }   (planar RGB Float32Array, transferred; see Denoiser.denoiseTile)
//                   { id, type: "memory", usage }   (usage: see Denoiser.memoryUsage(); null on CPU)
//                   { id, type: "disposed" }
// Typed as WorkerRequest / WorkerReply in worker-client.d.ts; the
// realdenoise/worker-client module speaks this protocol for you.
// Messages are handled one after another in the order they arrive, so
// `load` and `denoise` may be posted at once; `cancel` acts immediately, on a
// running denoise or tile or on one still waiting its turn. `plan` and
// `tile` are what realdenoise/worker-client's pool of CPU workers uses to
// share one photo among several workers. A `load` that fails
// keeps the model loaded before it.
import { Denoiser, InputError } from "./index.js";

let denoiser = null;
/** AbortControllers of the denoise messages received and not yet answered. */
const controllers = new Map();
let queue = Promise.resolve();

function reply(message, transfer) {
  self.postMessage(message, transfer ?? []);
}

const inputError = (message) => new InputError(message);

async function handle(message) {
  const { id, type } = message;
  switch (type) {
    case "load": {
      const loaded = await Denoiser.load({
        weights: message.weights,
        backend: message.backend,
        onProgress: (progress) => reply({ id, type: "progress", progress }),
      });
      const previous = denoiser;
      denoiser = loaded;
      await previous?.dispose().catch(() => {});
      reply({
        id, type: "loaded", backend: denoiser.backend, reason: denoiser.backendReason, info: denoiser.info, limits: denoiser.limits,
      });
      break;
    }
    case "denoise":
    case "tile": {
      const controller = controllers.get(id) ?? new AbortController();
      try {
        if (!denoiser) throw inputError("send a load message first");
        const options = checkedOptions(message);
        const run = {
          ...options,
          signal: controller.signal,
          onProgress: (progress) => reply({ id, type: "progress", progress }),
        };
        if (type === "tile") {
          const out = await denoiser.denoiseTile(message.image, run);
          reply({ id, type: "tile", data: out.data, width: out.width, height: out.height }, [out.data.buffer]);
        } else {
          const out = await denoiser.denoise(message.image, run);
          const data = new Uint8ClampedArray(out.data);
          reply({ id, type: "result", image: { data, width: out.width, height: out.height } }, [data.buffer]);
        }
      } finally {
        if (controllers.get(id) === controller) controllers.delete(id);
      }
      break;
    }
    case "plan": {
      if (!denoiser) throw inputError("send a load message first");
      reply({ id, type: "plan", plan: denoiser.planTiles(message.width, message.height, checkedOptions(message)) });
      break;
    }
    case "memory":
      reply({ id, type: "memory", usage: denoiser?.memoryUsage() ?? null });
      break;
    case "dispose": {
      const previous = denoiser;
      denoiser = null;
      await previous?.dispose();
      reply({ id, type: "disposed" });
      break;
    }
    default:
      throw inputError(`unknown message type ${JSON.stringify(String(type)).slice(0, 100)}`);
  }
}

function checkedOptions({ options = {} }) {
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw inputError("options must be an object");
  }
  return options;
}

self.onmessage = ({ data: message }) => {
  if (message === null || typeof message !== "object") {
    reply({ id: undefined, type: "error", name: "InputError", message: "messages must be objects with an id and a type" });
    return;
  }
  const { id, type } = message;
  if (type === "cancel") {
    controllers.get(message.target)?.abort();
    return;
  }
  if (type === "denoise" || type === "tile") controllers.set(id, new AbortController());
  queue = queue
    .then(() => handle(message))
    .catch((error) => reply({ id, type: "error", name: error?.name ?? "Error", message: String(error?.message ?? error) }));
};
