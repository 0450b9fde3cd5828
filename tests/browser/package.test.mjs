// The npm package in a real browser: both backends against native output,
// progress, abort, errors, the worker, and queued calls.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launch, nativeReference } from "./harness.mjs";

const STEPS = 2;
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
      for (const fixture of ["crop-64x64.png", "crop-130x70.png"]) {
        const reference = nativeReference(fixture, STEPS);
        const result = await page.evaluate(async ({ backend, fixture, reference, steps }) => {
          const { Denoiser } = await import("/pkg/index.js");
          const denoiser = await Denoiser.load({ backend });
          const input = await window.loadPixels(`/tests/browser/fixtures/${fixture}`);
          const started = performance.now();
          const fractions = [];
          const output = await denoiser.denoise(input, { steps, onProgress: (p) => fractions.push(p.fraction) });
          const seconds = (performance.now() - started) / 1000;
          const expected = await window.loadPixels(`/${reference}`);
          const alphaKept = output.data.every((v, i) => i % 4 !== 3 || v === input.data[i]);
          const used = denoiser.backend;
          denoiser.dispose();
          return { difference: window.maxDifference(output, expected), width: output.width, height: output.height, fractions, seconds, alphaKept, used };
        }, { backend, fixture, reference, steps: STEPS });
        console.log(`${backend} ${fixture}: max difference ${result.difference}/255, ${result.seconds.toFixed(2)} s`);
        assert.equal(result.used, backend);
        assert.ok(result.difference <= 2, `${fixture}: differs by ${result.difference}/255\n${messages.join("\n")}`);
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
      weights: "WeightsError", webgpu: "WebGpuUnavailableError",
    });
    assert.equal(outcome.afterAbortWidth, 64);
    assert.deepEqual(outcome.concurrent, [64, 64]);
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
      worker.terminate();
      return { width: image.width, height: image.height, length: image.data.length, sawProgress: replies.includes("progress") };
    });
    assert.deepEqual(result, { width: 130, height: 70, length: 130 * 70 * 4, sawProgress: true });
  } finally {
    await browser.close();
  }
});
