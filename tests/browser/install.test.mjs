// Issue 23: what a web developer meets first. The typed worker client, every
// install path exactly as the package README documents it (the snippets are
// read from README.md, so docs and tests cannot drift), the published
// tarball's metadata and licences, the TypeScript types, load progress in
// bytes and the weights cache.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, symlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:http";
import sirv from "sirv";
import { startServer, launch, root } from "./harness.mjs";

const pkg = join(root, "pkg");
const readme = readFileSync(join(root, "src/web/js/README.md"), "utf8");
/** The built package's version (stamped from Cargo.toml by make pkg). */
const packageVersion = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")).version;
let server;
before(async () => {
  server = await startServer();
});
after(async () => server?.close());

/** The first fenced block of `language` after the heading that starts with `heading`. */
function snippet(heading, language) {
  const start = readme.indexOf(`\n## ${heading}`);
  assert.ok(start >= 0, `README.md has no section "## ${heading}"`);
  const match = readme.slice(start).match(new RegExp("```" + language + "\\n([\\s\\S]*?)```"));
  assert.ok(match, `README.md section "${heading}" has no ${language} block`);
  return match[1];
}

/** A site whose node_modules/realdenoise is the unpacked `npm pack` of pkg/, as `npm install` lays it out. */
function installedSite() {
  const site = mkdtempSync(join(tmpdir(), "realdenoise-site-"));
  const tarball = execFileSync("npm", ["pack", "--silent", "--pack-destination", site], { cwd: pkg, encoding: "utf8" }).trim().split("\n").at(-1);
  mkdirSync(join(site, "node_modules/realdenoise"), { recursive: true });
  execFileSync("tar", ["-xzf", join(site, tarball), "-C", join(site, "node_modules/realdenoise"), "--strip-components=1"]);
  return site;
}

function serve(directory) {
  const handler = sirv(directory, { dev: true });
  const http = createServer((request, response) => handler(request, response, () => {
    response.statusCode = 404;
    response.end("not found");
  }));
  return new Promise((ready) => http.listen(0, "127.0.0.1", () => ready({
    origin: `http://127.0.0.1:${http.address().port}`,
    close: () => new Promise((done) => http.close(done)),
  })));
}

async function openTestPage(browser, context) {
  const page = await (context ?? browser).newPage();
  const messages = [];
  page.on("console", (message) => messages.push(message.text()));
  page.on("pageerror", (error) => messages.push(`pageerror: ${error.message}`));
  await page.goto(`${server.origin}/tests/browser/index.html`);
  await page.waitForFunction(() => window.ready === true);
  return { page, messages };
}

test("the packed tarball has both licences, the worker client and its types; package.json has repository and homepage", () => {
  const [packed] = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json", "--silent"], { cwd: pkg, encoding: "utf8" }));
  const files = packed.files.map((file) => file.path);
  for (const name of ["LICENSE-MIT", "LICENSE-APACHE", "worker-client.js", "worker-client.d.ts", "errors.js", "index.d.ts", "worker.js"]) {
    assert.ok(files.includes(name), `${name} is not in the tarball: ${files}`);
  }
  assert.match(readFileSync(join(pkg, "LICENSE-MIT"), "utf8"), /^MIT License/);
  assert.match(readFileSync(join(pkg, "LICENSE-APACHE"), "utf8"), /Apache License\s+Version 2\.0/);
  const manifest = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8"));
  assert.equal(manifest.license, "MIT OR Apache-2.0");
  assert.match(manifest.repository.url, /github\.com\/realdenoise\/realdenoise/);
  assert.match(manifest.homepage, /^https:\/\/github\.com\/realdenoise\/realdenoise/);
  assert.deepEqual(manifest.exports["./worker-client"], { types: "./worker-client.d.ts", default: "./worker-client.js" });
  // The version is the root crate's (make pkg stamps it from cargo metadata;
  // the sources carry a placeholder, never a hand-written version), and the
  // weights cache is named after the version index.js carries.
  const cargoVersion = readFileSync(join(root, "Cargo.toml"), "utf8").match(/\[workspace\.package\][^[]*?\nversion = "([^"]+)"/)[1];
  assert.equal(manifest.version, cargoVersion);
  assert.equal(JSON.parse(readFileSync(join(root, "src/web/js/package.json"), "utf8")).version, "0.0.0-unstamped");
  assert.match(readFileSync(join(pkg, "index.js"), "utf8"), new RegExp(`export const VERSION = "${manifest.version.replaceAll(".", "\\.")}"`));
  // The README gives the download sizes it measured; they must still hold (within 5 %).
  const wasmGzip = Number(execFileSync("sh", ["-c", "gzip -9 -c realdenoise_bg.wasm | wc -c"], { cwd: pkg, encoding: "utf8" }));
  const weights = readFileSync(join(pkg, "realdenoise.rdnz")).length;
  const stated = (what) => Number(readme.match(new RegExp(`${what}[^|\\n]*\\|\\s*([\\d.]+) MB`))?.[1]) * 1e6;
  for (const [what, actual] of [["realdenoise_bg.wasm, gzip", wasmGzip], ["realdenoise.rdnz", weights]]) {
    const claim = stated(what.replace(/[.,]/g, (c) => `\\${c}`));
    assert.ok(Math.abs(claim - actual) / actual < 0.05, `README says ${claim} B for ${what}; it is ${actual} B`);
  }
});

