// A consumer project (tests/vite-consumer) depends on pkg/ through `file:`,
// installed as a copy the way a registry install would lay it out
// (install-links), bundled with Vite. Its built page, served from dist/,
// denoises an image with the bundled default weights, on the main thread and
// through the package's worker client (realdenoise/worker-client), in Chromium on both backends; the result must
// equal what the package computes when loaded directly. The Vite dev server
// (with the configuration the package README recommends) is checked too.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import sirv from "sirv";
import { root, startServer, launch } from "./harness.mjs";

const consumer = join(root, "tests/vite-consumer");
const dist = join(consumer, "dist");
let repository;

before(() => {
  // A fresh copy of pkg/ every run (npm would keep a stale copy of a file: dependency).
  rmSync(join(consumer, "node_modules/realdenoise"), { recursive: true, force: true });
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--silent"], { cwd: consumer, stdio: "inherit" });
  rmSync(dist, { recursive: true, force: true });
  execFileSync(join(consumer, "node_modules/.bin/vite"), ["build", "--logLevel", "warn"], { cwd: consumer, stdio: "inherit" });
});
after(async () => repository?.close());

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

function serve(directory) {
  const handler = sirv(directory, { dev: true });
  const server = createServer((request, response) => handler(request, response, () => {
    response.statusCode = 404;
    response.end("not found");
  }));
  return new Promise((ready) => server.listen(0, "127.0.0.1", () => ready({
    origin: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((done) => server.close(done)),
  })));
}

/** Opens the consumer page and waits for its result. */
async function runConsumerPage(browser, url) {
  const page = await browser.newPage();
  const messages = [];
  page.on("console", (message) => messages.push(message.text()));
  page.on("pageerror", (error) => messages.push(`pageerror: ${error.message}`));
  await page.goto(url);
  await page.waitForFunction(() => !document.querySelector("#status").textContent.endsWith("…"), null, { timeout: 540_000 });
  const status = await page.textContent("#status");
  assert.equal(status, "done", `${url}: ${status}\n${messages.join("\n")}`);
  const result = JSON.parse(await page.textContent("#result"));
  await page.close();
  return result;
}

/** The same input through pkg/ loaded directly from the repository. */
async function directResult(browser, backend, input, width, height) {
  repository ??= await startServer();
  const page = await browser.newPage();
  await page.goto(`${repository.origin}/tests/browser/index.html`);
  await page.waitForFunction(() => window.ready === true);
  const output = await page.evaluate(async ({ backend, input, width, height }) => {
    const { Denoiser } = await import("/pkg/index.js");
    const denoiser = await Denoiser.load({ backend });
    const result = await denoiser.denoise({ data: Uint8ClampedArray.from(input), width, height });
    await denoiser.dispose();
    return Array.from(result.data);
  }, { backend, input, width, height });
  await page.close();
  return output;
}

function checkResult(result, backend) {
  assert.equal(result.backend, backend);
  assert.deepEqual([result.width, result.height, result.isImageData], [64, 48, true]);
  assert.equal(result.output.length, 64 * 48 * 4);
  const alphaKept = result.output.every((v, i) => i % 4 !== 3 || v === result.input[i]);
  assert.ok(alphaKept, "alpha changed");
  const changed = result.output.filter((v, i) => i % 4 !== 3 && v !== result.input[i]).length;
  assert.ok(changed > result.output.length / 2, `only ${changed} colour values changed`);
  assert.deepEqual([result.worker.width, result.worker.height], [64, 48]);
  assert.ok(result.worker.data.every((v, i) => v === result.output[i]), "the worker's result differs from the main thread's");
}

test("vite build emits the package's wasm and weights unchanged", () => {
  const assets = readdirSync(join(dist, "assets"));
  const find = (suffix) => assets.filter((name) => name.endsWith(suffix));
  assert.equal(find(".wasm").length, 1, `assets: ${assets}`);
  assert.equal(find(".rdnz").length, 1, `assets: ${assets}`);
  assert.equal(sha256(readFileSync(join(dist, "assets", find(".wasm")[0]))), sha256(readFileSync(join(root, "pkg/realdenoise_bg.wasm"))));
  assert.equal(sha256(readFileSync(join(dist, "assets", find(".rdnz")[0]))), sha256(readFileSync(join(root, "pkg/realdenoise.rdnz"))));
  // The worker client's `new Worker(new URL("./worker.js", import.meta.url))`
  // became a bundled module worker that kept its message handler.
  const worker = find(".js").filter((name) => name.startsWith("worker-"));
  assert.equal(worker.length, 1, `assets: ${assets}`);
  assert.match(readFileSync(join(dist, "assets", worker[0]), "utf8"), /onmessage/);
});

