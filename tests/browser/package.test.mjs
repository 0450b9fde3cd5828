// The npm package in a real browser: both backends against native output,
// progress, abort, errors, the worker, queued calls, GPU memory over repeated
// calls, and the published sizes.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { statSync, readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { startServer, launch, nativeReference, root } from "./harness.mjs";
import { LIMITS } from "./budgets.mjs";

const STEPS = 2;
// The ensemble case runs on the non-square crop, so transposed orientations
// change the tile's shape; one step keeps SwiftShader's time in bounds.
const CASES = [
  { fixture: "crop-64x64.png", steps: STEPS, ensemble: "off" },
  { fixture: "crop-130x70.png", steps: STEPS, ensemble: "off" },
  { fixture: "crop-130x70.png", steps: 1, ensemble: "dihedral" },
];
let server;
before(async () => {
  server = await startServer();
});
after(async () => server?.close());

async function openPage(browser) {
  const page = await browser.newPage();
  const messages = [];
  page.on("console", (message) => messages.push(message.text()));
  page.on("pageerror", (error) => messages.push(`pageerror: ${error.message}`));
  await page.goto(`${server.origin}/tests/browser/index.html`);
  await page.waitForFunction(() => window.ready === true);
  return { page, messages };
}

for (const backend of ["webgpu", "cpu"]) {
  test(`${backend} backend matches native CPU output within 2/255`, { timeout: 600_000 }, async () => {
    const browser = await launch({ webgpu: backend === "webgpu" });
    try {
      const { page, messages } = await openPage(browser);
      for (const { fixture, steps, ensemble } of CASES) {
        const reference = nativeReference(fixture, steps, ensemble);
        const result = await page.evaluate(async ({ backend, fixture, reference, steps, ensemble }) => {
          const { Denoiser } = await import("/pkg/index.js");
          const denoiser = await Denoiser.load({ backend });
          const input = await window.loadPixels(`/tests/browser/fixtures/${fixture}`);
          const started = performance.now();
          const fractions = [];
          const output = await denoiser.denoise(input, { steps, ensemble, onProgress: (p) => fractions.push(p.fraction) });
          const seconds = (performance.now() - started) / 1000;
          const expected = await window.loadPixels(`/${reference}`);
          const alphaKept = output.data.every((v, i) => i % 4 !== 3 || v === input.data[i]);
          const used = denoiser.backend;
          denoiser.dispose();
          return { difference: window.maxDifference(output, expected), width: output.width, height: output.height, fractions, seconds, alphaKept, used };
        }, { backend, fixture, reference, steps, ensemble });
        console.log(`${backend} ${fixture} ${steps} steps, ensemble ${ensemble}: max difference ${result.difference}/255, ${result.seconds.toFixed(2)} s`);
        assert.equal(result.used, backend);
        assert.ok(result.difference <= 2, `${fixture} (ensemble ${ensemble}): differs by ${result.difference}/255\n${messages.join("\n")}`);
        assert.ok(result.alphaKept);
        const increasing = result.fractions.every((f, i) => i === 0 || f >= result.fractions[i - 1]);
        assert.ok(increasing, `fractions not increasing: ${result.fractions}`);
        assert.equal(result.fractions.at(-1), 1);
      }
    } finally {
      await browser.close();
    }
  });
}

test("abort, bad inputs and bad weights reject with named errors; the Denoiser keeps working", { timeout: 600_000 }, async () => {
  const browser = await launch({ webgpu: false });
  try {
    const { page } = await openPage(browser);
    const outcome = await page.evaluate(async () => {
      const { Denoiser } = await import("/pkg/index.js");
      const denoiser = await Denoiser.load({ backend: "cpu" });
      const input = await window.loadPixels("/tests/browser/fixtures/crop-64x64.png");
      const names = {};
      const controller = new AbortController();
      try {
        await denoiser.denoise(input, { steps: 4, signal: controller.signal, onProgress: (p) => p.step >= 1 && controller.abort() });
      } catch (error) {
        names.abort = error.name;
      }
      const after = await denoiser.denoise(input, { steps: 1 });
      try {
        await denoiser.denoise(input, { steps: 1, ensemble: "rotations" });
      } catch (error) {
        names.badEnsemble = `${error.name}: ${error.message}`;
      }
      for (const [key, image] of Object.entries({
        wrongLength: { data: new Uint8Array(10), width: 4, height: 4 },
        zeroWidth: { data: new Uint8Array(0), width: 0, height: 4 },
      })) {
        try {
          await denoiser.denoise(image);
        } catch (error) {
          names[key] = error.name;
        }
      }
      try {
        await Denoiser.load({ backend: "cpu", weights: new Uint8Array([1, 2, 3, 4, 5]) });
      } catch (error) {
        names.weights = error.name;
      }
      try {
        await Denoiser.load({ backend: "webgpu" });
      } catch (error) {
        names.webgpu = error.name;
      }
      // Two calls at once are queued, not refused.
      const [a, b] = await Promise.all([denoiser.denoise(input, { steps: 1 }), denoiser.denoise(input, { steps: 1 })]);
      return { names, afterAbortWidth: after.width, concurrent: [a.width, b.width] };
    });
    assert.deepEqual(outcome.names, {
      abort: "AbortError", wrongLength: "InputError", zeroWidth: "InputError",
      badEnsemble: 'InputError: ensemble must be "off", "flips" or "dihedral" (got the string "rotations")',
      weights: "WeightsError", webgpu: "WebGpuUnavailableError",
    });
    assert.equal(outcome.afterAbortWidth, 64);
    assert.deepEqual(outcome.concurrent, [64, 64]);
  } finally {
    await browser.close();
  }
});

// The module needs WebAssembly SIMD; a browser without it gets a named error
// that says so instead of the module's CompileError. Chromium has SIMD, so
// the page pretends it has not: WebAssembly.validate answers false for the
// package's probe module (and only for a module that uses a v128 type).
test("without WebAssembly SIMD, load rejects with UnsupportedBrowserError", { timeout: 120_000 }, async () => {
  const browser = await launch({ webgpu: false });
  try {
    const { page } = await openPage(browser);
    const outcome = await page.evaluate(async () => {
      const validate = WebAssembly.validate;
      const probed = [];
      WebAssembly.validate = (bytes) => {
        const usesV128 = Array.from(bytes).includes(0x7b);
        probed.push(usesV128);
        return usesV128 ? false : validate(bytes);
      };
      const { Denoiser } = await import("/pkg/index.js");
      try {
        await Denoiser.load({ backend: "cpu" });
        return { loaded: true, probed };
      } catch (error) {
        return { name: error.name, message: error.message, probed };
      }
    });
    assert.equal(outcome.name, "UnsupportedBrowserError", JSON.stringify(outcome));
    assert.match(outcome.message, /WebAssembly SIMD/);
    assert.deepEqual(outcome.probed, [true]);
  } finally {
    await browser.close();
  }
});