test("TypeScript: the worker messages are a discriminated union (data.image.widht fails), the client and error classes are typed", () => {
  const directory = mkdtempSync(join(tmpdir(), "realdenoise-types-"));
  mkdirSync(join(directory, "node_modules"));
  symlinkSync(pkg, join(directory, "node_modules/realdenoise"));
  writeFileSync(join(directory, "package.json"), JSON.stringify({ type: "module" }));
  writeFileSync(join(directory, "tsconfig.json"), JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, target: "es2022", module: "nodenext", moduleResolution: "nodenext", lib: ["es2022", "esnext.disposable", "dom"], types: [] },
    files: ["good.ts"],
  }));
  const good = `
import { Denoiser, InputError, AbortError, type Progress } from "realdenoise";
import { WorkerDenoiser, WeightsError, type WorkerReply, type WorkerRequest } from "realdenoise/worker-client";
const client = await WorkerDenoiser.load({ backend: "auto", onProgress: (p: Progress) => console.log(p.stage, p.loaded, p.total) });
const controller = new AbortController();
const clean: ImageData = await client.denoise(new ImageData(2, 2), { steps: 1, onProgress: ({ fraction }) => fraction, signal: controller.signal });
await client.dispose();
const denoiser: Denoiser = await Denoiser.load();
const errors: Error[] = [new InputError("x"), new AbortError("y"), new WeightsError("z")];
const request: WorkerRequest = { id: 1, type: "cancel", target: 2 };
declare const data: WorkerReply;
if (data.type === "result") console.log(data.image.width, clean.width, denoiser.backend, errors, request);
if (data.type === "error") console.log(data.name, data.message);
`;
  writeFileSync(join(directory, "good.ts"), good);
  const tsc = join(import.meta.dirname, "node_modules/.bin/tsc");
  const check = () => {
    try {
      execFileSync(tsc, ["-p", directory], { encoding: "utf8" });
      return "";
    } catch (error) {
      return `${error.stdout}${error.stderr}`;
    }
  };
  assert.equal(check(), "", "the typed example does not type-check");
  writeFileSync(join(directory, "good.ts"), good.replace("data.image.width", "data.image.widht").replace('type: "cancel", target: 2', 'type: "cancel", targt: 2'));
  const errors = check();
  assert.match(errors, /Property 'widht' does not exist/);
  assert.match(errors, /'targt' does not exist/);
  rmSync(directory, { recursive: true, force: true });
});

test("README, plain ESM with an import map: the page snippet works verbatim from node_modules", { timeout: 300_000 }, async () => {
  const site = installedSite();
  writeFileSync(join(site, "index.html"), snippet("Use it without a bundler", "html"));
  const http = await serve(site);
  const browser = await launch({ webgpu: false });
  try {
    const page = await browser.newPage();
    const messages = [];
    page.on("console", (message) => messages.push(message.text()));
    page.on("pageerror", (error) => messages.push(`pageerror: ${error.message}`));
    await page.goto(`${http.origin}/`);
    await page.waitForFunction(() => document.title.startsWith("denoised"), null, { timeout: 240_000 }).catch(() => {});
    assert.equal(await page.title(), "denoised on cpu", messages.join("\n"));
  } finally {
    await browser.close();
    await http.close();
  }
});

