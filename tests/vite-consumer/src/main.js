// A page as a user of the package would write it: the bundled default
// weights (no URL given), the main-thread API, then the worker client.
import { Denoiser } from "realdenoise";
import { WorkerDenoiser } from "realdenoise/worker-client";
import { makeInput } from "./input.js";

const status = document.querySelector("#status");
const params = new URLSearchParams(location.search);
const backend = params.get("backend") ?? "auto";
const steps = params.has("steps") ? Number(params.get("steps")) : undefined;

// The worker client starts the package's own worker.js
// (`new Worker(new URL("./worker.js", import.meta.url), { type: "module" })`),
// which Vite bundles as a module worker.
async function viaWorker(image) {
  const client = await WorkerDenoiser.load({ backend });
  try {
    return await client.denoise(image, { steps });
  } finally {
    await client.dispose();
  }
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