// Headless Chromium's only WebGPU adapter is SwiftShader, a GPU emulated on
// the CPU and much slower than the package's SIMD CPU path: "auto" must not
// pick it, and must say why; an explicit "webgpu" still uses it. Then mocked
// adapters: an older browser's requestAdapterInfo() naming llvmpipe, and a
// bare isFallbackAdapter.
test("auto never picks a software WebGPU adapter: CPU with the reason; explicit webgpu still uses it", { timeout: 600_000 }, async () => {
  const browser = await launch({ webgpu: true });
  try {
    const { page, messages } = await openPage(browser);
    const result = await page.evaluate(async () => {
      const { Denoiser } = await import("/pkg/index.js");
      const input = await window.loadPixels("/tests/browser/fixtures/crop-64x64.png");
      const stages = [];
      const auto = await Denoiser.load({ onProgress: (p) => stages.push(p) });
      const autoOut = await auto.denoise(input, { steps: 1 });
      const explicit = await Denoiser.load({ backend: "webgpu" });
      const explicitOut = await explicit.denoise(input, { steps: 1 });
      const worker = new Worker("/pkg/worker.js", { type: "module" });
      const loaded = await new Promise((resolve) => {
        worker.onmessage = ({ data }) => data.type !== "progress" && resolve(data);
        worker.postMessage({ id: 1, type: "load" });
      });
      worker.terminate();
      const mocked = async (adapter) => {
        const gpu = navigator.gpu;
        Object.defineProperty(navigator, "gpu", { configurable: true, value: { requestAdapter: async () => adapter } });
        try {
          const denoiser = await Denoiser.load({ backend: "auto" });
          return `${denoiser.backend}: ${denoiser.backendReason}`;
        } finally {
          Object.defineProperty(navigator, "gpu", { configurable: true, value: gpu });
        }
      };
      return {
        auto: { backend: auto.backend, reason: auto.backendReason, memory: auto.memoryUsage(), width: autoOut.width },
        backendStage: stages.filter((p) => p.stage === "backend"),
        stages: stages.map((p) => p.stage),
        explicit: { backend: explicit.backend, reason: explicit.backendReason, width: explicitOut.width },
        worker: { type: loaded.type, backend: loaded.backend, reason: loaded.reason },
        llvmpipe: await mocked({ requestAdapterInfo: async () => ({ vendor: "mesa", description: "llvmpipe (LLVM 15.0.7, 256 bits)" }) }),
        fallback: await mocked({ isFallbackAdapter: true, info: { vendor: "", architecture: "" } }),
        cpu: (await Denoiser.load({ backend: "cpu" })).backendReason,
      };
    });
    console.log(JSON.stringify(result, null, 1));
    const software = "the only WebGPU adapter is a software renderer (SwiftShader); the CPU is faster";
    assert.deepEqual(result.auto, { backend: "cpu", reason: software, memory: null, width: 64 }, messages.join("\n"));
    assert.deepEqual(result.backendStage, [{ stage: "backend", fraction: 0.2, backend: "cpu", reason: software }]);
    // "wasm" and "weights" repeat with the bytes received; each stage in order once.
    assert.deepEqual(result.stages.filter((stage, i) => stage !== result.stages[i - 1]), ["init", "wasm", "backend", "weights", "model", "ready"]);
    assert.deepEqual(result.explicit, {
      backend: "webgpu", width: 64,
      reason: "WebGPU was requested; its adapter is a software renderer (SwiftShader), slower than the CPU",
    });
    assert.deepEqual(result.worker, { type: "loaded", backend: "cpu", reason: software });
    assert.equal(result.llvmpipe, "cpu: the only WebGPU adapter is a software renderer (llvmpipe); the CPU is faster");
    assert.equal(result.fallback, "cpu: the only WebGPU adapter is a software renderer (a fallback adapter); the CPU is faster");
    assert.equal(result.cpu, "the CPU backend was requested");
  } finally {
    await browser.close();
  }
});

test("without WebGPU, auto runs on the CPU and says there is no adapter", { timeout: 300_000 }, async () => {
  const browser = await launch({ webgpu: false });
  try {
    const { page } = await openPage(browser);
    const result = await page.evaluate(async () => {
      const { Denoiser } = await import("/pkg/index.js");
      const denoiser = await Denoiser.load();
      return `${denoiser.backend}: ${denoiser.backendReason}`;
    });
    assert.equal(result, "cpu: this browser exposes no WebGPU adapter");
  } finally {
    await browser.close();
  }
});

test("the worker entry round-trips an image", { timeout: 600_000 }, async () => {
  const browser = await launch({ webgpu: false });
  try {
    const { page } = await openPage(browser);
    const result = await page.evaluate(async () => {
      const input = await window.loadPixels("/tests/browser/fixtures/crop-130x70.png");
      const worker = new Worker("/pkg/worker.js", { type: "module" });
      const replies = [];
      const done = new Promise((resolve, reject) => {
        worker.onmessage = ({ data }) => {
          replies.push(data.type);
          if (data.type === "loaded") {
            worker.postMessage({ id: 2, type: "denoise", image: { data: input.data, width: input.width, height: input.height }, options: { steps: 1 } });
          } else if (data.type === "result") resolve(data.image);
          else if (data.type === "error") reject(new Error(`${data.name}: ${data.message}`));
        };
      });
      worker.postMessage({ id: 1, type: "load", backend: "cpu" });
      const image = await done;
      const memory = await new Promise((resolve) => {
        worker.onmessage = ({ data }) => data.type === "memory" && resolve(data);
        worker.postMessage({ id: 3, type: "memory" });
      });
      const disposed = await new Promise((resolve) => {
        worker.onmessage = ({ data }) => resolve(data);
        worker.postMessage({ id: 4, type: "dispose" });
      });
      worker.terminate();
      return {
        width: image.width, height: image.height, length: image.data.length, sawProgress: replies.includes("progress"),
        memory: { id: memory.id, usage: memory.usage }, disposed: { id: disposed.id, type: disposed.type },
      };
    });
    assert.deepEqual(result, {
      width: 130, height: 70, length: 130 * 70 * 4, sawProgress: true,
      memory: { id: 3, usage: null }, disposed: { id: 4, type: "disposed" },
    });
  } finally {
    await browser.close();
  }
});

// In-use bytes after each call may differ from the post-load level by at most
// this much: room for a small staging or uniform buffer the runtime keeps
// between calls, but far below one 64x64 activation (16 x 64 x 64 x 4 B
// = 262 kB), so a leaked activation per call still fails. (Measured on
// SwiftShader: in-use returns exactly to the weights, 210 tensors.)
const IN_USE_TOLERANCE = 64 * 1024;