test("README, worker client: the snippet works verbatim in a page with the README's import map", { timeout: 300_000 }, async () => {
  const site = installedSite();
  const importMap = snippet("Use it without a bundler", "html").match(/<script type="importmap">[\s\S]*?<\/script>/)[0];
  const code = snippet("Use it from a worker", "js");
  writeFileSync(join(site, "index.html"), `<!doctype html>\n${importMap}\n<script type="module">
const imageData = new ImageData(new Uint8ClampedArray(64 * 48 * 4).map((_, i) => (i * 37) % 256), 64, 48);
${code}
document.title = \`worker: \${clean.width}x\${clean.height} on \${client.backend}\`;
</script>\n`);
  const http = await serve(site);
  const browser = await launch({ webgpu: false });
  try {
    const page = await browser.newPage();
    const messages = [];
    page.on("console", (message) => messages.push(message.text()));
    page.on("pageerror", (error) => messages.push(`pageerror: ${error.message}`));
    await page.goto(`${http.origin}/`);
    await page.waitForFunction(() => document.title.startsWith("worker"), null, { timeout: 240_000 }).catch(() => {});
    assert.equal(await page.title(), "worker: 64x48 on cpu", messages.join("\n"));
    assert.ok(messages.some((m) => /^weights \d+ \d+$/.test(m)), `no byte progress logged:\n${messages.join("\n")}`);
  } finally {
    await browser.close();
    await http.close();
  }
});

test("worker client: progress, AbortSignal cancels (posts cancel), error classes re-created, queued calls, dispose", { timeout: 600_000 }, async () => {
  const browser = await launch({ webgpu: false });
  try {
    const { page, messages } = await openTestPage(browser);
    const result = await page.evaluate(async () => {
      const { WorkerDenoiser, InputError, AbortError, WeightsError } = await import("/pkg/worker-client.js");
      const index = await import("/pkg/index.js");
      const input = await window.loadPixels("/tests/browser/fixtures/crop-64x64.png");
      const stages = [];
      const client = await WorkerDenoiser.load({ backend: "cpu", onProgress: (p) => stages.push(p.stage) });
      const fractions = [];
      const out = await client.denoise(input, { steps: 1, onProgress: (p) => fractions.push(p.fraction) });
      const inputKept = input.data.length === 64 * 64 * 4;
      // Abort mid-run: the worker gets `cancel`, the call rejects with AbortError; the client keeps working.
      const controller = new AbortController();
      const aborted = await window.outcome(client.denoise(input, { steps: 50, signal: controller.signal, onProgress: (p) => p.step >= 1 && controller.abort() }));
      let abortError = null;
      try {
        await client.denoise(input, { steps: 50, signal: AbortSignal.abort() });
      } catch (error) {
        abortError = error;
      }
      let inputError = null;
      try {
        await client.denoise(input, { sampler: 42 });
      } catch (error) {
        inputError = error;
      }
      const [a, b] = await Promise.all([client.denoise(input, { steps: 1 }), client.denoise(input, { steps: 1 })]);
      let weightsError = null;
      try {
        await WorkerDenoiser.load({ backend: "cpu", weights: new Uint8Array([1, 2, 3]) });
      } catch (error) {
        weightsError = error;
      }
      let unknownOption = null;
      try {
        await WorkerDenoiser.load({ backnd: "cpu" });
      } catch (error) {
        unknownOption = `${error.name}: ${error.message}`;
      }
      const memory = await client.memoryUsage();
      await client.dispose();
      let afterDispose = null;
      try {
        await client.denoise(input, { steps: 1 });
      } catch (error) {
        afterDispose = error;
      }
      return {
        isImageData: out instanceof ImageData, width: out.width, inputKept, sawStages: ["wasm", "weights", "ready"].every((s) => stages.includes(s)),
        lastFraction: fractions.at(-1), aborted: aborted.name, backend: client.backend, reason: client.backendReason,
        abortIsClass: abortError instanceof AbortError && abortError.name === "AbortError",
        inputIsClass: inputError instanceof InputError && inputError instanceof index.InputError && /sampler/.test(inputError.message),
        weightsIsClass: weightsError instanceof WeightsError && weightsError.name === "WeightsError",
        concurrent: [a.width, b.width], memory, afterDispose: afterDispose?.name, unknownOption,
      };
    });
    assert.deepEqual(result, {
      isImageData: true, width: 64, inputKept: true, sawStages: true, lastFraction: 1, aborted: "AbortError", backend: "cpu",
      reason: "the CPU backend was requested", abortIsClass: true, inputIsClass: true, weightsIsClass: true,
      concurrent: [64, 64], memory: null, afterDispose: "InputError",
      unknownOption: 'InputError: unknown load option "backnd" (known: weights, backend, onProgress, worker, workers)',
    }, messages.join("\n"));
  } finally {
    await browser.close();
  }
});

