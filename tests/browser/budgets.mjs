// Size and speed budgets of the npm package, measured in headless Debian
// Chromium: `make budgets` (needs pkg/). Prints JSON, then a markdown table;
// the JSON is also written to out/budgets.json. Only the two size limits are
// asserted (in package.test.mjs); timings are reported, never asserted.
// BUDGET_BACKENDS=cpu measures one backend only (the SwiftShader WebGPU run
// takes ten minutes on two cores); the table shows "–" for the other.
//
// WebGPU here is SwiftShader, Chromium's CPU emulation of a GPU: its timings
// say nothing about a real GPU, only that the WebGPU path works end to end.
import { readFileSync, statSync, mkdirSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { cpus, loadavg } from "node:os";

/** Published limits, in bytes (MB = 10^6 bytes). */
export const LIMITS = { wasmGzipBytes: 4_000_000, weightsBytes: 8_000_000 };

export function sizes(pkg) {
  const wasm = readFileSync(join(pkg, "realdenoise_bg.wasm"));
  return {
    wasmBytes: wasm.length,
    wasmGzipBytes: gzipSync(wasm, { level: 9 }).length,
    weightsBytes: statSync(join(pkg, "realdenoise.rdnz")).size,
  };
}

// Runs in the page: cold start (module import + wasm init, weights fetch +
// model upload, first 256x256 tile), then 512x512 images with 1 step and the
// default number of steps on the now-warm Denoiser.
async function measureInPage(backend) {
  const synthetic = (width, height) => {
    const data = new Uint8ClampedArray(width * height * 4);
    let state = 12345;
    for (let i = 0; i < data.length; i++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      data[i] = i % 4 === 3 ? 255 : ((i >> 2) % width) / width * 200 + (state >>> 24) / 8;
    }
    return { data, width, height };
  };
  const adapter = backend === "webgpu" ? await navigator.gpu?.requestAdapter() : null;
  const adapterInfo = adapter?.info ? { vendor: adapter.info.vendor, architecture: adapter.info.architecture, description: adapter.info.description } : null;
  const marks = {};
  const t0 = performance.now();
  const { Denoiser } = await import("/pkg/index.js");
  const denoiser = await Denoiser.load({ backend, onProgress: ({ stage }) => { marks[stage] = performance.now(); } });
  const loaded = performance.now();
  await denoiser.denoise(synthetic(256, 256));
  const firstTile = performance.now();
  const image = synthetic(512, 512);
  let started = performance.now();
  await denoiser.denoise(image, { steps: 1 });
  const oneStep = performance.now() - started;
  started = performance.now();
  await denoiser.denoise(image);
  const defaultSteps = performance.now() - started;
  const result = {
    backend: denoiser.backend,
    adapter: adapterInfo,
    defaultSteps: denoiser.info.defaultSteps,
    moduleInitMs: marks.weights - t0,
    weightsLoadMs: loaded - marks.weights,
    firstTile256Ms: firstTile - loaded,
    coldStartMs: firstTile - t0,
    image512OneStepMs: oneStep,
    image512DefaultStepsMs: defaultSteps,
  };
  await denoiser.dispose();
  return result;
}

function chosenBackends() {
  const chosen = (process.env.BUDGET_BACKENDS ?? "cpu,webgpu").split(",").map((name) => name.trim()).filter(Boolean);
  const unknown = chosen.filter((name) => !["cpu", "webgpu"].includes(name));
  if (unknown.length || !chosen.length) {
    throw new Error(`BUDGET_BACKENDS: expected a comma-separated list of cpu and webgpu, got ${JSON.stringify(process.env.BUDGET_BACKENDS)}`);
  }
  return chosen;
}

async function main() {
  const { root, startServer, launch } = await import("./harness.mjs");
  const size = sizes(join(root, "pkg"));
  const loadBefore = loadavg()[0];
  const server = await startServer();
  const backends = {};
  try {
    for (const backend of chosenBackends()) {
      const browser = await launch({ webgpu: backend === "webgpu" });
      try {
        const page = await browser.newPage();
        await page.goto(`${server.origin}/tests/browser/index.html`);
        await page.waitForFunction(() => window.ready === true);
        page.setDefaultTimeout(0);
        backends[backend] = await page.evaluate(measureInPage, backend);
        if (backends[backend].backend !== backend) throw new Error(`asked for ${backend}, got ${backends[backend].backend}`);
      } finally {
        await browser.close();
      }
    }
  } finally {
    await server.close();
  }
  const report = {
    browser: "headless Debian Chromium (/usr/bin/chromium), fresh profile per backend",
    note: "webgpu = SwiftShader, Chromium's CPU-emulated WebGPU adapter: not a GPU timing. cpu = burn's ndarray backend in single-threaded wasm.",
    machine: { cpus: cpus().length, loadAverage1mBefore: loadBefore, loadAverage1mAfter: loadavg()[0] },
    limits: LIMITS,
    sizes: { ...size, wasmGzipWithinLimit: size.wasmGzipBytes <= LIMITS.wasmGzipBytes, weightsWithinLimit: size.weightsBytes <= LIMITS.weightsBytes },
    backends,
  };
  mkdirSync(join(root, "out"), { recursive: true });
  writeFileSync(join(root, "out/budgets.json"), JSON.stringify(report, null, 2) + "\n");
  console.log(JSON.stringify(report, null, 2));

  const mb = (bytes) => `${(bytes / 1e6).toFixed(2)} MB`;
  const s = (ms) => (ms === undefined ? "–" : `${(ms / 1000).toFixed(2)} s`);
  const ok = (flag) => (flag ? "ok" : "**over**");
  const cpu = backends.cpu ?? {};
  const webgpu = backends.webgpu ?? {};
  const steps = cpu.defaultSteps ?? webgpu.defaultSteps;
  console.log(`
| budget | limit | CPU (wasm) | WebGPU (SwiftShader, CPU-emulated) |
| --- | --- | --- | --- |
| .wasm gzip -9 | ${mb(LIMITS.wasmGzipBytes)} | ${mb(size.wasmGzipBytes)} (${ok(report.sizes.wasmGzipWithinLimit)}; raw ${mb(size.wasmBytes)}) | same file |
| weights (.rdnz) | ${mb(LIMITS.weightsBytes)} | ${mb(size.weightsBytes)} (${ok(report.sizes.weightsWithinLimit)}) | same file |
| module import + wasm init | – | ${s(cpu.moduleInitMs)} | ${s(webgpu.moduleInitMs)} |
| weights fetch + model load | – | ${s(cpu.weightsLoadMs)} | ${s(webgpu.weightsLoadMs)} |
| first 256x256 tile (${steps} steps) | – | ${s(cpu.firstTile256Ms)} | ${s(webgpu.firstTile256Ms)} |
| **cold start** (sum of the three) | – | ${s(cpu.coldStartMs)} | ${s(webgpu.coldStartMs)} |
| 512x512 image, 1 step | – | ${s(cpu.image512OneStepMs)} | ${s(webgpu.image512OneStepMs)} |
| 512x512 image, ${steps} steps (default) | – | ${s(cpu.image512DefaultStepsMs)} | ${s(webgpu.image512DefaultStepsMs)} |

WebGPU runs on SwiftShader (adapter: ${JSON.stringify(webgpu.adapter ?? "not measured")}), a CPU emulation on this machine's ${report.machine.cpus} cores: these are not GPU timings.
Load average (1 min) before/after: ${report.machine.loadAverage1mBefore.toFixed(1)}/${report.machine.loadAverage1mAfter.toFixed(1)}; other work on the machine slows every number.`);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