test("ten WebGPU denoise calls do not grow GPU memory; dispose frees it", { timeout: 600_000 }, async () => {
  const browser = await launch({ webgpu: true });
  try {
    const { page, messages } = await openPage(browser);
    const outcome = await page.evaluate(async () => {
      const { Denoiser } = await import("/pkg/index.js");
      const denoiser = await Denoiser.load({ backend: "webgpu" });
      const input = await window.loadPixels("/tests/browser/fixtures/crop-64x64.png");
      const loaded = denoiser.memoryUsage();
      const calls = [];
      for (let i = 0; i < 10; i++) {
        await denoiser.denoise(input, { steps: 1 });
        calls.push(denoiser.memoryUsage());
      }
      await denoiser.dispose();
      const disposed = denoiser.memoryUsage();
      const cpu = await Denoiser.load({ backend: "cpu" });
      const cpuUsage = cpu.memoryUsage();
      await cpu.dispose();
      return { backend: denoiser.backend, loaded, calls, disposed, cpuUsage };
    });
    const row = (label, u) => `${label.padEnd(10)} inUse ${String(u.bytesInUse).padStart(10)}  reserved ${String(u.bytesReserved).padStart(10)}  allocations ${u.allocations}`;
    console.log(["WebGPU memory (bytes):", row("loaded", outcome.loaded),
      ...outcome.calls.map((u, i) => row(`call ${i + 1}`, u)), row("disposed", outcome.disposed)].join("\n"));
    assert.equal(outcome.backend, "webgpu");
    assert.equal(outcome.cpuUsage, null, "the CPU backend reports no GPU memory");
    const { loaded, calls, disposed } = outcome;
    // The weights live on the GPU: 889,187 f32 parameters at least.
    assert.ok(loaded.bytesInUse >= 889_187 * 4, `post-load in-use ${loaded.bytesInUse}\n${messages.join("\n")}`);
    assert.ok(loaded.bytesReserved >= loaded.bytesInUse);
    // Call 1 may grow the pools (activations); from call 2 on they are reused.
    assert.ok(calls[9].bytesReserved <= calls[1].bytesReserved,
      `reserved grew from ${calls[1].bytesReserved} (call 2) to ${calls[9].bytesReserved} (call 10)`);
    for (const [i, usage] of calls.entries()) {
      assert.ok(Math.abs(usage.bytesInUse - loaded.bytesInUse) <= IN_USE_TOLERANCE,
        `call ${i + 1}: in use ${usage.bytesInUse}, after load ${loaded.bytesInUse}`);
    }
    assert.ok(calls.every((usage) => usage.allocations === loaded.allocations),
      `live allocations after each call: ${calls.map((usage) => usage.allocations)}; after load ${loaded.allocations}`);
    // dispose() frees the weights and hands the free pages back.
    assert.ok(disposed.bytesInUse <= IN_USE_TOLERANCE, `in use after dispose: ${disposed.bytesInUse}`);
    assert.ok(disposed.bytesReserved < calls[9].bytesReserved,
      `reserved after dispose ${disposed.bytesReserved}, before ${calls[9].bytesReserved}`);
  } finally {
    await browser.close();
  }
});

test("published sizes: wasm gzip and weights within budget", () => {
  const wasm = readFileSync(join(root, "pkg/realdenoise_bg.wasm"));
  const gzip = gzipSync(wasm, { level: 9 }).length;
  const weights = statSync(join(root, "pkg/realdenoise.rdnz")).size;
  console.log(`wasm gzip ${gzip} B (limit ${LIMITS.wasmGzipBytes}), weights ${weights} B (limit ${LIMITS.weightsBytes})`);
  assert.ok(gzip <= LIMITS.wasmGzipBytes, `wasm gzip ${gzip} B > ${LIMITS.wasmGzipBytes} B`);
  assert.ok(weights <= LIMITS.weightsBytes, `weights ${weights} B > ${LIMITS.weightsBytes} B`);
});

// --- Robustness: traps, retries, argument checks, callbacks, dispose, worker queue. ---

/** Opens a CPU page (or WebGPU with `webgpu: true`) and runs `body` in it. */
async function inPage(body, arg, { webgpu = false, route } = {}) {
  const browser = await launch({ webgpu });
  try {
    const page = await browser.newPage();
    const messages = [];
    page.on("console", (message) => messages.push(message.text()));
    page.on("pageerror", (error) => messages.push(`pageerror: ${error.message}`));
    if (route) await route(page);
    await page.goto(`${server.origin}/tests/browser/index.html`);
    await page.waitForFunction(() => window.ready === true);
    const result = await page.evaluate(body, arg);
    return { result, messages };
  } finally {
    await browser.close();
  }
}

// Two ways to make the module trap inside Model.load. First, directly: the
// random-number source (crypto.getRandomValues, which getrandom calls when
// burn first initialises parameters in a fresh instance) throws once, so
// Rust panics while holding burn's RNG lock, the state that made every later
// load hang. Then a weights header whose CRC is valid but whose network needs
// 10^9 channels: today's reader panics allocating it; a stricter one refuses
// it with a WeightsError. Either way the promise settles with a named error
// and the next load works.
test("a wasm panic during load rejects with a named error; the next load works", { timeout: 600_000 }, async () => {
  const { result, messages } = await inPage(async () => {
    const { Denoiser } = await import("/pkg/index.js");
    const input = await window.loadPixels("/tests/browser/fixtures/crop-64x64.png");
    const strip = ({ ok, hung, name, message, causeIsRuntimeError }) => ({ ok, hung, name, message, causeIsRuntimeError });
    const works = async (loaded) => (loaded.ok ? (await loaded.value.denoise(input, { steps: 1 })).width : strip(loaded));
    // Provoked trap: the random source fails.
    const getRandomValues = crypto.getRandomValues;
    let randomCalls = 0;
    crypto.getRandomValues = function () {
      randomCalls += 1;
      throw new Error("entropy source unavailable (test)");
    };
    const provoked = strip(await window.outcome(Denoiser.load({ backend: "cpu" }), 120_000));
    crypto.getRandomValues = getRandomValues;
    const first = await window.outcome(Denoiser.load({ backend: "cpu" }), 120_000);
    const afterProvoked = await works(first);
    // The 10^9-channel header.
    const bytes = new Uint8Array(await (await fetch("/pkg/realdenoise.rdnz")).arrayBuffer());
    const huge = window.editWeights(bytes, (header) => { header.model.base_channels = 1_000_000_000; });
    const hugeChannels = strip(await window.outcome(Denoiser.load({ backend: "cpu", weights: huge }), 120_000));
    const afterHuge = await works(await window.outcome(Denoiser.load({ backend: "cpu" }), 120_000));
    // A Denoiser made before a crash lived in the crashed instance: it
    // refuses with a named error instead of hanging; without a crash it works.
    const old = first.ok ? strip(await window.outcome(first.value.denoise(input, { steps: 1 }), 120_000)) : null;
    return { provoked, randomCalls, afterProvoked, hugeChannels, afterHuge, old };
  });
  console.log(JSON.stringify(result, null, 1));
  const { provoked, afterProvoked, hugeChannels, afterHuge, old } = result;
  assert.ok(result.randomCalls > 0, "loading no longer asks crypto.getRandomValues: provoke the trap another way");
  assert.ok(!provoked.hung, `the load that trapped never settled\n${messages.join("\n")}`);
  assert.equal(provoked.name, "InternalError", JSON.stringify(provoked));
  assert.ok(provoked.causeIsRuntimeError, JSON.stringify(provoked));
  assert.equal(afterProvoked, 64, `load after the trap: ${JSON.stringify(afterProvoked)}\n${messages.join("\n")}`);
  assert.ok(!hugeChannels.hung, `load of the 10^9-channel weights never settled\n${messages.join("\n")}`);
  assert.ok(["WeightsError", "InternalError"].includes(hugeChannels.name), JSON.stringify(hugeChannels));
  assert.equal(afterHuge, 64, `load after the bad weights: ${JSON.stringify(afterHuge)}\n${messages.join("\n")}`);
  if (hugeChannels.name === "InternalError") {
    assert.ok(hugeChannels.causeIsRuntimeError);
    assert.equal(old.name, "InternalError", JSON.stringify(old));
  } else {
    assert.ok(old.ok, JSON.stringify(old));
  }
});