test("index.js exports the error classes; error.name is unchanged", { timeout: 300_000 }, async () => {
  const browser = await launch({ webgpu: false });
  try {
    const { page } = await openTestPage(browser);
    const result = await page.evaluate(async () => {
      const m = await import("/pkg/index.js");
      const names = ["InputError", "WeightsError", "AbortError", "WebGpuUnavailableError", "UnsupportedBrowserError", "BackendError", "InternalError"];
      const made = names.map((name) => { const e = new m[name]("x"); return e instanceof Error && e.name === name; });
      let caught = null;
      try {
        await m.Denoiser.load({ backend: "cpu", weights: 42 });
      } catch (error) {
        caught = error;
      }
      return { made, input: caught instanceof m.InputError && caught.name === "InputError" };
    });
    assert.deepEqual(result, { made: [true, true, true, true, true, true, true], input: true });
  } finally {
    await browser.close();
  }
});

test("load reports wasm and weights bytes; a second load reads the weights from the Cache API, no request; a failing Cache API falls back to the network", { timeout: 300_000 }, async () => {
  const browser = await launch({ webgpu: false });
  try {
    const context = await browser.newContext();
    const weightRequests = [];
    context.on("request", (request) => request.url().endsWith(".rdnz") && weightRequests.push(request.url()));
    const { page, messages } = await openTestPage(browser, context);
    const first = await page.evaluate(async () => {
      const { Denoiser } = await import("/pkg/index.js");
      const events = [];
      const denoiser = await Denoiser.load({ backend: "cpu", onProgress: (p) => events.push(p) });
      await denoiser.dispose();
      return events;
    });
    const bytes = (stage) => first.filter((p) => p.stage === stage);
    const wasmSize = readFileSync(join(pkg, "realdenoise_bg.wasm")).length;
    const weightsSize = readFileSync(join(pkg, "realdenoise.rdnz")).length;
    for (const [stage, size] of [["wasm", wasmSize], ["weights", weightsSize]]) {
      const events = bytes(stage);
      assert.ok(events.length >= 2, `${stage}: ${JSON.stringify(events)}`);
      assert.deepEqual([events.at(-1).loaded, events.at(-1).total], [size, size], stage);
      assert.ok(events.every((p, i) => i === 0 || p.loaded >= events[i - 1].loaded), `${stage}: loaded not increasing`);
      assert.ok(events.every((p) => p.total === size), `${stage}: total is not Content-Length: ${JSON.stringify(events.slice(0, 3))}`);
    }
    assert.ok(bytes("wasm").length > 2, "the wasm arrived in one piece: no streamed progress");
    assert.ok(first.every((p, i) => i === 0 || p.fraction >= first[i - 1].fraction), "fractions not increasing");
    assert.equal(weightRequests.length, 1);
    // A new page (same origin, same browser profile): the weights come from the cache.
    await page.reload();
    await page.waitForFunction(() => window.ready === true);
    const second = await page.evaluate(async () => {
      const { Denoiser } = await import("/pkg/index.js");
      const events = [];
      const denoiser = await Denoiser.load({ backend: "cpu", onProgress: (p) => events.push(p) });
      const out = await denoiser.denoise({ data: new Uint8Array(16 * 16 * 4).fill(90), width: 16, height: 16 }, { steps: 1 });
      return { weights: events.filter((p) => p.stage === "weights").map(({ loaded, total }) => [loaded, total]), width: out.width, caches: await caches.keys() };
    });
    assert.equal(weightRequests.length, 1, `the second load requested the weights again: ${weightRequests}`);
    assert.deepEqual(second.weights, [[weightsSize, weightsSize]]);
    assert.equal(second.width, 16);
    assert.deepEqual(second.caches, [`realdenoise-weights-${packageVersion}`]);
    // The Cache API failing (quota) or missing: silently the network.
    const third = await page.evaluate(async (version) => {
      const { Denoiser } = await import("/pkg/index.js");
      await caches.delete(`realdenoise-weights-${version}`);
      const open = CacheStorage.prototype.open;
      CacheStorage.prototype.open = () => Promise.reject(new DOMException("quota", "QuotaExceededError"));
      const a = await window.outcome(Denoiser.load({ backend: "cpu" }));
      CacheStorage.prototype.open = open;
      const saved = Object.getOwnPropertyDescriptor(globalThis, "caches");
      delete globalThis.caches;
      const b = await window.outcome(Denoiser.load({ backend: "cpu" }));
      Object.defineProperty(globalThis, "caches", saved);
      return { a: a.ok, b: b.ok, cached: (await caches.keys()).length };
    }, packageVersion);
    assert.deepEqual(third, { a: true, b: true, cached: 0 }, messages.join("\n"));
    assert.equal(weightRequests.length, 3);
  } finally {
    await browser.close();
  }
});
