// Browser side by side: one network evaluation S(x_t, t) of the same U-Net
// with the same weights, in the npm package built by `make pkg` (its wasm
// `Model.evaluate`: burn ndarray on wasm simd128, or burn wgpu on WebGPU) and
// in onnxruntime-web (the .onnx files of bench/onnx/export.py; its wasm
// backend with SIMD, or its WebGPU backend), interleaved (ours, theirs, ours,
// theirs, ...) in one headless Debian Chromium:
//   wasm-1t   CPU, onnxruntime-web with 1 thread (a page without COOP/COEP)
//   wasm-2t   CPU, onnxruntime-web with 2 threads (a page served with
//             COOP/COEP, so crossOriginIsolated and SharedArrayBuffer);
//             ours is single-threaded there too (no wasm threads)
//   webgpu    WebGPU (SwiftShader here: a CPU emulation) on both
// Round 0 is cold (the first evaluation in a fresh page after the model and
// the session are loaded); medians are over the rounds after it. Both sides
// are timed around the call that returns the output in JavaScript memory
// (ours: `await model.evaluate(...)`; theirs: `await session.run(...)` with
// the output on the CPU), so WebGPU times include the upload and read-back.
//
//   node bench/onnx/web/browser.mjs [--json out.json]
//   env: SIZES=256x256,512x512  REPEATS=5  WEBGPU_SIZES=256x256  WEBGPU_REPEATS=2  CONFIGS=wasm-1t,wasm-2t,webgpu
import { createServer } from "node:http";
import { writeFileSync, existsSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join, resolve } from "node:path";
import sirv from "sirv";
import { chromium } from "playwright-core";

const root = resolve(import.meta.dirname, "../../..");
const args = process.argv.slice(2);
const jsonPath = args.includes("--json") ? args[args.indexOf("--json") + 1] : null;
const parseSizes = (text) => text.split(",").map((s) => s.toLowerCase().split("x").map(Number));
const sizes = parseSizes(process.env.SIZES ?? "256x256,512x512");
const webgpuSizes = parseSizes(process.env.WEBGPU_SIZES ?? "256x256");
const repeats = Number(process.env.REPEATS ?? 5);
const webgpuRepeats = Number(process.env.WEBGPU_REPEATS ?? 2);
const configs = (process.env.CONFIGS ?? "wasm-1t,wasm-2t,webgpu").split(",");
const T_FRACTION = 0.5; // t = T/2, as bench/onnx/native.py

for (const file of ["pkg/realdenoise.js", "pkg/realdenoise.rdnz", "bench/onnx/web/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs"]) {
  if (!existsSync(join(root, file))) throw new Error(`${file} is missing (make pkg; npm --prefix bench/onnx/web install)`);
}

// One static server for the repository; the second port adds the headers
// that make a page cross-origin isolated (needed for wasm threads).
const handler = sirv(root, { dev: true });
async function serve(isolated) {
  const server = createServer((request, response) => {
    if (isolated) {
      response.setHeader("Cross-Origin-Opener-Policy", "same-origin");
      response.setHeader("Cross-Origin-Embedder-Policy", "require-corp");
      response.setHeader("Cross-Origin-Resource-Policy", "same-origin");
    }
    handler(request, response, () => { response.statusCode = 404; response.end("not found"); });
  });
  await new Promise((ready) => server.listen(0, "127.0.0.1", ready));
  return { origin: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((done) => server.close(done)) };
}

const FLAGS = [
  "--enable-unsafe-webgpu", "--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync",
];