// The fresh instance sets WebGPU up again (the crashed one held the device).
test("after a wasm panic during a WebGPU load, the next WebGPU load works", { timeout: 300_000 }, async () => {
  const { result, messages } = await inPage(async () => {
    const { Denoiser } = await import("/pkg/index.js");
    const input = await window.loadPixels("/tests/browser/fixtures/crop-64x64.png");
    const getRandomValues = crypto.getRandomValues;
    crypto.getRandomValues = () => { throw new Error("entropy source unavailable (test)"); };
    const trapped = await window.outcome(Denoiser.load({ backend: "webgpu" }), 120_000);
    crypto.getRandomValues = getRandomValues;
    const denoiser = await Denoiser.load({ backend: "webgpu" });
    const width = (await denoiser.denoise(input, { steps: 1 })).width;
    return { trapped: `${trapped.name}: ${trapped.causeIsRuntimeError}`, backend: denoiser.backend, width, inUse: denoiser.memoryUsage().bytesInUse };
  }, undefined, { webgpu: true });
  console.log(JSON.stringify(result));
  assert.deepEqual({ ...result, inUse: result.inUse > 0 }, { trapped: "InternalError: true", backend: "webgpu", width: 64, inUse: true },
    messages.join("\n"));
});

test("a failed module fetch is not cached: load can be retried", { timeout: 300_000 }, async () => {
  let refused = 0;
  const route = (page) => page.route("**/pkg/realdenoise_bg.wasm", (request) => {
    if (refused++ === 0) return request.fulfill({ status: 404, body: "not found" });
    return request.continue();
  });
  const { result, messages } = await inPage(async () => {
    const { Denoiser } = await import("/pkg/index.js");
    const first = await window.outcome(Denoiser.load({ backend: "cpu" }));
    const second = await window.outcome(Denoiser.load({ backend: "cpu" }));
    const input = await window.loadPixels("/tests/browser/fixtures/crop-64x64.png");
    const width = second.ok ? (await second.value.denoise(input, { steps: 1 })).width : null;
    return { first: { name: first.name, message: first.message }, second: { ok: second.ok, name: second.name, message: second.message }, width };
  }, undefined, { route });
  assert.equal(result.first.name, "InternalError", JSON.stringify(result));
  assert.ok(result.second.ok, `retry failed: ${JSON.stringify(result.second)}\n${messages.join("\n")}`);
  assert.equal(result.width, 64);
});

test("weights: every binary form loads; garbage, truncated, empty and wrong types get named errors", { timeout: 300_000 }, async () => {
  const { result } = await inPage(async () => {
    const { Denoiser } = await import("/pkg/index.js");
    const bytes = new Uint8Array(await (await fetch("/pkg/realdenoise.rdnz")).arrayBuffer());
    const input = await window.loadPixels("/tests/browser/fixtures/crop-64x64.png");
    const forms = {
      uint8Array: bytes, arrayBuffer: bytes.slice().buffer, int8Array: new Int8Array(bytes.slice().buffer),
      dataView: new DataView(bytes.slice().buffer), offsetView: new Uint8Array([9, 9, 9, ...bytes]).subarray(3),
      blob: new Blob([bytes]), response: new Response(bytes), url: "/pkg/realdenoise.rdnz",
      urlObject: new URL("/pkg/realdenoise.rdnz", location.href),
    };
    const loaded = {};
    for (const [key, weights] of Object.entries(forms)) {
      const result = await window.outcome(Denoiser.load({ backend: "cpu", weights }));
      loaded[key] = result.ok ? result.value.info.parameters > 0 : `${result.name}: ${result.message.slice(0, 300)}`;
      if (result.ok) await result.value.dispose();
    }
    const refused = {};
    const bad = {
      garbage: Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919) & 0xff),
      truncated: bytes.subarray(0, bytes.length >> 1), empty: new Uint8Array(0), magicOnly: bytes.subarray(0, 8),
      flippedByte: (() => { const b = bytes.slice(); b[b.length >> 1] ^= 0x40; return b; })(),
      missingUrl: "/pkg/no-such-weights.rdnz",
      hugeUrl: "x".repeat(5_000_000),
      number: 42, plainObject: {}, array: [1, 2, 3], nullValue: null, boolean: true,
    };
    for (const [key, weights] of Object.entries(bad)) {
      const result = await window.outcome(Denoiser.load({ backend: "cpu", weights }));
      refused[key] = result.ok ? "loaded" : { name: result.name, length: result.message.length };
    }
    // The module keeps working after all of that.
    const denoiser = await Denoiser.load({ backend: "cpu", weights: bytes });
    const width = (await denoiser.denoise(input, { steps: 1 })).width;
    return { loaded, refused, width };
  });
  console.log(JSON.stringify(result));
  for (const [key, value] of Object.entries(result.loaded)) assert.equal(value, true, `${key}: ${value}`);
  for (const key of ["garbage", "truncated", "empty", "magicOnly", "flippedByte", "missingUrl", "hugeUrl"]) {
    assert.equal(result.refused[key].name, "WeightsError", `${key}: ${JSON.stringify(result.refused[key])}`);
  }
  for (const key of ["number", "plainObject", "array", "nullValue", "boolean"]) {
    assert.equal(result.refused[key].name, "InputError", `${key}: ${JSON.stringify(result.refused[key])}`);
  }
  for (const [key, value] of Object.entries(result.refused)) {
    assert.ok(value.length < 1000, `${key}: a ${value.length}-character error message`);
  }
  assert.equal(result.width, 64);
});

