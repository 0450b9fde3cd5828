// realdenoise/worker: run the Denoiser in a module worker so the page never
// freezes. Protocol (all messages are plain objects with an `id` chosen by
// the page; replies carry the same `id`):
//   page -> worker  { id, type: "load", weights?, backend? }
//                   { id, type: "denoise", image: { data, width, height }, options? }
//                   { id, type: "cancel", target }   (target = id of a denoise)
//                   { id, type: "memory" }
//                   { id, type: "dispose" }
//   worker -> page  { id, type: "progress", progress }
//                   { id, type: "loaded", backend, info }
//                   { id, type: "result", image: { data, width, height } }   (data transferred)
//                   { id, type: "error", name, message }
//                   { id, type: "memory", usage }   (usage: see Denoiser.memoryUsage(); null on CPU)
//                   { id, type: "disposed" }
import { Denoiser } from "./index.js";

let denoiser = null;
const running = new Map();

function reply(message, transfer) {
  self.postMessage(message, transfer ?? []);
}

self.onmessage = async ({ data: message }) => {
  const { id, type } = message;
  try {
    switch (type) {
      case "load": {
        const previous = denoiser;
        denoiser = null;
        await previous?.dispose();
        denoiser = await Denoiser.load({
          weights: message.weights,
          backend: message.backend,
          onProgress: (progress) => reply({ id, type: "progress", progress }),
        });
        reply({ id, type: "loaded", backend: denoiser.backend, info: denoiser.info });
        break;
      }
      case "denoise": {
        if (!denoiser) throw Object.assign(new Error("send a load message first"), { name: "InputError" });
        const controller = new AbortController();
        running.set(id, controller);
        try {
          const out = await denoiser.denoise(message.image, {
            ...message.options,
            signal: controller.signal,
            onProgress: (progress) => reply({ id, type: "progress", progress }),
          });
          const data = new Uint8ClampedArray(out.data);
          reply({ id, type: "result", image: { data, width: out.width, height: out.height } }, [data.buffer]);
        } finally {
          running.delete(id);
        }
        break;
      }
      case "cancel":
        running.get(message.target)?.abort();
        break;
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
        throw Object.assign(new Error(`unknown message type ${JSON.stringify(type)}`), { name: "InputError" });
    }
  } catch (error) {
    reply({ id, type: "error", name: error?.name ?? "Error", message: String(error?.message ?? error) });
  }
};
