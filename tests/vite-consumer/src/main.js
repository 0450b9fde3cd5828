// A page as a user of the package would write it: the bundled default
// weights (no URL given), the main-thread API, then the worker entry.
import { Denoiser } from "realdenoise";
import { makeInput } from "./input.js";

const status = document.querySelector("#status");
const params = new URLSearchParams(location.search);
const backend = params.get("backend") ?? "auto";
const steps = params.has("steps") ? Number(params.get("steps")) : undefined;

function viaWorker(image) {
  const worker = new Worker(new URL("./denoise-worker.js", import.meta.url), { type: "module" });
  return new Promise((resolve, reject) => {
    worker.onmessage = ({ data }) => {
      if (data.type === "loaded") {
        worker.postMessage({ id: 2, type: "denoise", image, options: { steps } });
      } else if (data.type === "result") {
        worker.terminate();
        resolve(data.image);
      } else if (data.type === "error") {
        worker.terminate();
        reject(new Error(`${data.name}: ${data.message}`));
      }
    };
    worker.onerror = (event) => reject(new Error(`worker failed: ${event.message}`));
    worker.postMessage({ id: 1, type: "load", backend });
  });
}

async function main() {
  const input = makeInput(64, 48);
  const denoiser = await Denoiser.load({ backend });
  status.textContent = `denoising on ${denoiser.backend}…`;
  const output = await denoiser.denoise(input, { steps });
  const usedBackend = denoiser.backend;
  await denoiser.dispose();
  const fromWorker = await viaWorker({ data: input.data.slice(), width: input.width, height: input.height });
  const result = {
    backend: usedBackend,
    width: output.width,
    height: output.height,
    isImageData: output instanceof ImageData,
    input: Array.from(input.data),
    output: Array.from(output.data),
    worker: { width: fromWorker.width, height: fromWorker.height, data: Array.from(fromWorker.data) },
  };
  document.querySelector("#result").textContent = JSON.stringify(result);
  status.textContent = "done";
}

main().catch((error) => {
  status.textContent = `failed: ${error.name}: ${error.message}`;
});