test("options of the wrong type or range reject with InputErrors naming the option and value", { timeout: 300_000 }, async () => {
  const { result } = await inPage(async () => {
    const { Denoiser } = await import("/pkg/index.js");
    const denoiser = await Denoiser.load({ backend: "cpu" });
    const input = await window.loadPixels("/tests/browser/fixtures/crop-64x64.png");
    const reference = await denoiser.denoise(input, { steps: 1 });
    const cases = {
      "sampler: 42": [input, { sampler: 42 }], "sampler: {}": [input, { sampler: {} }],
      "sampler: 'euler'": [input, { sampler: "euler" }],
      "ensemble: 42": [input, { ensemble: 42 }], "ensemble: null": [input, { ensemble: null }],
      "ensemble: ['off']": [input, { ensemble: ["off"] }], "ensemble: 'rotations'": [input, { ensemble: "rotations" }],
      "steps: 2**32": [input, { steps: 2 ** 32 }], "steps: 2**32 + 1": [input, { steps: 2 ** 32 + 1 }],
      "steps: 10001": [input, { steps: 10001 }], "steps: 0": [input, { steps: 0 }], "steps: 1.5": [input, { steps: 1.5 }],
      "steps: '2'": [input, { steps: "2" }], "steps: NaN": [input, { steps: NaN }],
      "strength: null": [input, { strength: null }], "strength: NaN": [input, { strength: NaN }],
      "strength: 1.5": [input, { strength: 1.5 }], "strength: -0.1": [input, { strength: -0.1 }],
      "strength: '1'": [input, { strength: "1" }],
      "tileSize: -64": [input, { tileSize: -64 }], "tileSize: 64.5": [input, { tileSize: 64.5 }],
      "tileSize: 2**32": [input, { tileSize: 2 ** 32 }], "tileSize: Infinity": [input, { tileSize: Infinity }],
      "onProgress: 1": [input, { onProgress: 1 }], "signal: {}": [input, { signal: {} }],
      "options: 42": [input, 42], "options: null": [input, null], "unknown option": [input, { step: 2 }],
      "width: '4'": [{ data: new Uint8Array(64), width: "4", height: 4 }, {}],
      "width: NaN": [{ data: new Uint8Array(64), width: NaN, height: 4 }, {}],
      "height: -4": [{ data: new Uint8Array(64), width: 4, height: -4 }, {}],
      "data: array": [{ data: Array(64).fill(0), width: 4, height: 4 }, {}],
      "image: null": [null, {}], "image: 42": [42, {}],
    };
    const outcomes = {};
    for (const [key, [image, options]] of Object.entries(cases)) {
      const result = await window.outcome(denoiser.denoise(image, options));
      outcomes[key] = result.ok ? "ran" : `${result.name}: ${result.message}`;
    }
    const after = await denoiser.denoise(input, { steps: 1 });
    return { outcomes, difference: window.maxDifference(after, reference) };
  });
  console.log(JSON.stringify(result.outcomes, null, 1));
  for (const [key, outcome] of Object.entries(result.outcomes)) {
    assert.match(outcome, /^InputError: /, key);
    const option = key.split(":")[0].replace("unknown option", "step");
    assert.ok(outcome.includes(option), `${key}: the message does not name ${option}: ${outcome}`);
  }
  assert.match(result.outcomes["width: '4'"], /the string "4"/);
  assert.match(result.outcomes["steps: 2**32 + 1"], /4294967297/);
  assert.equal(result.difference, 0);
});