// Runs in the page: loads both runtimes, then interleaves their evaluations.
async function pageRun({ backend, threads, sizes, repeats, tFraction }) {
  const dist = "/bench/onnx/web/node_modules/onnxruntime-web/dist/";
  const ort = await import(dist + (backend === "webgpu" ? "ort.webgpu.min.mjs" : "ort.wasm.min.mjs"));
  ort.env.wasm.wasmPaths = dist;
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.proxy = false;
  const { default: init, Model } = await import("/pkg/realdenoise.js");
  await init();
  const weights = new Uint8Array(await (await fetch("/pkg/realdenoise.rdnz")).arrayBuffer());
  let started = performance.now();
  const ours = await Model.load(weights, backend === "webgpu" ? "webgpu" : "cpu");
  const oursLoadMs = performance.now() - started;
  const timesteps = ours.info().timesteps;
  const t = Math.round(timesteps * tFraction);
  const info = {
    crossOriginIsolated: self.crossOriginIsolated, hardwareConcurrency: navigator.hardwareConcurrency,
    userAgent: navigator.userAgent, ortVersion: ort.env.versions?.web ?? ort.version ?? null, oursLoadMs, t,
  };
  if (backend === "webgpu") {
    const adapter = await navigator.gpu?.requestAdapter();
    info.adapter = adapter ? { ...Object.fromEntries(["vendor", "architecture", "device", "description"].map((k) => [k, adapter.info?.[k]])), isFallbackAdapter: adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter } : null;
  }
  const results = [];
  for (const [width, height] of sizes) {
    // Seeded x_t in 0..1 (a gradient with noise), planar [1, 3, H, W].
    let state = 0x9e3779b9;
    const noise = () => { state ^= state << 13; state ^= state >>> 17; state ^= state << 5; return (state >>> 0) / 4294967296 - 0.5; };
    const x = new Float32Array(3 * width * height);
    for (let c = 0; c < 3; c++) for (let y = 0; y < height; y++) for (let i = 0; i < width; i++) {
      const base = [0.2 + 0.6 * i / width, 0.2 + 0.6 * y / height, 0.5 + 0.3 * Math.sin(6 * i / width + 4 * y / height)][c];
      x[(c * height + y) * width + i] = Math.min(1, Math.max(0, base + 0.3 * noise()));
    }
    const entry = { width, height, ours: [], theirs: [] };
    try {
      started = performance.now();
      const session = await ort.InferenceSession.create(`/bench/onnx/out/realdenoise-${height}x${width}.onnx`, {
        executionProviders: [backend === "webgpu" ? "webgpu" : "wasm"], graphOptimizationLevel: "all",
      });
      entry.theirsSessionMs = performance.now() - started;
      for (let round = 0; round <= repeats; round++) {
        started = performance.now();
        const a = await ours.evaluate(x, width, height, t);
        entry.ours.push(performance.now() - started);
        started = performance.now();
        const feeds = { x_t: new ort.Tensor("float32", x, [1, 3, height, width]), t: new ort.Tensor("float32", new Float32Array([t]), [1]) };
        const output = (await session.run(feeds)).x0_hat;
        const b = output.location === "cpu" || !output.getData ? output.data : await output.getData();
        entry.theirs.push(performance.now() - started);
        if (round === 0) {
          let worst = 0;
          for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
          entry.maxAbsDiff = worst;
        }
      }
      await session.release?.();
    } catch (error) {
      entry.error = String(error?.stack ?? error);
    }
    results.push(entry);
  }
  ours.free();
  return { info, results };
}

const plain = await serve(false);
const isolated = await serve(true);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: FLAGS });
const runs = [];
const loadBefore = loadavg()[0];
try {
  const version = browser.version();
  for (const config of configs) {
    const settings = {
      "wasm-1t": { backend: "wasm", threads: 1, server: plain, sizes, repeats },
      "wasm-2t": { backend: "wasm", threads: 2, server: isolated, sizes, repeats },
      webgpu: { backend: "webgpu", threads: 1, server: plain, sizes: webgpuSizes, repeats: webgpuRepeats },
    }[config];
    if (!settings) throw new Error(`unknown config ${config}`);
    // A fresh context (its own profile state) and page per configuration.
    const context = await browser.newContext();
    const page = await context.newPage();
    const console_ = [];
    page.on("console", (message) => { if (["error", "warning"].includes(message.type())) console_.push(message.text()); });
    page.on("pageerror", (error) => console_.push(String(error)));
    await page.goto(`${settings.server.origin}/bench/onnx/web/index.html`);
    let run;
    try {
      run = await page.evaluate(pageRun, { backend: settings.backend, threads: settings.threads, sizes: settings.sizes, repeats: settings.repeats, tFraction: T_FRACTION });
    } catch (error) {
      run = { error: String(error?.message ?? error), results: [] };
    }
    run.config = config;
    run.threads = settings.threads;
    run.repeats = settings.repeats;
    run.console = console_.slice(0, 20);
    runs.push(run);
    for (const entry of run.results) {
      const fmt = (list) => list.map((v) => v.toFixed(0)).join(" ");
      console.log(`${config} ${entry.width}x${entry.height}: ours ${fmt(entry.ours)} ms | onnxruntime-web ${fmt(entry.theirs)} ms | max |diff| ${entry.maxAbsDiff?.toExponential(2)}${entry.error ? ` | ERROR ${entry.error.split("\n")[0]}` : ""}`);
    }
    if (run.error) console.log(`${config}: ERROR ${run.error}`);
    await context.close();
  }
  const summary = {
    date: new Date().toISOString(), chromium: version, cpu: cpus()[0]?.model, cores: cpus().length,
    loadBefore, loadAfter: loadavg()[0], runs,
  };
  if (jsonPath) writeFileSync(jsonPath, `${JSON.stringify(summary, null, 2)}\n`);
} finally {
  await browser.close();
  await plain.close();
  await isolated.close();
}