for (const backend of ["cpu", "webgpu"]) {
  test(`the built page denoises on ${backend}, equal to the package used directly`, { timeout: 600_000 }, async () => {
    const site = await serve(dist);
    const browser = await launch({ webgpu: backend === "webgpu" });
    try {
      const result = await runConsumerPage(browser, `${site.origin}/?backend=${backend}`);
      checkResult(result, backend);
      const direct = await directResult(browser, backend, result.input, result.width, result.height);
      let worst = 0;
      for (let i = 0; i < direct.length; i++) worst = Math.max(worst, Math.abs(direct[i] - result.output[i]));
      console.log(`${backend}: built page vs package directly: max difference ${worst}/255`);
      assert.equal(worst, 0, `the bundled page differs from the package by ${worst}/255`);
    } finally {
      await browser.close();
      await site.close();
    }
  });
}

test("the Vite dev server (optimizeDeps.exclude) serves a working page", { timeout: 600_000 }, async () => {
  const { createServer: createViteServer } = await import(pathToFileURL(join(consumer, "node_modules/vite/dist/node/index.js")).href);
  rmSync(join(consumer, "node_modules/.vite"), { recursive: true, force: true });
  const vite = await createViteServer({ root: consumer, logLevel: "warn", server: { host: "127.0.0.1", port: 0, strictPort: false } });
  await vite.listen();
  const browser = await launch({ webgpu: false });
  try {
    const result = await runConsumerPage(browser, `${vite.resolvedUrls.local[0]}?backend=cpu&steps=1`);
    checkResult(result, "cpu");
  } finally {
    await browser.close();
    await vite.close();
  }
});

// After a wasm trap the package starts a fresh module instance by importing a
// second copy of its wasm-bindgen glue, found with
// `new URL("./realdenoise.js", import.meta.url)`. Vite copies that file into
// the build; a copy imported with a query string must be a working, separate
// instance there.
test("vite build keeps the glue copy the package restarts a crashed module from", { timeout: 300_000 }, async () => {
  const assets = readdirSync(join(dist, "assets"));
  const glue = assets.filter((name) => name.startsWith("realdenoise") && name.endsWith(".js"));
  assert.equal(glue.length, 1, `assets: ${assets}`);
  const wasm = assets.find((name) => name.endsWith(".wasm"));
  const weights = assets.find((name) => name.endsWith(".rdnz"));
  const site = await serve(dist);
  const browser = await launch({ webgpu: false });
  try {
    const page = await browser.newPage();
    await page.goto(`${site.origin}/no-app-here`); // same origin, without running the app
    const result = await page.evaluate(async ({ glue, wasm, weights }) => {
      const widths = [];
      for (const instance of [1, 2]) {
        const module = await import(`/assets/${glue}?instance=${instance}`);
        const exports = await module.default({ module_or_path: `/assets/${wasm}` });
        const bytes = new Uint8Array(await (await fetch(`/assets/${weights}`)).arrayBuffer());
        const model = await module.Model.load(bytes, "cpu");
        const out = await model.denoise(
          new Uint8Array(16 * 16 * 4).fill(100), 16, 16,
          { steps: 1, sampler: "improved", ensemble: "off", strength: 1, tileSize: 0 }, async () => true,
        );
        widths.push({ length: out.length, memory: exports.memory.buffer.byteLength > 0 });
        model.free();
      }
      return widths;
    }, { glue: glue[0], wasm, weights });
    assert.deepEqual(result, [{ length: 1024, memory: true }, { length: 1024, memory: true }]);
  } finally {
    await browser.close();
    await site.close();
  }
});

// The same restart end to end under the Vite dev server: the package's own
// module, served by Vite, recovers from a trap in Model.load (the random
// source fails once, so Rust panics) by importing a fresh copy of the glue.
test("under the Vite dev server a load after a wasm trap starts a fresh module", { timeout: 300_000 }, async () => {
  const { createServer: createViteServer } = await import(pathToFileURL(join(consumer, "node_modules/vite/dist/node/index.js")).href);
  const vite = await createViteServer({ root: consumer, logLevel: "warn", server: { host: "127.0.0.1", port: 0, strictPort: false } });
  await vite.listen();
  const browser = await launch({ webgpu: false });
  try {
    const page = await browser.newPage();
    await page.goto(`${vite.resolvedUrls.local[0]}no-app-here`);
    const result = await page.evaluate(async () => {
      const { Denoiser } = await import("/node_modules/realdenoise/index.js");
      const getRandomValues = crypto.getRandomValues;
      crypto.getRandomValues = () => { throw new Error("entropy source unavailable (test)"); };
      let trapped;
      try {
        await Denoiser.load({ backend: "cpu" });
        trapped = "loaded";
      } catch (error) {
        trapped = `${error.name}: ${error.cause instanceof WebAssembly.RuntimeError}`;
      }
      crypto.getRandomValues = getRandomValues;
      const denoiser = await Denoiser.load({ backend: "cpu" });
      const out = await denoiser.denoise({ data: new Uint8Array(16 * 16 * 4).fill(100), width: 16, height: 16 }, { steps: 1 });
      return { trapped, width: out.width };
    });
    assert.deepEqual(result, { trapped: "InternalError: true", width: 16 });
  } finally {
    await browser.close();
    await vite.close();
  }
});