// Seeded mutation test: a few hundred option objects and image shapes, many
// of the wrong type; each must either run or reject with an InputError.
// Long mode: REALDENOISE_FUZZ_CASES=100000 (and REALDENOISE_FUZZ_SEED) runs
// more cases; valid ones stay cheap (images of at most 16x16 pixels, 1 step
// unless `steps` is left out, which uses the weights' default).
const FUZZ_CASES = Number(process.env.REALDENOISE_FUZZ_CASES ?? 300);
const FUZZ_SEED = Number(process.env.REALDENOISE_FUZZ_SEED ?? 20261201);
if (!Number.isInteger(FUZZ_CASES) || FUZZ_CASES < 1) throw new Error(`REALDENOISE_FUZZ_CASES must be a positive integer (got ${process.env.REALDENOISE_FUZZ_CASES})`);
test("JS denoise argument checks fuzz", { timeout: Math.max(600_000, FUZZ_CASES * 50) }, async () => {
  const { result, messages } = await inPage(async ({ seed, count }) => {
    const { Denoiser } = await import("/pkg/index.js");
    const denoiser = await Denoiser.load({ backend: "cpu" });
    const fixture = await window.loadPixels("/tests/browser/fixtures/crop-64x64.png");
    const reference = await denoiser.denoise(fixture, { steps: 1 });
    let state = seed >>> 0; // mulberry32
    const random = () => {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = Math.imul(state ^ (state >>> 15), 1 | state);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const pick = (list) => list[Math.floor(random() * list.length)];
    const long = "x".repeat(100_000);
    const wrong = () => pick([
      "4", "", "off ", "1e3", "improved\u0000", long, NaN, Infinity, -Infinity, -1, -0.5, 0.5, 1.5,
      2 ** 31, 2 ** 32, 2 ** 32 + 1, 2 ** 53, -(2 ** 31), 1e308, Number.MIN_VALUE, null, {}, [], ["off"], [1], [NaN],
      true, false, () => 1, Symbol("s"), 10n, new Date(0), new Uint8Array(4), { valueOf: () => 2 }, { toString: () => "off" },
    ]);
    const valid = {
      steps: [1], sampler: ["improved", "origin"], ensemble: ["off", "flips"], strength: [0, 0.5, 1],
      tileSize: [0, 48, 2048], onProgress: [() => {}], signal: [new AbortController().signal],
    };
    const small = (width, height) => ({ data: new Uint8ClampedArray(width * height * 4).fill(128), width, height });
    const makeImage = () => {
      if (random() < 0.7) return pick([small(8, 8), small(12, 7), small(16, 16)]);
      const width = random() < 0.5 ? wrong() : pick([8, 12]);
      const height = random() < 0.5 ? wrong() : pick([8, 7]);
      const data = random() < 0.3 ? wrong() : new Uint8Array(random() < 0.5 ? 8 * 8 * 4 : 17);
      return pick([{ data, width, height }, wrong(), { data, width }, { width, height }]);
    };
    const makeOptions = () => {
      if (random() < 0.05) return wrong();
      const options = {};
      for (const [key, values] of Object.entries(valid)) {
        const r = random();
        if (r < 0.5) continue;
        options[key] = r < 0.8 ? pick(values) : wrong();
      }
      return options;
    };
    const label = (value) => {
      try {
        return typeof value === "symbol" || typeof value === "bigint" ? String(value) : JSON.stringify(value, (k, v) =>
          typeof v === "number" && !Number.isFinite(v) ? String(v) : typeof v === "string" && v.length > 20 ? `${v.slice(0, 20)}…` :
          typeof v === "function" ? "fn" : typeof v === "bigint" ? `${v}n` : typeof v === "symbol" ? String(v) : v);
      } catch {
        return String(value);
      }
    };
    const tally = { ran: 0, inputErrors: 0, inputErrorsBySubject: {} };
    const failures = [];
    for (let i = 0; i < count; i++) {
      const image = makeImage();
      const options = makeOptions();
      const result = await window.outcome(denoiser.denoise(image, options), 60_000);
      if (result.ok) tally.ran += 1;
      else if (result.name === "InputError") {
        tally.inputErrors += 1;
        const subject = result.message.split(" ")[0];
        tally.inputErrorsBySubject[subject] = (tally.inputErrorsBySubject[subject] ?? 0) + 1;
      }
      else failures.push(`case ${i}: ${result.hung ? "never settled" : `${result.name}: ${result.message.slice(0, 200)}`} for image ${label(image?.data ? { ...image, data: `${image.data?.constructor?.name}(${image.data?.length})` } : image).slice(0, 200)}, options ${label(options).slice(0, 300)}`);
      if (failures.length > 10) break;
    }
    const after = await denoiser.denoise(fixture, { steps: 1 });
    return { tally, failures, difference: window.maxDifference(after, reference) };
  }, { seed: FUZZ_SEED, count: FUZZ_CASES });
  console.log(`fuzz (seed ${FUZZ_SEED}, ${FUZZ_CASES} cases): ${result.tally.ran} ran, ${result.tally.inputErrors} InputErrors, ${result.failures.length} other outcomes; InputErrors by subject ${JSON.stringify(result.tally.inputErrorsBySubject)}`);
  assert.deepEqual(result.failures, [], `${result.failures.join("\n")}\n${messages.slice(-20).join("\n")}`);
  assert.ok(result.tally.ran > 20 && result.tally.inputErrors > 100, JSON.stringify(result.tally));
  assert.equal(result.difference, 0, "the Denoiser's output changed after the fuzz");
});

test("callbacks, abort, dispose and concurrency: named errors, the Denoiser keeps working", { timeout: 300_000 }, async () => {
  const { result } = await inPage(async () => {
    const { Denoiser } = await import("/pkg/index.js");
    const input = await window.loadPixels("/tests/browser/fixtures/crop-64x64.png");
    const denoiser = await Denoiser.load({ backend: "cpu" });
    const reference = await denoiser.denoise(input, { steps: 1 });
    const same = (output) => window.maxDifference(output, reference);
    const out = {};
    // An exception thrown by onProgress is what the call rejects with.
    const thrown = new RangeError("from onProgress");
    const fromCallback = await window.outcome(denoiser.denoise(input, { steps: 2, onProgress: () => { throw thrown; } }));
    out.callbackError = `${fromCallback.name}: ${fromCallback.message}`;
    let identical = false;
    await denoiser.denoise(input, { steps: 2, onProgress: () => { throw thrown; } }).catch((error) => { identical = error === thrown; });
    out.callbackErrorIdentical = identical;
    out.afterCallback = same(await denoiser.denoise(input, { steps: 1 }));
    // An already-aborted signal; abort during a run; then a normal run.
    const aborted = new AbortController();
    aborted.abort();
    out.preAborted = (await window.outcome(denoiser.denoise(input, { steps: 1, signal: aborted.signal }))).name;
    const controller = new AbortController();
    out.midAbort = (await window.outcome(denoiser.denoise(input, { steps: 3, signal: controller.signal, onProgress: (p) => p.step >= 1 && controller.abort() }))).name;
    out.afterAbort = same(await denoiser.denoise(input, { steps: 1 }));
    // Concurrent calls are queued; one of them aborted while waiting.
    const waiting = new AbortController();
    const calls = [
      denoiser.denoise(input, { steps: 1 }),
      denoiser.denoise(input, { steps: 1, signal: waiting.signal }),
      denoiser.denoise(input, { steps: "x" }),
      denoiser.denoise(input, { steps: 1 }),
    ];
    waiting.abort();
    const settled = await Promise.all(calls.map((p) => window.outcome(p)));
    out.concurrent = settled.map((r) => (r.ok ? same(r.value) : r.name));
    // dispose() waits for the calls queued before it; later calls are refused.
    const queued = [denoiser.denoise(input, { steps: 1 }), denoiser.denoise(input, { steps: 1 })];
    const disposed = denoiser.dispose();
    const late = await window.outcome(denoiser.denoise(input, { steps: 1 }));
    out.queuedBeforeDispose = (await Promise.all(queued.map((p) => window.outcome(p)))).map((r) => (r.ok ? same(r.value) : r.name));
    out.late = `${late.name}: ${late.message}`;
    out.disposeResolved = (await window.outcome(disposed)).ok;
    out.disposeAgain = (await window.outcome(denoiser.dispose())).ok;
    return out;
  });
  console.log(JSON.stringify(result));
  assert.deepEqual(result, {
    callbackError: "RangeError: from onProgress", callbackErrorIdentical: true, afterCallback: 0,
    preAborted: "AbortError", midAbort: "AbortError", afterAbort: 0,
    concurrent: [0, "AbortError", "InputError", 0],
    queuedBeforeDispose: [0, 0], late: "InputError: this Denoiser was disposed; load a new one",
    disposeResolved: true, disposeAgain: true,
  });
});

// JS heap: CDP's Runtime.getHeapUsage after a forced garbage collection.
// WebAssembly memory: the module's linear memory (it never shrinks, but must
// stop growing). GPU memory: the device pools' in-use bytes (SwiftShader is
// slow: 10 runs there).
test("100 sequential denoises keep JS heap and GPU memory flat", { timeout: 600_000 }, async () => {
  const measure = async (webgpu, runs) => {
    const browser = await launch({ webgpu });
    try {
      const page = await browser.newPage();
      await page.goto(`${server.origin}/tests/browser/index.html`);
      await page.waitForFunction(() => window.ready === true);
      const cdp = await page.context().newCDPSession(page);
      const heap = async () => {
        await cdp.send("HeapProfiler.collectGarbage");
        return (await cdp.send("Runtime.getHeapUsage")).usedSize;
      };
      await page.evaluate(async (backend) => {
        const { Denoiser } = await import("/pkg/index.js");
        const glue = await import("/pkg/realdenoise.js");
        window.wasmMemory = () => glue.default().then((wasm) => wasm.memory.buffer.byteLength);
        window.denoiser = await Denoiser.load({ backend });
        const pixels = new Uint8ClampedArray(32 * 32 * 4);
        for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) >>> 24;
        window.image = { data: pixels, width: 32, height: 32 };
        window.run = async (count) => {
          for (let i = 0; i < count; i++) await window.denoiser.denoise(window.image, { steps: 1 });
        };
      }, webgpu ? "webgpu" : "cpu");
      const rows = [];
      const sample = async (label) => rows.push({
        label, heap: await heap(), wasm: await page.evaluate(() => window.wasmMemory()),
        gpu: await page.evaluate(() => window.denoiser.memoryUsage()?.bytesInUse ?? null),
      });
      await page.evaluate(() => window.run(1)); // sizes the pools and caches
      await sample("after 1");
      const chunk = Math.max(1, runs / 5);
      for (let done = 1; done < runs; done += chunk) {
        await page.evaluate((count) => window.run(count), Math.min(chunk, runs - done));
        await sample(`after ${Math.min(done + chunk, runs)}`);
      }
      return rows;
    } finally {
      await browser.close();
    }
  };
  const cpu = await measure(false, 100);
  const gpu = await measure(true, 10);
  for (const [name, rows] of [["CPU", cpu], ["WebGPU", gpu]]) {
    console.log(`${name}: ${rows.map((r) => `${r.label}: JS heap ${(r.heap / 1e6).toFixed(2)} MB, wasm ${(r.wasm / 1e6).toFixed(1)} MB${r.gpu === null ? "" : `, GPU in use ${r.gpu} B`}`).join("\n  ")}`);
  }
  for (const rows of [cpu, gpu]) {
    const [first, last] = [rows[0], rows.at(-1)];
    // Measured: +80 kB over 100 CPU calls, +80 kB over 10 WebGPU calls; a
    // leaked 32x32 output (4 kB) per call would add 400 kB over 100.
    assert.ok(last.heap - first.heap < 256 * 1024, `JS heap grew by ${last.heap - first.heap} B`);
    assert.ok(last.wasm <= rows[1].wasm, `wasm memory grew from ${rows[1].wasm} to ${last.wasm}`);
  }
  assert.ok(gpu.every((r) => Math.abs(r.gpu - gpu[0].gpu) <= IN_USE_TOLERANCE), `GPU in-use bytes changed: ${gpu.map((r) => r.gpu)}`);
});

test("the worker queues messages in order; cancel is immediate; a failed load keeps the model", { timeout: 600_000 }, async () => {
  const { result } = await inPage(async () => {
    const input = await window.loadPixels("/tests/browser/fixtures/crop-64x64.png");
    const worker = new Worker("/pkg/worker.js", { type: "module" });
    const replies = [];
    const waiters = new Map();
    worker.onmessage = ({ data }) => {
      if (data.type !== "progress") replies.push(`${data.id}:${data.type}${data.type === "error" ? `:${data.name}` : ""}`);
      if (data.type === "progress" && data.progress.stage === "denoise") waiters.get(`progress:${data.id}`)?.();
      if (data.type !== "progress") waiters.get(data.id)?.(data);
    };
    const answer = (id) => new Promise((resolve) => waiters.set(id, resolve));
    const image = () => ({ data: input.data.slice(), width: input.width, height: input.height });
    // load and denoise posted at once.
    const loaded = answer(1);
    const first = answer(2);
    worker.postMessage({ id: 1, type: "load", backend: "cpu" });
    worker.postMessage({ id: 2, type: "denoise", image: image(), options: { steps: 1 } });
    await loaded;
    const firstResult = await first;
    // A long run cancelled as soon as it reports progress; a queued one cancelled before it starts.
    const started = new Promise((resolve) => waiters.set("progress:3", resolve));
    const long = answer(3);
    const queued = answer(4);
    const afterCancel = answer(5);
    worker.postMessage({ id: 3, type: "denoise", image: image(), options: { steps: 50 } });
    worker.postMessage({ id: 4, type: "denoise", image: image(), options: { steps: 50 } });
    worker.postMessage({ id: 5, type: "denoise", image: image(), options: { steps: 1 } });
    worker.postMessage({ id: 6, type: "cancel", target: 4 });
    await started;
    const cancelledAt = performance.now();
    worker.postMessage({ id: 7, type: "cancel", target: 3 });
    const longReply = await long;
    const cancelSeconds = (performance.now() - cancelledAt) / 1000;
    const queuedReply = await queued;
    const afterCancelReply = await afterCancel;
    // A failed load keeps the model loaded before it.
    const badLoad = answer(8);
    const afterBad = answer(9);
    worker.postMessage({ id: 8, type: "load", backend: "cpu", weights: new Uint8Array([1, 2, 3]) });
    worker.postMessage({ id: 9, type: "denoise", image: image(), options: { steps: 1 } });
    const badReply = await badLoad;
    const afterBadReply = await afterBad;
    const badOptions = answer(10);
    worker.postMessage({ id: 10, type: "denoise", image: image(), options: { sampler: 42 } });
    const badOptionsReply = await badOptions;
    worker.terminate();
    const same = (reply) => reply.type === "result" && window.maxDifference(reply.image, firstResult.image) === 0;
    return {
      firstType: firstResult.type, cancel: `${longReply.type}:${longReply.name}`, cancelSeconds,
      queued: `${queuedReply.type}:${queuedReply.name}`, afterCancelSame: same(afterCancelReply),
      badLoad: `${badReply.type}:${badReply.name}`, afterBadSame: same(afterBadReply),
      badOptions: `${badOptionsReply.type}:${badOptionsReply.name}`, order: replies,
    };
  });
  console.log(JSON.stringify(result));
  assert.equal(result.firstType, "result", JSON.stringify(result));
  assert.equal(result.cancel, "error:AbortError");
  assert.ok(result.cancelSeconds < 30, `cancel took ${result.cancelSeconds} s`);
  assert.equal(result.queued, "error:AbortError");
  assert.ok(result.afterCancelSame);
  assert.equal(result.badLoad, "error:WeightsError");
  assert.ok(result.afterBadSame, "the model loaded before the failed load is gone");
  assert.equal(result.badOptions, "error:InputError");
  assert.deepEqual(result.order, ["1:loaded", "2:result", "3:error:AbortError", "4:error:AbortError", "5:result",
    "8:error:WeightsError", "9:result", "10:error:InputError"]);
});

// In the worker too: the 10^9-channel weights trap today's reader (or get a
// WeightsError from a stricter one); the reply is a named error either way,
// and a following load and denoise work.
test("the worker answers a wasm panic during load with a named error; the next load works", { timeout: 300_000 }, async () => {
  const { result } = await inPage(async () => {
    const input = await window.loadPixels("/tests/browser/fixtures/crop-64x64.png");
    const bytes = new Uint8Array(await (await fetch("/pkg/realdenoise.rdnz")).arrayBuffer());
    const huge = window.editWeights(bytes, (header) => { header.model.base_channels = 1_000_000_000; });
    const worker = new Worker("/pkg/worker.js", { type: "module" });
    const waiters = new Map();
    worker.onmessage = ({ data }) => data.type !== "progress" && waiters.get(data.id)?.(data);
    const ask = (message, ms = 120_000) => new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ type: "hung" }), ms);
      waiters.set(message.id, (data) => { clearTimeout(timer); resolve(data); });
      worker.postMessage(message);
    });
    const first = await ask({ id: 1, type: "load", backend: "cpu" });
    const bad = await ask({ id: 2, type: "load", backend: "cpu", weights: huge });
    const reload = await ask({ id: 3, type: "load", backend: "cpu" });
    const image = { data: input.data.slice(), width: input.width, height: input.height };
    const denoised = await ask({ id: 4, type: "denoise", image, options: { steps: 1 } });
    worker.terminate();
    return { first: first.type, bad: `${bad.type}:${bad.name}`, reload: reload.type, denoised: denoised.type, width: denoised.image?.width };
  });
  console.log(JSON.stringify(result));
  assert.ok(["error:WeightsError", "error:InternalError"].includes(result.bad), JSON.stringify(result));
  assert.deepEqual({ ...result, bad: "named" }, { first: "loaded", bad: "named", reload: "loaded", denoised: "result", width: 64 });
});

// The CPU worker pool (realdenoise/worker-client): a photo too small for two
// single-run tiles is cut into smaller ones for two workers, each worker
// denoises whole tiles, and the page blends their unquantised outputs with
// the library's weights; the result must match the native CLI (one tile of
// the whole photo) within 2/255, as the single-worker path does. Also:
// progress per tile step, steps counted from 1, and an estimate before the
// run (calibrated on one small tile), whose error is logged.
test("a pool of two CPU workers shares the tiles and matches native output; progress and estimate", { timeout: 600_000 }, async () => {
  const fixture = "assets/sample-noisy.png"; // 451 x 300
  const reference = nativeReference(fixture, 1);
  const browser = await launch({ webgpu: false });
  try {
    const { page, messages } = await openPage(browser);
    const result = await page.evaluate(async ({ fixture, reference }) => {
      const { WorkerDenoiser } = await import("/pkg/worker-client.js");
      const loads = [];
      const client = await WorkerDenoiser.load({ backend: "cpu", workers: 2, onProgress: (p) => loads.push(p.stage) });
      const input = await window.loadPixels(`/${fixture}`);
      const estimate = await client.estimate(input.width, input.height, { steps: 1 });
      const events = [];
      const started = performance.now();
      const output = await client.denoise(input, { steps: 1, onProgress: (p) => events.push(p) });
      const seconds = (performance.now() - started) / 1000;
      const expected = await window.loadPixels(`/${reference}`);
      const alphaKept = output.data.every((v, i) => i % 4 !== 3 || v === input.data[i]);
      const second = await client.estimate(input.width, input.height, { steps: 1 });
      const workers = client.workers;
      await client.dispose();
      return { difference: window.maxDifference(output, expected), alphaKept, events, seconds, estimate, second, workers, loads };
    }, { fixture, reference });
    const { events, estimate } = result;
    console.log(`pool of ${result.workers}: ${events[0].tiles} tiles, max difference ${result.difference}/255, ${result.seconds.toFixed(2)} s; ` +
      `estimate before the run ${estimate.seconds.toFixed(2)} s (${estimate.basis}), error ${((estimate.seconds / result.seconds - 1) * 100).toFixed(0)} %; ` +
      `after it ${result.second.seconds.toFixed(2)} s (${result.second.basis})`);
    assert.equal(result.workers, 2);
    assert.deepEqual(result.loads.slice(-3), ["workers", "workers", "ready"]);
    assert.ok(result.difference <= 2, `pooled output differs from native by ${result.difference}/255\n${messages.join("\n")}`);
    assert.ok(result.alphaKept);
    // Two tiles of about 280 x 300 instead of one of 451 x 300.
    assert.equal(events[0].tiles, 2);
    assert.equal(estimate.tiles, 2);
    assert.equal(estimate.workers, 2);
    assert.equal(estimate.basis, "calibration");
    assert.ok(estimate.seconds > 0);
    // Progress: every event is a denoise event of 2 workers; fractions never
    // go back, reach 1, and move between the run's start and its end.
    assert.ok(events.every((p) => p.stage === "denoise" && p.workers === 2 && p.tiles === 2));
    const fractions = events.map((p) => p.fraction);
    assert.ok(fractions.every((f, i) => i === 0 || f >= fractions[i - 1]), `fractions went back: ${fractions}`);
    assert.equal(fractions.at(-1), 1);
    assert.ok(fractions.some((f) => f > 0 && f < 1), `no progress within the run: ${fractions}`);
    assert.deepEqual([...new Set(events.map((p) => p.tilesDone))].sort(), [0, 1, 2]);
    // The second estimate uses the speed the run measured: it is the run's time.
    assert.equal(result.second.basis, "run");
    assert.ok(Math.abs(result.second.seconds / result.seconds - 1) < 0.25, `estimate after the run ${result.second.seconds} s vs ${result.seconds} s`);
  } finally {
    await browser.close();
  }
});

// Cancel on WebGPU: the package waits for the GPU at every network
// evaluation, so an abort stops the worker within one evaluation and the
// model stays loaded (no worker replaced, no reload). SwiftShader is slow:
// a 64 px photo and many short steps. The bound guards against the old
// worker replacement and reload (93 s); it is not the speed target. On a fast
// machine Cancel took 0.15-0.34 s; on 2026-12-02's slow CI machine one
// SwiftShader evaluation made it 2.75 s, which a 2 s bound failed.
const CANCEL_LIMIT_MS = 10_000;

test("WebGPU: Cancel returns control within one network evaluation and keeps the model", { timeout: 600_000 }, async () => {
  const browser = await launch({ webgpu: true });
  try {
    const { page, messages } = await openPage(browser);
    const result = await page.evaluate(async () => {
      const { WorkerDenoiser } = await import("/pkg/worker-client.js");
      const client = await WorkerDenoiser.load({ backend: "webgpu" });
      const input = await window.loadPixels("/tests/browser/fixtures/crop-64x64.png");
      // Warm up (the first run compiles the shaders).
      await client.denoise(input, { steps: 1 });
      const controller = new AbortController();
      let aborted = null;
      let stepsSeen = 0;
      const run = client.denoise(input, {
        steps: 60,
        signal: controller.signal,
        onProgress: (p) => {
          stepsSeen = p.step;
          if (p.step >= 3 && aborted === null) {
            aborted = performance.now();
            controller.abort();
          }
        },
      });
      const outcome = await window.outcome(run);
      const rejectedMs = performance.now() - aborted;
      await client.whenIdle();
      const idleMs = performance.now() - aborted;
      const next = await client.denoise(input, { steps: 1 });
      const nextMs = performance.now() - aborted;
      const backend = client.backend;
      await client.dispose();
      return { name: outcome.name, rejectedMs, idleMs, nextMs, stepsSeen, nextWidth: next.width, backend };
    });
    console.log(`WebGPU cancel: rejected after ${result.rejectedMs.toFixed(0)} ms, worker idle after ${result.idleMs.toFixed(0)} ms, ` +
      `next 1-step run done after ${result.nextMs.toFixed(0)} ms (abort at step ${result.stepsSeen} of 60)`);
    assert.equal(result.name, "AbortError");
    assert.equal(result.backend, "webgpu");
    assert.ok(result.stepsSeen < 60, "the run was not cancelled before its end");
    assert.ok(result.rejectedMs < CANCEL_LIMIT_MS, `rejected after ${result.rejectedMs} ms`);
    assert.ok(result.idleMs < CANCEL_LIMIT_MS, `the worker stopped after ${result.idleMs} ms\n${messages.join("\n")}`);
    assert.equal(result.nextWidth, 64);
  } finally {
    await browser.close();
  }
});

// The install paths, the worker client, the tarball and the weights cache
// (issue 23) run with this suite too; `node --test ./install.test.mjs` runs them alone.
await import("./install.test.mjs");
